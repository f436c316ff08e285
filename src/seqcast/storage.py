"""Reads and atomic writes through fsspec, so a data root may be a local path or a URL.

Every write goes to a temporary name beside its target and is then moved into place, so
a reader sees the old file or the new one, never half of one. On a local filesystem the
move is an atomic rename; object stores are covered by the scale-out work (issue 7).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

_CHUNK = 1 << 20


def join(base: str, *parts: str) -> str:
    """Join URI parts with ``/`` (fsspec paths use ``/`` on every platform)."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def filesystem(uri: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem serving ``uri`` and the path within it."""
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def is_local(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` is the local disk (renames are atomic; libraries can open paths)."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return bool(fs.exists(path))


def _temp_sibling(path: str) -> str:
    parent, _, name = path.rpartition("/")
    return f"{parent}/.tmp-{uuid.uuid4().hex[:12]}-{name}"


@contextmanager
def atomic_path(uri: str) -> Iterator[tuple[AbstractFileSystem, str]]:
    """Yield a temporary path beside ``uri``; move it onto ``uri`` only if the block succeeds."""
    fs, path = filesystem(uri)
    fs.makedirs(path.rpartition("/")[0], exist_ok=True)
    temp = _temp_sibling(path)
    try:
        yield fs, temp
        fs.mv(temp, path)
    finally:
        if fs.exists(temp):
            fs.rm(temp, recursive=True)


def write_bytes(uri: str, data: bytes) -> None:
    with atomic_path(uri) as (fs, temp), fs.open(temp, "wb") as handle:
        handle.write(data)


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as handle:
        return handle.read()


def write_json(uri: str, obj: Any) -> None:
    write_bytes(uri, json.dumps(obj, indent=2, sort_keys=True, default=str).encode("utf-8"))


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri).decode("utf-8"))


def write_parquet(table: pa.Table, uri: str, row_group_size: int = 64_000) -> None:
    """Write ``table`` to ``uri`` atomically."""
    with atomic_path(uri) as (fs, temp), fs.open(temp, "wb") as handle:
        pq.write_table(table, handle, row_group_size=row_group_size, compression="zstd")


def write_frame(frame: pd.DataFrame, uri: str) -> None:
    """Write a pandas frame (without its index) to ``uri`` atomically."""
    write_parquet(pa.Table.from_pandas(frame, preserve_index=False), uri)


def read_parquet(uri: str, columns: list[str] | None = None) -> pa.Table:
    fs, path = filesystem(uri)
    return pq.read_table(path, filesystem=fs, columns=columns)


def sha256_of(uri: str) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    fs, path = filesystem(uri)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def publish_directory(staging_uri: str, final_uri: str) -> bool:
    """Move a fully written staging directory to its final name.

    Returns False (and removes the staging copy) when ``final_uri`` already exists, which
    makes publishing content-addressed outputs idempotent.
    """
    fs, staging = filesystem(staging_uri)
    _, final = filesystem(final_uri)
    if fs.exists(final):
        fs.rm(staging, recursive=True)
        return False
    fs.mv(staging, final, recursive=True)
    return True


def staging_uri(final_uri: str) -> str:
    """A unique temporary directory beside ``final_uri`` for a publish_directory()."""
    parent, _, name = final_uri.rstrip("/").rpartition("/")
    return f"{parent}/.staging-{uuid.uuid4().hex[:12]}-{name}"


def local_path(uri: str, suffix: str = "") -> str:
    """A local path holding ``uri``'s bytes: the path itself on a local filesystem, else a
    temporary copy (libraries such as Keras only load from local paths)."""
    fs, path = filesystem(uri)
    if is_local(fs):
        return path
    with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as handle:
        local = handle.name
    fs.get(path, local)
    return local
