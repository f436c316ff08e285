"""Ingest: read the source files as they are into an immutable raw snapshot.

The snapshot keeps every value as the text it was written as (a Parquet source's typed
values as the text a CSV would hold), plus the file and line each row came from, so
validation parses strictly and names the exact rows that break the contract. The
snapshot is keyed by a fingerprint of the source bytes: ingesting unchanged files again
reuses it, and the source files are never modified or moved.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from seqcast.config import READ_TIMEOUT_SECONDS, SourceSpec
from seqcast.data import parsing, timed_reads
from seqcast.errors import SourceError
from seqcast.io import storage
from seqcast.records import SnapshotRef

logger = logging.getLogger(__name__)

SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"
_READABLE = (".csv", ".parquet", ".pq", ".csv.gz")
SOURCE_TEST = "_source_test"
"""With ``source.test_path``: ``1`` on the rows read from it (the test split), ``0`` on the
others. Named like the other ``_source_`` columns, so no contract has to declare it."""
SOURCE_FUTURE = "_source_future"
"""With ``source.future_path`` at prediction: ``1`` on the rows read from it (known-future
covariates of the forecast steps, `seqcast.data.future_rows`), ``0`` on the others."""
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


def _decode(data: bytes, uri: str) -> str:
    """UTF-8 text with or without a byte-order mark; anything else names the line and byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise SourceError(
            f"{uri} is not UTF-8 text: byte 0x{bad} at line {line} (byte offset {exc.start}) "
            f"cannot be decoded. Re-export the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
        ) from exc


def read_csv_text(text: str, uri: str) -> pd.DataFrame:
    """Every value as the text it was written as; blank stays blank (``""``), CRLF is fine.

    No type is guessed here: a number that arrived as ``"12,5"`` stays that text, so the
    validate step can report it with its line instead of a reader coercing it.
    """
    if not text.strip():
        return pd.DataFrame()
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.ParserError as exc:
        raise SourceError(f"{uri} is not a well-formed CSV file: {exc}") from exc


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A typed (Parquet) frame as text, like a CSV: ISO 8601 timestamps, exact floats."""
    return pd.DataFrame(
        {column: parsing.as_text(frame[column]) for column in frame.columns}, index=frame.index
    )


def read_source_file(uri: str, timeout: float = READ_TIMEOUT_SECONDS) -> pd.DataFrame:
    """Read one CSV or Parquet file as text, adding the file name and line of each row.

    Raises:
        SourceError: the file is not UTF-8, not well-formed CSV, or not readable Parquet;
            the message names the file (and the line where known).
        SourceTimeoutError: opening it or reading a chunk took over ``timeout`` seconds.
    """
    _, path = storage.filesystem(uri)
    name = uri.rsplit("/", 1)[-1]
    try:
        data = timed_reads.read_bytes(uri, timeout)
    except OSError as exc:
        raise SourceError(f"{uri} cannot be read: {exc}") from exc
    if path.lower().endswith((".parquet", ".pq")):
        try:
            frame = _as_text(pq.read_table(io.BytesIO(data)).to_pandas())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise SourceError(
                f"{uri} is not a readable Parquet file (truncated or corrupt?): {exc}. "
                "Re-export it; the snapshot keeps the files read so far."
            ) from exc
        first_line = 1  # Parquet has no header line: rows count from 1
    else:
        if path.lower().endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise SourceError(f"{uri} is not a readable gzip file: {exc}") from exc
        frame = read_csv_text(_decode(data, uri), uri)
        first_line = 2  # line 1 is the header
    frame[SOURCE_FILE] = pd.Series([name] * len(frame), index=frame.index, dtype="str")
    frame[SOURCE_LINE] = np.arange(first_line, first_line + len(frame), dtype=np.int64)
    return frame


def raw_schema(frame: pd.DataFrame) -> pa.Schema:
    """The raw snapshot's schema: every source column as text, then where each row came from."""
    fields = [
        pa.field(c, pa.string()) for c in frame.columns if c not in (SOURCE_FILE, SOURCE_LINE)
    ]
    return pa.schema(
        [*fields, pa.field(SOURCE_FILE, pa.string()), pa.field(SOURCE_LINE, pa.int64())]
    )


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=raw_schema(frame), preserve_index=False)


def _check_test_ids(frame: pd.DataFrame, source: SourceSpec) -> None:
    """Refuse a series id found both in ``source.path`` and in ``source.test_path``."""
    if source.series_id is None or source.series_id not in frame.columns:
        return
    test = frame[SOURCE_TEST] == "1"
    shared = sorted(
        set(frame.loc[test, source.series_id]) & set(frame.loc[~test, source.series_id])
    )
    if shared:
        raise SourceError(
            f"{len(shared)} {source.series_id} value(s) appear both in source.path and in "
            f"source.test_path ({', '.join(map(str, shared[:5]))}): give the test series ids "
            "of their own (e.g. a prefix), so no series is in train and test at once."
        )


def snapshot_source(
    source: SourceSpec, pipeline_root: str, with_test: bool = True, with_future: bool = False
) -> SnapshotRef:
    """Write the source to ``{pipeline_root}/raw/{fingerprint}/`` unless that snapshot exists.

    ``with_test``: also read ``source.test_path`` (its rows marked in `SOURCE_TEST`); a
    prediction run reads ``source.path`` and, ``with_future``, ``source.future_path`` (its
    rows marked in `SOURCE_FUTURE`: the known-future covariates of the forecast steps).
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
        return SnapshotRef(**manifest["ref"])
    frames = [read_source_file(u, timeout) for u in uris]
    if test_uris:
        frames = [f.assign(**{SOURCE_TEST: "0"}) for f in frames]
        frames += [read_source_file(u, timeout).assign(**{SOURCE_TEST: "1"}) for u in test_uris]
    if future_uris:
        frames = [f.assign(**{SOURCE_FUTURE: "0"}) for f in frames]
        frames += [read_source_file(u, timeout).assign(**{SOURCE_FUTURE: "1"}) for u in future_uris]
    frame = pd.concat(frames, ignore_index=True)
    # pandas fills a column that some files lack with NaN: keep it as a missing (null) text.
    frame = frame.astype({c: "str" for c in frame.columns if c != SOURCE_LINE})
    if test_uris:
        _check_test_ids(frame, source)
    uris = uris + test_uris + future_uris
    data_uri = storage.join(snapshot_dir, "data.parquet")
    storage.write_parquet(_to_arrow(frame), data_uri)
    ref = SnapshotRef(uri=data_uri, rows=len(frame), fingerprint=fingerprint, files=uris)
    # The manifest is the commit marker: a snapshot without one is rewritten next time.
    storage.write_json(manifest_uri, {"ref": ref.model_dump(), "source": source.model_dump()})
    logger.info("Raw snapshot of %d rows from %d file(s) at %s", len(frame), len(uris), data_uri)
    return ref


def read_sample(source: SourceSpec, max_rows: int = 10_000) -> tuple[pd.DataFrame, list[str]]:
    """The first ``max_rows`` rows of the source (whole files, in order), and the files read.

    For drafting a contract: enough rows to see every column, range and the time step.
    """
    if max_rows < 1:
        raise ValueError(f"`max_rows` must be a positive integer. Received: max_rows={max_rows}")
    frames, read = [], []
    for uri in resolve_source_files(source.path, source.read_timeout_seconds):
        frames.append(read_source_file(uri, source.read_timeout_seconds))
        read.append(uri)
        if sum(len(f) for f in frames) >= max_rows:
            break
    frame = pd.concat(frames, ignore_index=True)
    return frame.head(max_rows), read
