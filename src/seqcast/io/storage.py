"""Reads and atomic writes through fsspec, so a data root may be a local path or a URL.

A reader sees the old file or the new one, never half of one:

- on a local disk a write goes to a temporary name beside its target and is renamed onto
  it (an atomic rename);
- on an object store (``s3://``, ``gs://``, ``memory://``) a single PUT is already atomic,
  so the bytes are assembled in memory and sent in one call to the target. A rename there
  would be a copy and a delete, which is neither atomic nor cheap for a directory.

A directory is therefore never published by renaming it: every multi-file output has a
commit marker or pointer written last (the raw snapshot's and a model version's
``manifest.json``, the window store's pointer files). Small files that several runs update
(the champion pointer, the audit log) are changed with a compare-and-swap, `seqcast.io.cas`.

Listings are never cached (``use_listings_cache=False``): another process may have
written since, and a stale listing would hide its files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

from seqcast.errors import permanent_os_error, storage_error

_CHUNK = 1 << 20


def join(base: str, *parts: str) -> str:
    """Join URI parts with ``/`` (fsspec paths use ``/`` on every platform)."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def filesystem(uri: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem serving ``uri`` and the path within it.

    Endpoints and credentials come from the environment the way each backend reads them
    (for S3: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ... or
    fsspec's ``FSSPEC_S3_*`` settings), never from code.
    """
    fs, path = fsspec.core.url_to_fs(uri, use_listings_cache=False)
    return fs, path


def protocol(fs: AbstractFileSystem) -> str:
    """The filesystem's main protocol name: ``file``, ``s3``, ``memory``, ..."""
    return fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]


def is_local(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` is the local disk (renames are atomic; libraries can open paths)."""
    return protocol(fs) in ("file", "local")


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return bool(fs.exists(path))


def _temp_sibling(path: str) -> str:
    parent, _, name = path.rpartition("/")
    return f"{parent}/.tmp-{uuid.uuid4().hex[:12]}-{name}"


@contextmanager
def atomic_writer(uri: str, durable: bool = False) -> Iterator[BinaryIO]:
    """A binary handle whose bytes replace ``uri`` only if the block succeeds.

    Local disk: a temporary file beside the target, renamed onto it. Object store: an
    in-memory buffer sent in one PUT after the block (writing through ``fs.open`` instead
    would publish a partial object if the block raised: closing such a file commits it).

    ``durable`` (small pointer files): on a local disk the temporary file is fsynced before
    the rename and the directory after it, so a power loss cannot leave the new name on a
    truncated file (ext4/xfs may commit the rename before the data otherwise).

    Raises:
        StorageError: a local write failed for good (disk full, read-only, no permission),
            naming ``uri``; the steps do not retry it (`seqcast.errors.permanent_os_error`).
    """
    fs, path = filesystem(uri)
    if not is_local(fs):
        buffer = io.BytesIO()
        yield buffer
        fs.pipe_file(path, buffer.getvalue())
        return
    try:
        fs.makedirs(path.rpartition("/")[0], exist_ok=True)
        temp = _temp_sibling(path)
        try:
            if durable:
                with open(temp, "wb") as raw:
                    yield raw
                    raw.flush()
                    os.fsync(raw.fileno())
                os.replace(temp, path)
                fsync_directory(path.rpartition("/")[0])
                return
            with fs.open(temp, "wb") as handle:
                yield handle
            fs.mv(temp, path)
        finally:
            if fs.exists(temp):
                fs.rm(temp)
    except OSError as exc:
        if (permanent := permanent_os_error(exc)) is not None:
            raise storage_error(permanent, uri) from exc
        raise


def fsync_directory(path: str) -> None:
    """Flush a local directory's entries (a rename or a new file in it) to disk."""
    handle = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def write_bytes(uri: str, data: bytes, durable: bool = False) -> None:
    """Replace ``uri`` with ``data`` atomically (``durable``: see `atomic_writer`)."""
    with atomic_writer(uri, durable=durable) as handle:
        handle.write(data)


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as handle:
        return handle.read()


def write_json(uri: str, obj: Any) -> None:
    write_bytes(uri, json_bytes(obj))


def json_bytes(obj: Any) -> bytes:
    """The one JSON encoding of every small file seqcast writes."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str).encode("utf-8")


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri).decode("utf-8"))


def write_parquet(table: pa.Table, uri: str, row_group_size: int = 64_000) -> None:
    """Write ``table`` to ``uri`` atomically."""
    with atomic_writer(uri) as handle:
        pq.write_table(table, handle, row_group_size=row_group_size, compression="zstd")


def write_frame(frame: pd.DataFrame, uri: str) -> None:
    """Write a pandas frame (without its index) to ``uri`` atomically."""
    write_parquet(pa.Table.from_pandas(frame, preserve_index=False), uri)


def read_parquet(
    uri: str,
    columns: list[str] | None = None,
    filters: list[tuple[str, str, Any]] | None = None,
) -> pa.Table:
    """``uri`` as a table; with ``filters`` (pyarrow's, e.g. ``[("sensor", "in", names)]``)
    only the matching rows, and row groups whose statistics rule them out are not read."""
    fs, path = filesystem(uri)
    return pq.read_table(path, filesystem=fs, columns=columns, filters=filters)


def sha256_of(uri: str) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    fs, path = filesystem(uri)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def remove(uri: str, recursive: bool = False) -> None:
    """Delete ``uri`` (``recursive``: everything under it; on an object store the keys
    under its prefix, listed and deleted in batches). Absent already: nothing to do, so a
    deletion interrupted and run again finishes."""
    fs, path = filesystem(uri)
    try:
        fs.rm(path, recursive=recursive)
    except FileNotFoundError:
        return


def listdir(uri: str) -> list[str]:
    """Names (not paths) of the entries directly under ``uri``; empty if it is absent."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return []
    return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False))


@contextmanager
def local_copy(uri: str, suffix: str = "") -> Iterator[str]:
    """A local path holding ``uri``'s bytes while the block runs.

    The path itself on a local disk; else a temporary copy, removed afterwards (Keras and
    some other libraries only open local paths).
    """
    fs, path = filesystem(uri)
    if is_local(fs):
        yield path
        return
    handle, local = tempfile.mkstemp(suffix=suffix, prefix="seqcast-")
    os.close(handle)
    try:
        fs.get_file(path, local)
        yield local
    finally:
        os.remove(local)
