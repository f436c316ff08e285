"""Training beyond one device: which `tf.distribute` strategy a fit runs under.

With two or more GPUs visible, training mirrors the model on each of them
(`tf.distribute.MirroredStrategy`: every replica takes a slice of each batch and the
gradients are all-reduced). With one GPU or only CPUs it is TensorFlow's default strategy,
which changes nothing, so CPU users pay no cost for this.

``model.batch_size`` is per device: under N replicas a step takes N x batch_size windows,
which keeps each GPU's batch (and its memory and speed) as configured.
"""

from __future__ import annotations

import logging

import tensorflow as tf

logger = logging.getLogger(__name__)


def visible_gpus() -> list[str]:
    """Names of the GPUs TensorFlow can place ops on (``/device:GPU:0``, ...)."""
    return [device.name for device in tf.config.list_logical_devices("GPU")]


def training_strategy(devices: list[str] | None = None) -> tf.distribute.Strategy:
    """The strategy to build and fit a model under.

    Args:
        devices: the devices to mirror across; default: every visible GPU. Fewer than two
            devices gives TensorFlow's default (single-device) strategy.
    """
    devices = visible_gpus() if devices is None else devices
    if len(devices) < 2:
        return tf.distribute.get_strategy()
    strategy = tf.distribute.MirroredStrategy(devices)
    logger.info(
        "Training mirrored on %d devices (%s); model.batch_size is per device",
        strategy.num_replicas_in_sync,
        ", ".join(devices),
    )
    return strategy


def global_batch_size(batch_size: int, strategy: tf.distribute.Strategy) -> int:
    """Windows per training step: the per-device batch times the replicas."""
    return batch_size * strategy.num_replicas_in_sync
