"""Ingest: read the source files as they are into an immutable raw snapshot.

The snapshot keeps every value as the text it was written as (a Parquet source's typed
values as the text a CSV would hold), plus the file and line each row came from, so
validation parses strictly and names the exact rows that break the contract. The
snapshot is keyed by a fingerprint of the source bytes: ingesting unchanged files again
reuses it, and the source files are never modified or moved.

The files are read in batches (`seqcast.data.source_batches`) and the snapshot is written
as they come, one row group at a time (`seqcast.io.row_groups`), so ingest's memory follows
the batch size, not the source (issue 18). The snapshot's columns are known before the
first row is written: each file's header (CSV) or footer (Parquet) is read first.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import closing

import pandas as pd
import pyarrow as pa

from seqcast.config import READ_TIMEOUT_SECONDS, SourceSpec
from seqcast.data import source_batches, timed_reads
from seqcast.data.source_batches import SOURCE_FILE, SOURCE_LINE
from seqcast.errors import SourceError
from seqcast.io import row_groups, storage, work_dirs
from seqcast.records import SnapshotPlanRef, SnapshotRef

logger = logging.getLogger(__name__)

_READABLE = (".csv", ".parquet", ".pq", ".csv.gz")
SOURCE_TEST = "_source_test"
"""With ``source.test_path``: ``1`` on the rows read from it (the test split), ``0`` on the
others. Named like the other ``_source_`` columns, so no contract has to declare it."""
SOURCE_FUTURE = "_source_future"
"""With ``source.future_path`` at prediction: ``1`` on the rows read from it (known-future
covariates of the forecast steps, `seqcast.data.future_rows`), ``0`` on the others."""
LEFTOVER_GRACE = work_dirs.LEFTOVER_GRACE_SECONDS
"""A temporary file in a snapshot folder older than this is a dead run's (removed)."""
SNAPSHOT_FORMAT = "text1"
"""Version of the snapshot layout (values as text); a new layout never reuses an old one."""


def resolve_source_files(path: str, timeout: float = READ_TIMEOUT_SECONDS) -> list[str]:
    """Expand a file, glob or directory into a sorted list of CSV/Parquet file URIs.

    Raises:
        SourceError: nothing readable matches ``path``.
        SourceTimeoutError: the listing took over ``timeout`` seconds (a hung mount or store).
    """
    return timed_reads.call_within(
        lambda: _resolve(path), timeout, f"the listing of source.path {path!r}"
    )


def _resolve(path: str) -> list[str]:
    fs, fs_path = storage.filesystem(path)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if storage.is_local(fs) else f"{protocol}://"
    if any(ch in fs_path for ch in "*?["):
        matches = sorted(fs.glob(fs_path))
        if not matches:
            raise SourceError(
                f"source.path {path!r} matches no files; check the pattern and the directory"
            )
    elif fs.isdir(fs_path):
        matches = sorted(p for p in fs.find(fs_path) if p.lower().endswith(_READABLE))
        if not matches:
            raise SourceError(f"source.path {path!r} is a directory with no CSV or Parquet files")
    elif fs.exists(fs_path):
        matches = [fs_path]
    else:
        raise SourceError(f"source.path {path!r} does not exist")
    unreadable = [m for m in matches if not m.lower().endswith(_READABLE)]
    if unreadable:
        raise SourceError(
            f"source.path {path!r} matched files that are neither CSV nor Parquet: {unreadable[:3]}"
        )
    return [f"{prefix}{m}" if prefix and not m.startswith(prefix) else m for m in matches]


def fingerprint_files(uris: list[str], timeout: float = READ_TIMEOUT_SECONDS) -> str:
    """sha256 over each file's name and bytes: changes when any source file changes.

    Each file is read as `read_source_file` reads it: a stalled one fails after ``timeout``
    seconds with `SourceTimeoutError`.
    """
    digest = hashlib.sha256()
    for uri in uris:
        digest.update(uri.rsplit("/", 1)[-1].encode())
        content = hashlib.sha256()
        for chunk in timed_reads.chunks(uri, timeout):
            content.update(chunk)
        digest.update(content.hexdigest().encode())
    return digest.hexdigest()


def read_source_file(uri: str, timeout: float = READ_TIMEOUT_SECONDS) -> pd.DataFrame:
    """Read one CSV or Parquet file as text, adding the file name and line of each row.

    The whole file in one frame: for a sample or a test. The snapshot reads it in batches
    (`source_batches.iter_batches`, which this joins).

    Raises:
        SourceError: the file is not UTF-8, not well-formed CSV, or not readable Parquet;
            the message names the file (and the line where known).
        SourceTimeoutError: opening it or reading a chunk took over ``timeout`` seconds.
    """
    batches = list(source_batches.iter_batches(uri, timeout))
    return batches[0] if len(batches) == 1 else pd.concat(batches, ignore_index=True)


def raw_schema(columns: list[str]) -> pa.Schema:
    """The raw snapshot's schema: every source column as text, then where each row came from.

    Its pandas metadata is the one the whole-source frame gave (text columns, an int64
    line), so a reader's ``to_pandas`` gives the same frame however the file was written.
    """
    fields = [pa.field(c, pa.string()) for c in columns if c not in (SOURCE_FILE, SOURCE_LINE)]
    schema = pa.schema(
        [*fields, pa.field(SOURCE_FILE, pa.string()), pa.field(SOURCE_LINE, pa.int64())]
    )
    empty = _conform(pd.DataFrame({c: pd.Series([], dtype="str") for c in columns}), columns)
    return pa.Table.from_pandas(empty, schema=schema, preserve_index=False).schema


def _conform(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with the snapshot's ``columns`` in their order; one it lacks (a column of
    another file) is missing text (null), as joining the whole files gave."""
    frame = frame.reindex(columns=columns)
    return frame.astype({c: "str" for c in columns if c != SOURCE_LINE} | {SOURCE_LINE: "int64"})


def _snapshot_columns(parts: list[tuple[str, dict[str, str]]], timeout: float) -> list[str]:
    """Every file's columns, then the marks added to its rows, in order of first appearance
    (how the whole files' frames joined), from each file's header or footer."""
    columns: dict[str, None] = {}
    for uri, marks in parts:
        columns.update(dict.fromkeys([*source_batches.file_columns(uri, timeout), *marks]))
    return list(columns)


class SharedIds:
    """The series ids of the ``source.path`` rows and of the ``source.test_path`` rows, seen
    batch by batch: one found in both is refused (`check`)."""

    def __init__(self, series_id: str | None) -> None:
        self.column = series_id
        self.train: set[str] = set()
        self.test: set[str] = set()

    def add(self, frame: pd.DataFrame) -> None:
        if self.column is None or self.column not in frame.columns:
            return
        ids = frame[self.column]
        test = (frame[SOURCE_TEST] == "1").to_numpy(bool)
        self.test.update(ids[test].dropna().unique())
        self.train.update(ids[~test].dropna().unique())

    def check(self) -> None:
        shared = sorted(self.train & self.test)
        if shared:
            raise SourceError(
                f"{len(shared)} {self.column} value(s) appear both in source.path and in "
                f"source.test_path ({', '.join(map(str, shared[:5]))}): give the test series "
                "ids of their own (e.g. a prefix), so no series is in train and test at once."
            )


def plan_snapshot(
    source: SourceSpec,
    pipeline_root: str,
    with_test: bool = True,
    with_future: bool = False,
) -> SnapshotPlanRef:
    """The snapshot the source would give: the existing one (``reused``), or what to write.

    Lists the files and fingerprints their bytes; when no published snapshot has that
    fingerprint, reads each file's header (CSV) or footer (Parquet) for the snapshot's
    columns, so a file that cannot be opened fails here, before any row is written. A
    reused snapshot costs the fingerprint read only.

    The snapshot folder is shared by every run of the same source: two runs may write it
    at once (each replaces the data file atomically with the same bytes, then the
    manifest atomically), so nothing in it is removed but temporary files older than
    `LEFTOVER_GRACE`.
    """
    timeout = source.read_timeout_seconds
    uris = resolve_source_files(source.path, timeout)
    fingerprint = fingerprint_files(uris, timeout)
    test_uris: list[str] = []
    if with_test and source.test_path is not None:
        test_uris = resolve_source_files(source.test_path, timeout)
        test_print = fingerprint_files(test_uris, timeout)
        fingerprint = hashlib.sha256(f"{fingerprint}:test:{test_print}".encode()).hexdigest()
    future_uris: list[str] = []
    if with_future and source.future_path is not None:
        future_uris = resolve_source_files(source.future_path, timeout)
        future_print = fingerprint_files(future_uris, timeout)
        fingerprint = hashlib.sha256(f"{fingerprint}:future:{future_print}".encode()).hexdigest()
    snapshot_dir = storage.join(pipeline_root, "raw", f"{fingerprint[:16]}-{SNAPSHOT_FORMAT}")
    manifest_uri = storage.join(snapshot_dir, "manifest.json")
    if storage.exists(manifest_uri):
        manifest = storage.read_json(manifest_uri)
        logger.info("Source unchanged: reusing raw snapshot %s", snapshot_dir)
        reused = SnapshotRef(**manifest["ref"])
        return SnapshotPlanRef(uri=snapshot_dir, fingerprint=fingerprint, reused=reused)
    # No manifest: another run may be writing this snapshot right now, so nothing here is
    # removed but a dead run's old temporary files. Its data file, if any, was written
    # whole (atomically), and this run replaces it with the same bytes.
    _remove_stale_temporaries(snapshot_dir)
    parts = _marked(uris, test_uris, future_uris)
    return SnapshotPlanRef(
        uri=snapshot_dir,
        fingerprint=fingerprint,
        files=[uri for uri, _ in parts],
        marks=[marks for _, marks in parts],
        columns=_snapshot_columns(parts, timeout),
        shared_ids=bool(test_uris),
    )


def _remove_stale_temporaries(snapshot_dir: str) -> None:
    """Delete the temporary files (`storage.atomic_writer`) in ``snapshot_dir`` older than
    `work_dirs.LEFTOVER_GRACE_SECONDS`: a live writer's are younger, a dead one's stay."""
    fs, path = storage.filesystem(snapshot_dir)
    if not fs.isdir(path):
        return
    for entry in fs.ls(path, detail=False):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith(".tmp-") and work_dirs.mtime_age(fs, entry) > LEFTOVER_GRACE:
            logger.info("Removing a dead ingest's temporary file %s", entry)
            fs.rm(entry)


def source_file_count(source: SourceSpec, with_test: bool = True, with_future: bool = False) -> int:
    """How many files the snapshot reads (as `plan_snapshot` lists them; none is opened).

    Raises:
        SourceError: a path matches nothing readable.
    """
    paths = [source.path]
    if with_test and source.test_path is not None:
        paths.append(source.test_path)
    if with_future and source.future_path is not None:
        paths.append(source.future_path)
    return sum(len(resolve_source_files(p, source.read_timeout_seconds)) for p in paths)


def snapshot_source(
    source: SourceSpec,
    pipeline_root: str,
    with_test: bool = True,
    with_future: bool = False,
    batch_rows: int = source_batches.BATCH_ROWS,
) -> SnapshotRef:
    """Write the source to ``{pipeline_root}/raw/{fingerprint}/`` unless that snapshot exists.

    ``with_test``: also read ``source.test_path`` (its rows marked in `SOURCE_TEST`); a
    prediction run reads ``source.path`` and, ``with_future``, ``source.future_path`` (its
    rows marked in `SOURCE_FUTURE`: the known-future covariates of the forecast steps).

    The files are read ``batch_rows`` rows at a time and written as they are read, so memory
    follows the batch, not the source; the snapshot is the same for any ``batch_rows``.
    One file after another, in this process; `seqcast.data.snapshot_parts` writes the same
    snapshot with the files read by parallel tasks.
    """
    if batch_rows < 1:
        raise ValueError(
            f"`batch_rows` must be a positive integer. Received: batch_rows={batch_rows}"
        )
    plan = plan_snapshot(source, pipeline_root, with_test, with_future)
    if plan.reused is not None:
        return plan.reused
    schema = raw_schema(plan.columns)
    shared = SharedIds(source.series_id) if plan.shared_ids else None
    with row_groups.parquet_writer(data_uri(plan), schema) as snapshot:
        for uri, marks in zip(plan.files, plan.marks, strict=True):
            tables = file_tables(uri, marks, plan.columns, source, batch_rows, shared)
            for table in tables:
                snapshot.write(table)
        if shared is not None:
            shared.check()  # before the file is published: no snapshot of a refused source
    return publish_snapshot(source, plan, snapshot.rows)


def data_uri(plan: SnapshotPlanRef) -> str:
    """Where the snapshot's rows go: ``data.parquet`` in its folder."""
    return storage.join(plan.uri, "data.parquet")


def file_tables(
    uri: str,
    marks: dict[str, str],
    columns: list[str],
    source: SourceSpec,
    batch_rows: int,
    shared: SharedIds | None = None,
) -> Iterator[pa.Table]:
    """One file's rows as tables of the snapshot's schema, ``batch_rows`` at a time: its
    columns conformed to ``columns``, ``marks`` added, the series ids seen to ``shared``."""
    schema = raw_schema(columns)
    for batch in source_batches.iter_batches(uri, source.read_timeout_seconds, batch_rows):
        frame = _conform(batch.assign(**marks), columns)
        if shared is not None:
            shared.add(frame)
        yield pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def publish_snapshot(source: SourceSpec, plan: SnapshotPlanRef, rows: int) -> SnapshotRef:
    """Commit the snapshot whose data file is written: its manifest is the commit marker
    (a snapshot folder without one is cleared and written again by the next run)."""
    ref = SnapshotRef(uri=data_uri(plan), rows=rows, fingerprint=plan.fingerprint, files=plan.files)
    manifest_uri = storage.join(plan.uri, "manifest.json")
    storage.write_json(manifest_uri, {"ref": ref.model_dump(), "source": source.model_dump()})
    logger.info("Raw snapshot of %d rows from %d file(s) at %s", rows, len(plan.files), ref.uri)
    return ref


def _marked(
    uris: list[str], test_uris: list[str], future_uris: list[str]
) -> list[tuple[str, dict[str, str]]]:
    """Each file with the marks its rows get: `SOURCE_TEST` when there are test files,
    `SOURCE_FUTURE` when there are future files (a future file's rows have no test mark)."""
    parts: list[tuple[str, dict[str, str]]] = [(u, {}) for u in uris]
    if test_uris:
        parts = [(u, {**m, SOURCE_TEST: "0"}) for u, m in parts]
        parts += [(u, {SOURCE_TEST: "1"}) for u in test_uris]
    if future_uris:
        parts = [(u, {**m, SOURCE_FUTURE: "0"}) for u, m in parts]
        parts += [(u, {SOURCE_FUTURE: "1"}) for u in future_uris]
    return parts


def read_sample(source: SourceSpec, max_rows: int = 10_000) -> tuple[pd.DataFrame, list[str]]:
    """The first ``max_rows`` rows of the source (files in order), and the files read.

    For drafting a contract: enough rows to see every column, range and the time step. A
    file is read only as far as the sample needs.
    """
    if max_rows < 1:
        raise ValueError(f"`max_rows` must be a positive integer. Received: max_rows={max_rows}")
    timeout = source.read_timeout_seconds
    frames: list[pd.DataFrame] = []
    read: list[str] = []
    rows = 0
    for uri in resolve_source_files(source.path, timeout):
        read.append(uri)
        batch_rows = min(max_rows, source_batches.BATCH_ROWS)
        with closing(source_batches.iter_batches(uri, timeout, batch_rows)) as batches:
            for batch in batches:
                frames.append(batch)
                rows += len(batch)
                if rows >= max_rows:
                    break
        if rows >= max_rows:
            break
    frame = pd.concat(frames, ignore_index=True)
    return frame.head(max_rows), read
