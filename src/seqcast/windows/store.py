"""The window store's format: series rows plus a window index, as Parquet, in parts.

One build directory (see `seqcast.windows.publish` for how builds are published)::

    segments-{part}.parquet  one row per grid step of every series of one part (a shard of
                             series, written by one task) that has windows: series (int32
                             code into the part's series file), ts, inputs (scaled,
                             fixed-size list), future (covariates), label (classify); one
                             row group per block of whole series
    index-{part}.parquet     one row per window: split (int8), start (int32 row of its
                             block); one row group per block, aligned with segments
    series-{part}.parquet    series id, row group and static features per series code
    scaler.json, layout.json how the rows were scaled; what a model reads
    manifest.json            files (bytes, rows, schema, sha256), counts, blocks (each with
                             its part and row group), inputs

Windows are not materialised on disk: a window is a start row, cut from its block's rows
when read (`seqcast.windows.windowing.cut_windows`). The store is as large as the validated data
instead of ``lookback`` times larger, and a block is the unit of reading: one row group
of each file of its part. Parts let shards of series be written in parallel, each into
its own files, with no copy afterwards. benchmarks/README.md has the numbers behind this
layout.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from seqcast.io import storage
from seqcast.windows.scaling import Scaler
from seqcast.windows.windowing import (
    SPLITS,
    SeriesWindows,
    WindowArrays,
    WindowLayout,
    concat_windows,
    cut_windows,
)

FORMAT = "seqcast.windows/3"
SCALER, LAYOUT = "scaler.json", "layout.json"
MANIFEST, WRITER = "manifest.json", "_writer.json"


def part_files(part: int) -> tuple[str, str, str]:
    """The segments, index and series file names of one part."""
    return (
        f"segments-{part:05d}.parquet",
        f"index-{part:05d}.parquet",
        f"series-{part:05d}.parquet",
    )


def payload_files(blocks: list[dict[str, Any]]) -> list[str]:
    """Every file a build with these block summaries holds (the manifest's ``files``)."""
    parts = sorted({int(b["part"]) for b in blocks})
    return [SCALER, LAYOUT, *(name for part in parts for name in part_files(part))]


def _fixed_list(values: np.ndarray) -> pa.Array:
    width = values.shape[1]
    flat = pa.array(np.ascontiguousarray(values, np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width)


def _matrix(column: pa.ChunkedArray, width: int) -> np.ndarray:
    """A fixed-size-list column as a (rows, width) float32 array."""
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(-1, width)


class BlockWriter:
    """Writes blocks of whole series (`SeriesWindows`) into one part of a build directory.

    The part's files are opened at the first block: a shard whose series have no windows
    leaves no files.
    """

    def __init__(self, uri: str, layout: WindowLayout, part: int = 0) -> None:
        self.uri = uri
        self.layout = layout
        self.part = part
        self.counts = dict.fromkeys(SPLITS, 0)
        self.blocks: list[dict[str, Any]] = []
        self._names: list[str] = []
        self._series_block: list[int] = []
        self._static: list[np.ndarray] = []
        self._handles: list[Any] = []
        self.segments: pq.ParquetWriter | None = None
        self.index: pq.ParquetWriter | None = None
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
        return self

    def write(self, block: SeriesWindows) -> None:
        """Append one block: its rows as a segments row group, its windows as an index one."""
        if self.segments is None or self.index is None:
            segments, index, _ = part_files(self.part)
            self.segments = self._open(segments, self.segment_schema)
            self.index = self._open(index, self.index_schema)
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
        group = len(self.blocks)
        self.blocks.append(
            {
                "part": self.part,
                "group": group,
                "rows": len(block),
                "series": len(block.names),
                "windows": {s: block.count(s) for s in SPLITS},
            }
        )
        for s in SPLITS:
            self.counts[s] += block.count(s)
        self._names.extend(block.names)
        self._series_block.extend([group] * len(block.names))
        self._static.append(block.static)

    def __exit__(self, exc_type: object, *_: object) -> None:
        for writer in (self.segments, self.index):
            if writer is not None:
                writer.close()
        for handle in self._handles:
            handle.close()
        if exc_type is not None or not self.blocks:
            return
        columns: dict[str, Any] = {
            "series": pa.array(self._names, pa.string()),
            "group": pa.array(self._series_block, pa.int32()),
        }
        if self.layout.n_static:
            columns["static"] = _fixed_list(np.concatenate(self._static))
        storage.write_parquet(pa.table(columns), storage.join(self.uri, part_files(self.part)[2]))


def write_plan(uri: str, layout: WindowLayout, scaler: Scaler) -> None:
    """Write what every part shares: how rows were scaled and what a model reads."""
    storage.write_json(storage.join(uri, SCALER), scaler.to_json())
    storage.write_json(storage.join(uri, LAYOUT), dataclasses.asdict(layout))


def read_layout(uri: str) -> WindowLayout:
    return WindowLayout(**storage.read_json(storage.join(uri, LAYOUT)))


def read_scaler(uri: str) -> Scaler:
    return Scaler.from_json(storage.read_json(storage.join(uri, SCALER)))


def read_manifest(uri: str) -> dict[str, Any]:
    return storage.read_json(storage.join(uri, MANIFEST))


class StoreReader:
    """Random access to the blocks of a build: each read is one row group of each file."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.layout = read_layout(uri)
        self.manifest = read_manifest(uri)
        fs, _ = storage.filesystem(uri)
        self._fs = fs
        self._parts: dict[int, tuple[pq.ParquetFile, pq.ParquetFile]] = {}
        self._series: dict[int, tuple[list[str], np.ndarray]] = {}
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

    def series(self, part: int) -> tuple[list[str], np.ndarray]:
        """The series ids of one part and their static features, (series, n_static)."""
        if part not in self._series:
            table = storage.read_parquet(storage.join(self.uri, part_files(part)[2]))
            names: list[str] = table["series"].to_pylist()
            static = (
                _matrix(table["static"], self.layout.n_static)
                if self.layout.n_static
                else np.zeros((len(names), 0), np.float32)
            )
            self._series[part] = (names, static)
        return self._series[part]

    def block(self, number: int) -> SeriesWindows:
        """Rows and window starts of one block (series codes index its part's ``names``)."""
        entry = self.manifest["blocks"][number]
        part, group = int(entry["part"]), int(entry["group"])
        if part not in self._parts:
            segments, index, _ = part_files(part)
            self._parts[part] = (self._file(segments), self._file(index))
        segments_file, index_file = self._parts[part]
        names, static = self.series(part)
        layout = self.layout
        rows = segments_file.read_row_group(group)
        index = index_file.read_row_group(group)
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
            names=names,
            static=static,
            starts={s: start[split == i] for i, s in enumerate(SPLITS)},
        )

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles = []
        self._parts = {}


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
