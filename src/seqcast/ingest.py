"""Ingest: read the source files as they are into an immutable raw snapshot.

The snapshot keeps values as read (a number that arrived as text stays text) plus the
file and line each row came from, so validation can name the exact rows that break the
contract. The snapshot is keyed by a fingerprint of the source bytes: ingesting
unchanged files again reuses it, and the source files are never modified.
"""

from __future__ import annotations

import hashlib
import logging

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from seqcast import storage
from seqcast.config import SourceSpec
from seqcast.errors import SourceError
from seqcast.records import SnapshotRef

logger = logging.getLogger(__name__)

SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"
_READABLE = (".csv", ".parquet", ".pq", ".csv.gz")


def resolve_source_files(path: str) -> list[str]:
    """Expand a file, glob or directory into a sorted list of CSV/Parquet file URIs."""
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


def fingerprint_files(uris: list[str]) -> str:
    """sha256 over each file's name and bytes: changes when any source file changes."""
    digest = hashlib.sha256()
    for uri in uris:
        digest.update(uri.rsplit("/", 1)[-1].encode())
        digest.update(storage.sha256_of(uri).encode())
    return digest.hexdigest()


def read_source_file(uri: str) -> pd.DataFrame:
    """Read one CSV or Parquet file as-is, adding the file name and line of each row."""
    fs, path = storage.filesystem(uri)
    try:
        with fs.open(path, "rb") as handle:
            if path.lower().endswith((".parquet", ".pq")):
                frame = pq.read_table(handle).to_pandas()
                first_line = 1
            else:
                compression = "gzip" if path.lower().endswith(".gz") else None
                frame = pd.read_csv(handle, encoding="utf-8-sig", compression=compression)
                first_line = 2  # line 1 is the header
    except UnicodeDecodeError as exc:
        raise SourceError(f"{uri} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except (pd.errors.ParserError, pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{uri} cannot be read: {exc}") from exc
    frame[SOURCE_FILE] = uri.rsplit("/", 1)[-1]
    frame[SOURCE_LINE] = range(first_line, first_line + len(frame))
    return frame


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Arrow table of the raw frame; a column of mixed Python types is stored as text."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        mixed = {c: frame[c].astype("string") for c in frame.columns if frame[c].dtype == object}
        return pa.Table.from_pandas(frame.assign(**mixed), preserve_index=False)


def snapshot_source(source: SourceSpec, pipeline_root: str) -> SnapshotRef:
    """Write the source to ``{pipeline_root}/raw/{fingerprint}/`` unless that snapshot exists."""
    uris = resolve_source_files(source.path)
    fingerprint = fingerprint_files(uris)
    snapshot_dir = storage.join(pipeline_root, "raw", fingerprint[:16])
    manifest_uri = storage.join(snapshot_dir, "manifest.json")
    if storage.exists(manifest_uri):
        manifest = storage.read_json(manifest_uri)
        logger.info("Source unchanged: reusing raw snapshot %s", snapshot_dir)
        return SnapshotRef(**manifest["ref"])
    frame = pd.concat([read_source_file(u) for u in uris], ignore_index=True)
    data_uri = storage.join(snapshot_dir, "data.parquet")
    storage.write_parquet(_to_arrow(frame), data_uri)
    ref = SnapshotRef(uri=data_uri, rows=len(frame), fingerprint=fingerprint, files=uris)
    # The manifest is the commit marker: a snapshot without one is rewritten next time.
    storage.write_json(manifest_uri, {"ref": ref.model_dump(), "source": source.model_dump()})
    logger.info("Raw snapshot of %d rows from %d file(s) at %s", len(frame), len(uris), data_uri)
    return ref
