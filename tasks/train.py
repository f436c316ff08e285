"""Step 4, train: fit an LSTM or GRU on the train windows, early-stopped on validation loss."""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from seqcast.config import ModelSpec, PipelineConfig
from seqcast.io import storage
from seqcast.modeling.sequence_sizing import size_for
from seqcast.modeling.sizing import TrainingPlan
from seqcast.records import TrainedRef, WindowsRef
from seqcast.windows import store as window_store
from tasks.common import STEP_OPTIONS, TRAINING_TAG, current_run_id, logical_date, sync_result

if TYPE_CHECKING:  # TensorFlow is imported by the task, not by the flows that import it
    from seqcast.modeling.training import EpochHook, TrainingResult

PROGRESS_EVERY_S = 2.0
"""Least seconds between two updates of the training progress artifact."""


def backup_dir(
    config: PipelineConfig, windows: WindowsRef, spec: ModelSpec, batch: int, relative: bool
) -> str:
    """Checkpoint directory of this pipeline, logical date, window build and resolved model
    settings (``spec`` sized to the windows, the global ``batch``).

    Not keyed by the flow run: a killed `seqcast train` run again with the same config on
    the same day and data, a retried task, and a retried flow run (same logical date) all
    resume at the last checkpointed epoch; another day, other data or other settings start
    afresh. Checkpoints are written to local paths only, so with a remote data root
    (``s3://...``) they stay in the machine's temporary directory: a re-run on the same
    machine resumes, one on another machine starts over.
    """
    key = hashlib.sha256(
        f"{windows.fingerprint}{spec.model_dump_json()}{batch}{relative}"
        f"{config.evaluate.season_steps}".encode()
    ).hexdigest()[:16]
    name = f"{logical_date().isoformat()}-{key}"
    fs, root = storage.filesystem(config.pipeline_root)
    if storage.is_local(fs):
        return str(Path(root) / "checkpoints" / name)
    return str(Path(tempfile.gettempdir()) / "seqcast-backup" / f"{config.name}-{name}")


@contextmanager
def claimed(directory: str) -> Iterator[str]:
    """``directory``, held by this process alone (``flock`` on ``{directory}.lock``) while
    the block runs; another process training the same key at the same moment gets a
    directory of its own run instead (no resume) rather than both writing one checkpoint.

    The kernel drops the lock when its holder dies, so a killed run's checkpoint is free
    for the next run at once. The lock file is removed once training has finished (the
    checkpoints remove themselves then).
    """
    Path(directory).parent.mkdir(parents=True, exist_ok=True)
    lock_path = f"{directory}.lock"
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            own = f"{directory}-{current_run_id()}"
            get_run_logger().warning(
                "Another run is training with the same data and settings (checkpoint %s): "
                "this one checkpoints to %s and will not resume from the other's",
                directory,
                own,
            )
            yield own
            return
        yield directory
        Path(lock_path).unlink(missing_ok=True)


def log_plan(plan: TrainingPlan) -> None:
    """Log the sized batch, epochs and patience and why; warn when epochs are too short."""
    logger = get_run_logger()
    logger.info(
        "Training plan: batch_size %d, up to %d epochs, patience %d (%s)",
        plan.batch_size,
        plan.epochs,
        plan.patience,
        plan.reason,
    )
    if plan.warning:
        logger.warning("Training plan: %s", plan.warning)


def create_progress(variants: int) -> UUID:
    """The one progress artifact of this training run (UI: the run's Artifacts tab).

    One for every variant trained (normalize=auto trains two): an artifact per variant
    left the first one standing at its last value, e.g. 47%, forever.
    """
    what = f"{variants} variants" if variants > 1 else "the model"
    return sync_result(
        create_progress_artifact(
            progress=0.0, description=f"Training epochs done (percent), {what}"
        )
    )


def finish_progress(artifact_id: UUID) -> None:
    """Training is over: 100%, also when early stopping ended a variant before its epochs."""
    update_progress_artifact(artifact_id, progress=100.0)


def progress_hook(artifact_id: UUID, total_epochs: int, offset: int) -> EpochHook:
    """Move the run's progress artifact as this variant's epochs finish (``offset``: the
    epochs planned for the variants before it)."""
    last = [time.monotonic()]

    def on_epoch_end(done: int, planned: int, metrics: dict[str, float]) -> None:
        # An update is an API call (~40 ms, 13% of a 6-batch epoch on tiny data; see
        # benchmarks/bench_epoch_overhead.py): short epochs update it only now and then.
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_S and done < planned:
            return
        last[0] = now
        update_progress_artifact(artifact_id, progress=100.0 * (offset + done) / total_epochs)

    return on_epoch_end


def trained_summary(results: list[tuple[TrainingResult, bool]], kept: TrainingResult) -> str:
    """The log line after training: the time covers every variant trained (normalize=auto
    trains two), then the kept one's epochs and validation loss."""
    if len(results) == 1:
        return (
            f"Trained {kept.epochs_run} epoch(s) in {kept.seconds:.1f}s; best val_loss "
            f"{kept.best_val_loss:.4f}"
        )
    total = sum(r.seconds for r, _ in results)
    parts = ", ".join(
        f"{'window-relative' if relative else 'series-scaled'} {r.epochs_run} epoch(s) "
        f"in {r.seconds:.1f}s"
        for r, relative in results
    )
    return (
        f"Trained {len(results)} variants in {total:.1f}s ({parts}); kept: "
        f"{kept.epochs_run} epoch(s), best val_loss {kept.best_val_loss:.4f}"
    )


@task(name="train", tags=[TRAINING_TAG], **STEP_OPTIONS)
def train(config: PipelineConfig, windows: WindowsRef) -> TrainedRef:
    """Train a fresh model and save it as a `.keras` file under this flow run's directory."""
    logger = get_run_logger()
    layout = window_store.read_layout(windows.uri)
    from seqcast.modeling.distribution import global_batch_size, training_strategy
    from seqcast.modeling.training import train as fit
    from seqcast.windows.input_pipeline import stream_windows

    strategy = training_strategy()
    plan = size_for(
        config.model,
        windows.rows_by_split["train"],
        strategy.num_replicas_in_sync,
        config.window.per,
    )
    log_plan(plan)
    spec = plan.apply(config.model)
    batch = global_batch_size(plan.batch_size, strategy)
    train_split = stream_windows(
        windows.uri, "train", batch, spec.shuffle_buffer, seed=spec.seed, strategy=strategy
    )
    val_split = stream_windows(windows.uri, "val", batch, strategy=strategy)
    options = config.window_relative_options
    logger.info(
        "Training %s %s on %d windows (%d validation) streamed from %s, up to %d epochs%s",
        spec.cell.upper(),
        spec.units,
        windows.rows_by_split["train"],
        windows.rows_by_split["val"],
        windows.uri,
        plan.epochs,
        " for each of: series-scaled, window-relative (normalize=auto)" if len(options) > 1 else "",
    )
    results: list[tuple[TrainingResult, bool]] = []
    progress = create_progress(len(options))
    for index, relative in enumerate(options):
        with claimed(backup_dir(config, windows, spec, batch, relative)) as checkpoints:
            result = fit(
                train_split,
                val_split,
                layout,
                spec,
                window_relative=relative,
                season=config.evaluate.season_steps,
                backup_dir=checkpoints,
                on_epoch_end=progress_hook(
                    progress, plan.epochs * len(options), plan.epochs * index
                ),
                strategy=strategy,
            )
        if result.first_epoch:
            logger.info(
                "Resumed from the checkpoint of epoch %d (%s)", result.first_epoch, checkpoints
            )
        results.append((result, relative))
    finish_progress(progress)
    result, relative = min(results, key=lambda pair: pair[0].best_val_loss)
    if len(results) > 1:
        logger.info(
            "normalize=auto chose %s inputs (val_loss %s)",
            "window-relative" if relative else "series-scaled",
            " vs ".join(f"{r.best_val_loss:.4f}" for r, _ in results),
        )
    run_dir = storage.join(config.pipeline_root, "runs", current_run_id())
    model_uri = storage.join(run_dir, "model.keras")
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / "model.keras"
        result.model.save(local)
        storage.write_bytes(model_uri, local.read_bytes())
    storage.write_json(storage.join(run_dir, "history.json"), result.history)
    seconds = sum(r.seconds for r, _ in results)  # every variant trained, not the kept one
    logger.info("%s", trained_summary(results, result))
    return TrainedRef(
        model_uri=model_uri,
        epochs_run=result.epochs_run,
        best_val_loss=result.best_val_loss,
        train_seconds=round(seconds, 3),
        window_relative=relative,
        training=plan.as_dict(),
        params=spec.model_dump(mode="json", exclude={"search"}),
    )
