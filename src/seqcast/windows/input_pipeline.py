"""Training input: batches of windows streamed from the window store through tf.data.

Each epoch reads the store block by block (one Parquet row group of rows and one of
window starts), cuts that block's windows, and mixes them in a shuffle buffer of at most
``shuffle_buffer`` windows (plus the block being added) before emitting batches. Block
order and the buffer's draws are shuffled anew every epoch from ``(seed, epoch)``, so a
run is reproducible and every window is seen exactly once per epoch. Memory is bounded by
the buffer and one block, never the split; tf.data prefetches batches on its own thread
while the model trains on the previous ones.

Shuffling numpy arrays here rather than with ``tf.data.Dataset.shuffle`` keeps the work
per chunk of batches, not per window: on two CPU cores per-element tf.data ops cost more
than the whole gather. The generator yields chunks of many batches and tf.data splits
them into batches in C++, so the Python side (which holds the GIL the Keras training loop
also needs) runs a few dozen times per epoch.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import tensorflow as tf

from seqcast.windows.store import StoreReader
from seqcast.windows.windowing import (
    SPLITS,
    WindowArrays,
    WindowLayout,
    cut_model_windows,
    model_inputs,
)

Batch = tuple[np.ndarray | dict[str, np.ndarray], np.ndarray]

CACHE_WINDOWS = 16_384
"""A split of at most this many windows (and no more than the shuffle buffer holds) is cut
once and kept in memory: on tiny data, reopening the store and cutting every block again
each epoch cost more than the epoch's training (benchmarks/bench_epoch_overhead.py)."""


class _Pool:
    """Windows waiting to be emitted: model arrays only, concatenated lazily."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.size = 0

    def add(self, arrays: tuple[np.ndarray | None, ...]) -> None:
        kept = tuple(a for a in arrays if a is not None)
        if len(kept[0]):
            self.parts.append(kept)
            self.size += len(kept[0])

    def take_all(self) -> tuple[np.ndarray, ...]:
        """Every pooled window as one array per field; the pool is left empty."""
        fields = len(self.parts[0])
        merged = tuple(
            np.concatenate([p[i] for p in self.parts]) if len(self.parts) > 1 else self.parts[0][i]
            for i in range(fields)
        )
        self.parts, self.size = [], 0
        return merged


class WindowStream:
    """One split of a window store as an iterable of batches, one pass per epoch.

    Args:
        uri: the build directory of the windows (`WindowsRef.uri`).
        split: "train", "val" or "test".
        batch_size: windows per batch (the last batch of an epoch may be smaller).
        shuffle_buffer: windows mixed before emission; None reads in stored order.
        seed: with the epoch number, seeds the block order and the buffer's draws.
        chunk: windows per element yielded (default ``batch_size``); `window_dataset`
            yields chunks of many batches and lets tf.data re-batch them in C++, so the
            Python generator runs a few times per epoch instead of once per batch.
        shard: ``(index, count)``: read only every count-th block (file row group) of the
            split, starting at ``index``; the input pipelines of a distributed fit each
            read their own blocks (shard by file) instead of all reading everything.
    """

    def __init__(
        self,
        uri: str,
        split: str,
        batch_size: int,
        shuffle_buffer: int | None = None,
        seed: int = 0,
        chunk: int | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be positive. Received: batch_size={batch_size}")
        if shuffle_buffer is not None and shuffle_buffer <= 0:
            raise ValueError(
                f"`shuffle_buffer` must be positive or None. Received: {shuffle_buffer}"
            )
        index, count = shard
        if not 0 <= index < count:
            raise ValueError(f"`shard` must be (index, count) with 0 <= index < count: {shard}")
        self.uri = uri
        self.split = split
        self.batch_size = batch_size
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.chunk = chunk or batch_size
        reader = StoreReader(uri)
        self.layout: WindowLayout = reader.layout
        blocks = [k for k in range(reader.n_blocks) if reader.count(split, k)]
        self.blocks = blocks[index::count]
        self.n_windows = sum(reader.count(split, k) for k in self.blocks)
        reader.close()
        self.peak_pooled = 0  # most windows held at once (for tests and benchmarks)
        small = self.n_windows <= min(CACHE_WINDOWS, shuffle_buffer or CACHE_WINDOWS)
        self._cache: dict[int, tuple[np.ndarray | None, ...]] | None = {} if small else None

    @property
    def n_batches(self) -> int:
        return -(-self.n_windows // self.batch_size)

    def _batches(
        self, arrays: tuple[np.ndarray, ...], order: np.ndarray | None, stop: int
    ) -> Iterator[Batch]:
        """Elements of ``self.chunk`` windows: rows ``order[:stop]`` (or ``[:stop]``) of arrays.

        Gathering each chunk through the permutation, rather than permuting the whole
        pool first, lets the first chunk leave as soon as the pool is full.

        Every element is a copy, never a view of ``arrays``: tf.data takes a yielded array's
        memory without copying it, and TensorFlow may then write an op's output into that
        buffer (buffer forwarding). A view of a cached block was so overwritten in place:
        from the second epoch on, validation scored windows growing without bound (seen on
        a loaded machine; `tests/unit/test_window_pipeline.py`). A permutation's gather
        copies already; a slice is copied here.
        """
        for lo in range(0, stop, self.chunk):
            rows = slice(lo, min(lo + self.chunk, stop))
            if order is None:
                yield self._structure(tuple(a[rows].copy() for a in arrays))
            else:
                yield self._structure(tuple(a[order[rows]] for a in arrays))

    def _structure(self, arrays: tuple[np.ndarray, ...]) -> Batch:
        x, y, *rest = arrays
        future = rest.pop(0) if self.layout.n_future else None
        static = rest.pop(0) if self.layout.n_static else None
        return model_inputs(x, future, static), y

    def epoch(self, number: int = 0) -> Iterator[Batch]:
        """The batches of one epoch: ``(inputs, y)`` with inputs as `WindowArrays.model_inputs`."""
        shuffle = self.shuffle_buffer is not None
        rng = np.random.default_rng([self.seed, number])
        order = rng.permutation(self.blocks) if shuffle else self.blocks
        reader: StoreReader | None = None
        pool = _Pool()
        try:
            for block_number in order:
                cached = None if self._cache is None else self._cache.get(int(block_number))
                if cached is None:
                    reader = reader or StoreReader(self.uri)
                    block = reader.block(int(block_number))
                    cached = cut_model_windows(block, block.starts[self.split], self.layout)
                    if self._cache is not None:
                        self._cache[int(block_number)] = cached
                pool.add(cached)
                self.peak_pooled = max(self.peak_pooled, pool.size)
                # `shuffle` is `self.shuffle_buffer is not None`, spelled so the type narrows.
                threshold = self.batch_size if self.shuffle_buffer is None else self.shuffle_buffer
                if pool.size < threshold:
                    continue
                picks = rng.permutation(pool.size) if shuffle else None
                arrays = pool.take_all()
                # Emit whole batches down to half a buffer; the rest mixes with later blocks.
                keep = min(len(arrays[0]), threshold // 2) if shuffle else 0
                emit = (len(arrays[0]) - keep) // self.batch_size * self.batch_size
                yield from self._batches(arrays, picks, emit)
                rest = slice(emit, None) if picks is None else picks[emit:]
                pool.add(tuple(a[rest] for a in arrays))
            if pool.size:
                picks = rng.permutation(pool.size) if shuffle else None
                arrays = pool.take_all()
                yield from self._batches(arrays, picks, len(arrays[0]))
        finally:
            if reader is not None:
                reader.close()

    def __iter__(self) -> Iterator[Batch]:
        return self.epoch(0)

    def signature(self) -> tuple[Any, tf.TensorSpec]:
        """The tf.data element spec of a batch."""
        layout = self.layout
        x = tf.TensorSpec((None, layout.lookback, len(layout.input_columns)), tf.float32)
        future = tf.TensorSpec((None, layout.horizon, layout.n_future), tf.float32)
        static = tf.TensorSpec((None, layout.n_static), tf.float32)
        inputs = model_inputs(
            x,
            future if layout.n_future else None,
            static if layout.n_static else None,
        )
        if layout.task == "forecast":
            y = tf.TensorSpec((None, layout.horizon, len(layout.target_columns)), tf.float32)
        else:
            y = tf.TensorSpec((None,), tf.int32)
        return inputs, y


def _dataset(
    stream: WindowStream,
    first_epoch: int,
    repeat: bool,
    prefetch: int,
    whole_epochs: bool = True,
) -> tf.data.Dataset:
    """``whole_epochs=False`` (training): the batches run on across epochs, the last one of
    an epoch filled up with the next epoch's first windows; True: each epoch's batches are
    its own (a smaller last batch), as an evaluation of the split needs."""
    epochs = itertools.count(first_epoch)
    dataset = tf.data.Dataset.from_generator(
        lambda: stream.epoch(next(epochs)), output_signature=stream.signature()
    )
    # rebatch: (chunk, ...) -> (batch_size, ...) in C++; each repetition calls the
    # generator again: the next epoch.
    if whole_epochs:
        dataset = dataset.rebatch(stream.batch_size)
        if repeat:
            dataset = dataset.repeat()
    else:
        dataset = (dataset.repeat() if repeat else dataset).rebatch(stream.batch_size)
    if not repeat:
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(stream.n_batches))
    return dataset.prefetch(prefetch).with_options(_not_autotuned())


def _not_autotuned() -> tf.data.Options:
    """tf.data options without the autotuner.

    Nothing here is tuned (the prefetch depth is fixed, no map runs in parallel), yet the
    autotuner's thread ran beside every iterator, and freeing an iterator waited for it:
    ``model.fit`` returned 0.3-0.45 s after its last epoch in 4 of 18 fits of a small
    series, and in none of 26 without it (issue 14 #5, `benchmarks/README.md`, "Start-up").
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def window_dataset(
    uri: str,
    split: str,
    batch_size: int,
    shuffle_buffer: int | None = None,
    seed: int = 0,
    first_epoch: int = 0,
    prefetch: int = 4,
    batches_per_chunk: int = 32,
) -> tf.data.Dataset:
    """A `tf.data.Dataset` of one split's batches, re-shuffled each time it is iterated.

    Iteration ``k`` (an epoch, when Keras iterates it once per epoch) draws its order from
    ``(seed, first_epoch + k)``. The cardinality is the number of batches.
    """
    stream = WindowStream(
        uri, split, batch_size, shuffle_buffer, seed, chunk=batch_size * batches_per_chunk
    )
    return _dataset(stream, first_epoch, repeat=False, prefetch=prefetch)


@dataclass(frozen=True)
class StreamedWindows:
    """One split for `model.fit`: an endless dataset of epochs, and the batches per epoch.

    Keras keeps one iterator over an endless dataset when it is told the steps per epoch,
    so prefetching runs across epoch boundaries: the next epoch's first blocks are read
    while this epoch's last batches train, and no epoch waits for its shuffle buffer to
    fill. A fresh iterator per epoch (a finite dataset) would stall at every epoch start.
    """

    dataset: tf.data.Dataset | tf.distribute.DistributedDataset
    steps: int
    windows: int
    uri: str | None = None
    """The window store and split, so that `whole_batch` can read a small split at once
    (None under a distribution strategy: each replica streams its share)."""
    split: str | None = None


def whole_batch(windows: WindowArrays | StreamedWindows, most: int) -> Batch | None:
    """All the windows of a split as one ``(inputs, y)`` batch in stored order, when there
    are at most ``most`` of them (and at least one); else None.

    The training step validates a small split with it in one call per epoch
    (`seqcast.modeling.training`), instead of Keras iterating a dataset per epoch.
    """
    if isinstance(windows, WindowArrays):
        if not 0 < len(windows.y) <= most:
            return None
        return windows.model_inputs(), windows.y
    if windows.uri is None or windows.split is None or not 0 < windows.windows <= most:
        return None
    stream = WindowStream(windows.uri, windows.split, batch_size=windows.windows)
    return next(iter(stream.epoch(0)))


def stream_windows(
    uri: str,
    split: str,
    batch_size: int,
    shuffle_buffer: int | None = None,
    seed: int = 0,
    first_epoch: int = 0,
    prefetch: int = 8,
    batches_per_chunk: int = 32,
    strategy: tf.distribute.Strategy | None = None,
) -> StreamedWindows:
    """The split ``split`` of the window store ``uri`` streamed for training.

    Epoch ``k`` of a fit draws its order from ``(seed, first_epoch + k)``; a resumed fit
    passes the epoch it resumes at to continue the same sequence.

    The training split's batches run on across epochs (an epoch's last batch is filled up
    with the next one's first windows); any other split's epochs are whole, so that
    Keras's validation over ``steps`` batches scores each window once (it used to score the
    next pass's first windows again, in a last batch filled up from it).

    Under a `strategy` with several replicas, ``batch_size`` is the global batch of a step:
    each input pipeline (one per worker machine) reads its own share of the blocks and
    emits per-replica batches (`tf.distribute.Strategy.distribute_datasets_from_function`).
    """
    if strategy is None or strategy.num_replicas_in_sync == 1:
        stream = WindowStream(
            uri, split, batch_size, shuffle_buffer, seed, chunk=batch_size * batches_per_chunk
        )
        dataset = _dataset(stream, first_epoch, True, prefetch, whole_epochs=split != "train")
        return StreamedWindows(
            dataset=dataset,
            steps=stream.n_batches,
            windows=stream.n_windows,
            uri=uri,
            split=split,
        )

    def pipeline(context: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = context.get_per_replica_batch_size(batch_size)
        stream = WindowStream(
            uri,
            split,
            per_replica,
            shuffle_buffer,
            seed,
            chunk=per_replica * batches_per_chunk,
            shard=(context.input_pipeline_id, context.num_input_pipelines),
        )
        return _dataset(stream, first_epoch, True, prefetch, whole_epochs=split != "train")

    reader = StoreReader(uri)
    windows = reader.count(split)
    reader.close()
    return StreamedWindows(
        dataset=strategy.distribute_datasets_from_function(pipeline),
        steps=-(-windows // batch_size),
        windows=windows,
    )


TrainingData: TypeAlias = WindowArrays | StreamedWindows | tf.data.Dataset
"""Windows `fit_arguments` accepts: in memory, streamed for training, or a finite dataset."""


def fit_arguments(train: TrainingData, val: TrainingData | None, batch_size: int) -> dict[str, Any]:
    """Keyword arguments for ``model.fit`` from in-memory windows or streamed ones;
    ``val`` None: no validation data (the caller validates another way)."""
    arguments: dict[str, Any]
    if isinstance(train, WindowArrays):
        arguments = {
            "x": train.model_inputs(),
            "y": train.y,  # (batch, horizon, targets) or (batch,)
            "batch_size": batch_size,
            "shuffle": True,
        }
    elif isinstance(train, StreamedWindows):
        arguments = {"x": train.dataset, "steps_per_epoch": train.steps, "shuffle": False}
    else:
        arguments = {"x": train, "shuffle": False}  # the stream shuffles itself
    if isinstance(val, WindowArrays):
        arguments["validation_data"] = (val.model_inputs(), val.y)
    elif isinstance(val, StreamedWindows):
        arguments["validation_data"] = val.dataset
        arguments["validation_steps"] = val.steps
    elif val is not None:
        arguments["validation_data"] = val
    return arguments
