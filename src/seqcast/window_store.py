"""The window store's format: series rows plus a window index, as Parquet.

One build directory (see `seqcast.window_publish` for how builds are published)::

    segments.parquet    one row per grid step of every series that has windows: series
                        (int32 code), ts, inputs (scaled, fixed-size list), future
                        (covariates), label (classify); one row group per block of whole
                        series
    index.parquet       one row per window: split (int8), start (int32 row of its block);
                        one row group per block, aligned with segments
    series.parquet      series id, block and static features per series code
    scaler.json, layout.json   how the rows were scaled; what a model reads
    manifest.json       files (bytes, rows, schema, sha256), counts, blocks, inputs

Windows are not materialised on disk: a window is a start row, cut from its block's rows
when read (`seqcast.windowing.cut_windows`). The store is as large as the validated data
instead of ``lookback`` times larger, and a block is the unit of reading: one row group
of each file. benchmarks/README.md has the numbers behind this layout.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from seqcast import storage
from seqcast.scaling import Scaler
from seqcast.windowing import (
    SPLITS,
    SeriesWindows,
    WindowArrays,
    WindowLayout,
    concat_windows,
    cut_windows,
)

FORMAT = "seqcast.windows/2"
SEGMENTS, INDEX, SERIES = "segments.parquet", "index.parquet", "series.parquet"
MANIFEST, WRITER = "manifest.json", "_writer.json"
PAYLOAD = (SEGMENTS, INDEX, SERIES, "scaler.json", "layout.json")


def _fixed_list(values: np.ndarray) -> pa.Array:
    width = values.shape[1]
    flat = pa.array(np.ascontiguousarray(values, np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width)


def _matrix(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """A fixed-size-list column as a (rows, width) float32 array."""
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(-1, width)


class BlockWriter:
    """Writes blocks of whole series (`SeriesWindows`) into a build directory as they come."""

    def __init__(self, uri: str, layout: WindowLayout, scaler: Scaler) -> None:
        self.uri = uri
        self.layout = layout
        self.scaler = scaler
        self.counts = dict.fromkeys(SPLITS, 0)
        self.blocks: list[dict[str, Any]] = []
        self._names: list[str] = []
        self._series_block: list[int] = []
        self._static: list[np.ndarray] = []
        self._handles: list[Any] = []
        fields = [
            ("series", pa.int32()),
            ("ts", pa.timestamp("ns", tz="UTC")),
            ("inputs", pa.list_(pa.float32(), len(layout.input_columns))),
        ]
        if layout.n_future:
            fields.append(("future", pa.list_(pa.float32(), layout.n_future)))
        if layout.task == "classify":
            fields.append(("label", pa.int32()))
        self.segment_schema = pa.schema(fields)
        self.index_schema = pa.schema([("split", pa.int8()), ("start", pa.int32())])

    def _open(self, name: str, schema: pa.Schema) -> pq.ParquetWriter:
        fs, path = storage.filesystem(storage.join(self.uri, name))
        handle = fs.open(path, "wb")
        self._handles.append(handle)
        # Dictionary encoding only where values repeat: tried on float columns it costs
        # two thirds of the write time and saves nothing.
        dictionary = [f.name for f in schema if f.name in ("series", "split")]
        return pq.ParquetWriter(handle, schema, compression="zstd", use_dictionary=dictionary)

    def __enter__(self) -> BlockWriter:
        fs, path = storage.filesystem(self.uri)
        fs.makedirs(path, exist_ok=True)
        self.segments = self._open(SEGMENTS, self.segment_schema)
        self.index = self._open(INDEX, self.index_schema)
        return self

    def write(self, block: SeriesWindows) -> None:
        """Append one block: its rows as a segments row group, its windows as an index one."""
        offset = len(self._names)
        columns: dict[str, pa.Array] = {
            "series": pa.array(block.series + offset, pa.int32()),
            "ts": pa.array(block.stamps, pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            "inputs": _fixed_list(block.inputs),
        }
        if self.layout.n_future:
            columns["future"] = _fixed_list(block.future)
        if self.layout.task == "classify":
            columns["label"] = pa.array(block.labels, pa.int32())
        table = pa.table(columns, schema=self.segment_schema)
        self.segments.write_table(table, row_group_size=max(len(table), 1))
        split = np.concatenate([np.full(block.count(s), i, np.int8) for i, s in enumerate(SPLITS)])
        start = np.concatenate([block.starts[s] for s in SPLITS]).astype(np.int32)
        index = pa.table({"split": split, "start": start}, schema=self.index_schema)
        self.index.write_table(index, row_group_size=max(len(index), 1))
        number = len(self.blocks)
        self.blocks.append(
            {
                "rows": len(block),
                "series": len(block.names),
                "windows": {s: block.count(s) for s in SPLITS},
            }
        )
        for s in SPLITS:
            self.counts[s] += block.count(s)
        self._names.extend(block.names)
        self._series_block.extend([number] * len(block.names))
        self._static.append(block.static)

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.segments.close()
        self.index.close()
        for handle in self._handles:
            handle.close()
        if exc_type is not None:
            return
        static = (
            np.concatenate(self._static)
            if self._static
            else np.empty((0, self.layout.n_static), np.float32)
        )
        columns: dict[str, Any] = {
            "series": pa.array(self._names, pa.string()),
            "block": pa.array(self._series_block, pa.int32()),
        }
        if self.layout.n_static:
            columns["static"] = _fixed_list(static)
        storage.write_parquet(pa.table(columns), storage.join(self.uri, SERIES))
        storage.write_json(storage.join(self.uri, "scaler.json"), self.scaler.to_json())
        storage.write_json(storage.join(self.uri, "layout.json"), dataclasses.asdict(self.layout))


def read_layout(uri: str) -> WindowLayout:
    return WindowLayout(**storage.read_json(storage.join(uri, "layout.json")))


def read_scaler(uri: str) -> Scaler:
    return Scaler.from_json(storage.read_json(storage.join(uri, "scaler.json")))


def read_manifest(uri: str) -> dict[str, Any]:
    return storage.read_json(storage.join(uri, MANIFEST))


class StoreReader:
    """Random access to the blocks of a build: each read is one row group of each file."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.layout = read_layout(uri)
        self.manifest = read_manifest(uri)
        series = storage.read_parquet(storage.join(uri, SERIES))
        self.names: list[str] = series["series"].to_pylist()
        self.static = (
            _matrix(series["static"], self.layout.n_static)
            if self.layout.n_static
            else np.zeros((len(self.names), 0), np.float32)
        )
        fs, _ = storage.filesystem(uri)
        self._fs = fs
        self._segments: pq.ParquetFile | None = None
        self._index: pq.ParquetFile | None = None
        self._handles: list[Any] = []

    @property
    def n_blocks(self) -> int:
        return len(self.manifest["blocks"])

    def count(self, split: str, block: int | None = None) -> int:
        """Windows of ``split`` in one block, or in the whole build."""
        if block is None:
            return int(self.manifest["counts"][split])
        return int(self.manifest["blocks"][block]["windows"][split])

    def _file(self, name: str) -> pq.ParquetFile:
        _, path = storage.filesystem(storage.join(self.uri, name))
        handle = self._fs.open(path, "rb")
        self._handles.append(handle)
        return pq.ParquetFile(handle, pre_buffer=False, buffer_size=1 << 20)

    def block(self, number: int) -> SeriesWindows:
        """Rows and window starts of one block (series codes index ``self.names``)."""
        if self._segments is None:
            self._segments, self._index = self._file(SEGMENTS), self._file(INDEX)
        assert self._index is not None
        layout = self.layout
        rows = self._segments.read_row_group(number)
        index = self._index.read_row_group(number)
        split = index["split"].to_numpy()
        start = index["start"].to_numpy().astype(np.int64)
        n = rows.num_rows
        return SeriesWindows(
            stamps=rows["ts"].cast(pa.int64()).to_numpy(),
            inputs=_matrix(rows["inputs"], len(layout.input_columns)),
            future=(
                _matrix(rows["future"], layout.n_future)
                if layout.n_future
                else np.zeros((n, 0), np.float32)
            ),
            labels=(
                rows["label"].to_numpy() if layout.task == "classify" else np.empty(0, np.int32)
            ),
            series=rows["series"].to_numpy(),
            names=self.names,
            static=self.static,
            starts={s: start[split == i] for i, s in enumerate(SPLITS)},
        )

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles = []
        self._segments = self._index = None


def read_split(uri: str, split: str, layout: WindowLayout | None = None) -> WindowArrays:
    """Every window of one split, materialised (for evaluation; training streams instead)."""
    reader = StoreReader(uri)
    layout = layout or reader.layout
    try:
        parts = [
            cut_windows(block, block.starts[split], layout)
            for block in (reader.block(k) for k in range(reader.n_blocks))
        ]
    finally:
        reader.close()
    return concat_windows(parts)


def label_counts(uri: str, split: str) -> np.ndarray:
    """Windows per class id in one split (classify), read without cutting any window."""
    reader = StoreReader(uri)
    layout = reader.layout
    counts = np.zeros(len(layout.classes), np.int64)
    try:
        for number in range(reader.n_blocks):
            block = reader.block(number)
            rows = block.starts[split] + layout.lookback - 1 + layout.horizon
            counts += np.bincount(block.labels[rows], minlength=len(layout.classes))
    finally:
        reader.close()
    return counts
