"""The window store: series rows plus a window index, published by one atomic pointer swap.

Layout of one pipeline's windows (``{pipeline_root}/windows/``)::

    builds/{key16}-{uid}/          one immutable build (never renamed or changed)
        segments.parquet           one row per grid step of every series that has windows:
                                   series (int32 code), ts, inputs (scaled, fixed-size
                                   list), future (covariates), label (classify); one row
                                   group per block of whole series
        index.parquet              one row per window: split (int8), start (int32 row of
                                   its block); one row group per block, aligned with segments
        series.parquet             series id, block and static features per series code
        scaler.json, layout.json   how the rows were scaled; what a model reads
        manifest.json              files (bytes, rows, schema, sha256), counts, inputs
        _writer.json               present only while a writer works (host, pid, start)
    {key16}.json                   the pointer: which build holds the windows for a key
    current.json                   the pointer to the latest published build

Windows are not materialised on disk: a window is a start row, cut from its block's rows
when read (`seqcast.windowing.cut_windows`). The store is as large as the validated data
instead of ``lookback`` times larger; benchmarks/README.md has the numbers.

A build is written in place under a fresh name, checksummed into its manifest, and
published by writing its key's pointer (one small atomic file write; on object stores a
single PUT). A writer that dies leaves an unreferenced build that readers never see;
`WindowStore.clean` removes it on the next run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from seqcast import __version__, storage
from seqcast.scaling import Scaler
from seqcast.windowing import (
    SPLITS,
    SeriesWindows,
    WindowArrays,
    WindowLayout,
    concat_windows,
    cut_windows,
)

logger = logging.getLogger(__name__)

FORMAT = "seqcast.windows/2"
SEGMENTS, INDEX, SERIES = "segments.parquet", "index.parquet", "series.parquet"
MANIFEST, WRITER = "manifest.json", "_writer.json"
PAYLOAD = (SEGMENTS, INDEX, SERIES, "scaler.json", "layout.json")
LEFTOVER_GRACE_SECONDS = 6 * 3600
"""An unreferenced build whose writer cannot be checked is removed after this long."""

_CODE_MODULES = (
    "series_grid.py",
    "series_source.py",
    "covariates.py",
    "scaling.py",
    "windowing.py",
    "window_build.py",
    "window_store.py",
)


@lru_cache(maxsize=1)
def code_version() -> str:
    """The package version plus a hash of the modules that shape windows: a code change
    that could change windows changes the cache key."""
    digest = hashlib.sha256()
    for name in _CODE_MODULES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def windows_fingerprint(data_fingerprint: str, settings: dict, code: str | None = None) -> str:
    """Key of a windows build: the data, every setting that shapes windows, the code."""
    payload = json.dumps(
        {"data": data_fingerprint, "settings": settings, "code": code or code_version()},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


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


# --- publishing -------------------------------------------------------------------------


def _file_entry(uri: str) -> dict[str, Any]:
    fs, path = storage.filesystem(uri)
    entry: dict[str, Any] = {"bytes": int(fs.size(path)), "sha256": storage.sha256_of(uri)}
    if uri.endswith(".parquet"):
        with fs.open(path, "rb") as handle:
            meta = pq.ParquetFile(handle)
            entry["rows"] = meta.metadata.num_rows
            entry["schema"] = {f.name: str(f.type) for f in meta.schema_arrow}
    return entry


def verify(uri: str, checksums: bool = True) -> list[str]:
    """Problems with a build: missing files, wrong sizes, (optionally) wrong sha256."""
    try:
        manifest = read_manifest(uri)
    except FileNotFoundError:
        return [f"{uri}: no {MANIFEST}"]
    problems = []
    for name, expected in manifest["files"].items():
        file_uri = storage.join(uri, name)
        fs, path = storage.filesystem(file_uri)
        if not fs.exists(path):
            problems.append(f"{file_uri}: missing")
        elif int(fs.size(path)) != expected["bytes"]:
            problems.append(f"{file_uri}: {fs.size(path)} bytes, manifest says {expected['bytes']}")
        elif checksums and storage.sha256_of(file_uri) != expected["sha256"]:
            problems.append(f"{file_uri}: sha256 differs from the manifest")
    return problems


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a live writer from a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _writer_alive(marker: dict[str, Any]) -> bool | None:
    """True/False for a writer on this host; None when it cannot be checked from here."""
    if marker.get("host") != socket.gethostname():
        return None
    pid = int(marker.get("pid", -1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = marker.get("process_start")
    return started is None or _process_start(pid) in (None, started)


def _mtime_age(fs: Any, path: str) -> float:
    """Seconds since ``path`` was modified; 0 where the filesystem does not say (kept)."""
    try:
        info = fs.info(path)
    except FileNotFoundError:
        return 0.0
    mtime = info.get("mtime") or info.get("LastModified") or info.get("updated")
    if mtime is None:
        return 0.0
    if isinstance(mtime, str):
        mtime = datetime.fromisoformat(mtime.replace("Z", "+00:00"))
    if isinstance(mtime, datetime):
        mtime = mtime.timestamp()
    return datetime.now(UTC).timestamp() - float(mtime)


def _age_seconds(when: str | None) -> float:
    if not when:
        return float("inf")
    return (datetime.now(UTC) - datetime.fromisoformat(when)).total_seconds()


class WindowStore:
    """One pipeline's window builds and the pointers that publish them."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    def pointer_uri(self, key: str) -> str:
        return storage.join(self.root, f"{key[:16]}.json")

    def _pointers(self) -> list[dict[str, Any]]:
        fs, path = storage.filesystem(self.root)
        if not fs.exists(path):
            return []
        found = []
        for entry in fs.ls(path, detail=False):
            name = entry.rsplit("/", 1)[-1]
            if name.endswith(".json") and not name.startswith("."):
                try:
                    found.append(storage.read_json(storage.join(self.root, name)))
                except (OSError, ValueError):
                    continue  # a pointer being replaced right now; the next run sees it
        return found

    def lookup(self, key: str) -> str | None:
        """The published build for ``key`` if it is whole (files present, sizes match)."""
        pointer = self.pointer_uri(key)
        if not storage.exists(pointer):
            return None
        target = storage.read_json(pointer)
        uri = storage.join(self.root, target["build"])
        if target.get("key") != key:
            logger.warning("%s names another key; rebuilding", pointer)
            return None
        problems = verify(uri, checksums=False)
        if problems:
            logger.warning("published windows damaged, rebuilding: %s", "; ".join(problems))
            return None
        return uri

    def begin(self, key: str) -> str:
        """A fresh build directory, marked as being written by this process."""
        uri = storage.join(self.root, "builds", f"{key[:16]}-{uuid.uuid4().hex[:12]}")
        pid = os.getpid()
        storage.write_json(
            storage.join(uri, WRITER),
            {
                "host": socket.gethostname(),
                "pid": pid,
                "process_start": _process_start(pid),
                "started": datetime.now(UTC).isoformat(),
            },
        )
        return uri

    def publish(
        self,
        key: str,
        uri: str,
        inputs: dict[str, Any],
        counts: dict[str, int],
        blocks: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """Checksum the build into its manifest, then swap the key's pointer to it."""
        manifest = {
            "format": FORMAT,
            "key": key,
            "created": datetime.now(UTC).isoformat(),
            "inputs": inputs,
            "counts": counts,
            "blocks": blocks,
            "files": {name: _file_entry(storage.join(uri, name)) for name in PAYLOAD},
        }
        storage.write_json(storage.join(uri, MANIFEST), manifest)
        fs, path = storage.filesystem(storage.join(uri, WRITER))
        fs.rm(path)
        build = uri[len(self.root) + 1 :]
        pointer = {"key": key, "build": build, "counts": counts, "published": manifest["created"]}
        storage.write_json(self.pointer_uri(key), pointer)  # the commit point
        storage.write_json(storage.join(self.root, "current.json"), pointer)
        return manifest

    def mark_current(self, key: str) -> None:
        """Point ``current.json`` at ``key``'s build (after a cache hit)."""
        pointer = storage.read_json(self.pointer_uri(key))
        current = storage.join(self.root, "current.json")
        if not storage.exists(current) or storage.read_json(current).get("key") != key:
            storage.write_json(current, pointer)

    def abandon(self, uri: str) -> None:
        fs, path = storage.filesystem(uri)
        if fs.exists(path):
            fs.rm(path, recursive=True)

    def clean(self, grace_seconds: float = LEFTOVER_GRACE_SECONDS) -> list[str]:
        """Remove builds no pointer names whose writer is dead (or older than the grace).

        Returns:
            The URIs removed.
        """
        fs, builds = storage.filesystem(storage.join(self.root, "builds"))
        if not fs.exists(builds):
            return []
        referenced = {p.get("build", "").rsplit("/", 1)[-1] for p in self._pointers()}
        removed = self._clean_root_files(grace_seconds)
        for entry in fs.ls(builds, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name in referenced:
                continue
            uri = storage.join(self.root, "builds", name)
            if self._is_leftover(uri, grace_seconds):
                self.abandon(uri)
                removed.append(uri)
        if removed:
            logger.info("removed %d leftover window build(s): %s", len(removed), removed)
        return removed

    def _is_leftover(self, uri: str, grace_seconds: float) -> bool:
        marker_uri = storage.join(uri, WRITER)
        if storage.exists(marker_uri):
            try:
                marker = storage.read_json(marker_uri)
            except (OSError, ValueError):
                return False  # being written this instant
            alive = _writer_alive(marker)
            if alive is False:
                return True
            return _age_seconds(marker.get("started")) > grace_seconds
        manifest_uri = storage.join(uri, MANIFEST)
        if storage.exists(manifest_uri):
            # Whole but unpublished (a writer lost a race, or died before its pointer).
            return _age_seconds(read_manifest(uri).get("created")) > grace_seconds
        fs, path = storage.filesystem(uri)
        return _mtime_age(fs, path) > grace_seconds  # a writer that died before it began

    def _clean_root_files(self, grace_seconds: float) -> list[str]:
        """Old temporary pointer files and staging directories of interrupted writes."""
        fs, root = storage.filesystem(self.root)
        removed = []
        for entry in fs.ls(root, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith((".tmp-", ".staging-")) and _mtime_age(fs, entry) > grace_seconds:
                fs.rm(entry, recursive=True)
                removed.append(storage.join(self.root, name))
        return removed


def ensure_windows(
    store: WindowStore,
    key: str,
    inputs: dict[str, Any],
    build: Callable[[str], tuple[dict[str, int], list[dict[str, Any]]]],
) -> tuple[str, bool]:
    """The build for ``key``: the published one, or a new one made by ``build(uri)``.

    Leftovers of dead writers are removed first. ``build`` writes into the fresh
    directory it is given and returns the counts per split and the block summaries.

    Returns:
        The build's URI and whether it was reused.
    """
    store.clean()
    found = store.lookup(key)
    if found is not None:
        store.mark_current(key)
        return found, True
    uri = store.begin(key)
    try:
        counts, blocks = build(uri)
        store.publish(key, uri, inputs, counts, blocks)
    except BaseException:
        store.abandon(uri)
        raise
    return uri, False
