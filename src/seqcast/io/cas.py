"""Compare-and-swap of small files that several runs update: pointers and logs.

`swap` reads a file, lets the caller compute its new bytes from the old, and writes them
(fsynced before the rename on a local disk) only if nobody changed the file in between,
so two runs can never both replace the same version of it (and the loser learns it did
not win). How that holds depends on where the
file lives:

- local disk: an exclusive ``flock`` on a hidden lock file beside the target, held while
  the file is read and replaced (it serialises processes on one machine, and on network
  filesystems that honour ``flock``);
- S3 (``s3://``): a conditional PUT: ``If-Match`` with the ETag that was read, or
  ``If-None-Match: *`` when the file did not exist. S3 answers 412 (or 409 for a
  conflicting concurrent write) if the object changed; the read is then repeated and
  ``change`` called again with the new bytes;
- fsspec's memory filesystem (``memory://``, one process): a process-local lock;
- any other store (``gs://``, ...): no compare-and-swap from here; the write is a plain
  atomic replace and a warning says so. The deployments' concurrency limit of 1 is then
  what keeps two runs from racing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.asyn import sync

from seqcast.errors import SeqcastError
from seqcast.io import storage

logger = logging.getLogger(__name__)

ATTEMPTS = 20
"""Conditional writes tried before giving up (each retry follows a competing writer)."""

Change = Callable[[bytes | None], bytes]
"""The new bytes of a file from its current ones (None: it does not exist yet)."""


class SwapConflict(SeqcastError):
    """A conditional write kept losing to other writers; nothing was changed."""


def swap(uri: str, change: Change, record: Callable[[bytes], None] | None = None) -> bytes:
    """Replace ``uri`` with ``change(current bytes)`` unless another writer got in between.

    ``change`` may raise to refuse the update (e.g. the pointer no longer holds what the
    caller expected); nothing is written then. It may be called more than once on S3,
    each time with the bytes a competing writer left.

    ``record(new)`` writes what the change must leave behind elsewhere (an audit line).
    Where there is a lock it runs under it, after ``change`` and before the new bytes are
    visible, so a crash can leave a record of a change that did not land but never a
    change with no record, and records keep the order of the changes. On S3 (no lock; a
    conditional PUT may lose) it runs right after the winning PUT.

    Returns:
        The bytes written.

    Raises:
        SwapConflict: on S3, every one of `ATTEMPTS` conditional writes lost a race.
    """
    fs, path = storage.filesystem(uri)
    kind = storage.protocol(fs)
    if kind in ("s3", "s3a"):
        new = _swap_s3(fs, path, change, uri)
        if record is not None:
            record(new)
        return new
    with _lock(fs, path, uri):
        current = storage.read_bytes(uri) if fs.exists(path) else None
        new = change(current)
        if record is not None:
            record(new)
        storage.write_bytes(uri, new, durable=True)
        return new


def append_line(uri: str, line: str) -> None:
    """Append one line of text to ``uri``, losing no concurrent writer's line.

    Local disk: an ``O_APPEND`` write (one small write lands whole), fsynced before this
    returns (callers append before a change the line records, see
    `seqcast.serving.registry.set_champion`). Elsewhere objects cannot be appended to, so
    the file is rewritten through `swap`.
    """
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fs, path = storage.filesystem(uri)
    if storage.is_local(fs):
        fs.makedirs(path.rpartition("/")[0], exist_ok=True)
        with open(path, "ab") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return
    swap(uri, lambda current: (current or b"") + data)


_memory_locks: dict[str, threading.Lock] = {}
_memory_locks_guard = threading.Lock()
_warned: set[str] = set()


@contextmanager
def _lock(fs: AbstractFileSystem, path: str, uri: str) -> Iterator[None]:
    kind = storage.protocol(fs)
    if storage.is_local(fs):
        parent, _, name = path.rpartition("/")
        os.makedirs(parent, exist_ok=True)
        with open(f"{parent}/.{name}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    elif kind == "memory":
        with _memory_locks_guard:
            lock = _memory_locks.setdefault(path, threading.Lock())
        with lock:
            yield
    else:
        if kind not in _warned:
            _warned.add(kind)
            logger.warning(
                "%s: %s:// offers no compare-and-swap that seqcast can use; concurrent "
                "updates of this file can overwrite each other. Keep the deployments' "
                "concurrency limit at 1.",
                uri,
                kind,
            )
        yield


def _swap_s3(fs: Any, path: str, change: Change, uri: str) -> bytes:
    """Read with the object's ETag, then PUT only if the ETag is still the same."""
    bucket, key, _ = fs.split_path(path)
    for _ in range(ATTEMPTS):
        current, etag = sync(fs.loop, _get_with_etag, fs, bucket, key)
        new = change(current)
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            fs.pipe_file(path, new, **condition)
        except OSError as exc:  # s3fs turns S3's answers into OSError subclasses
            if _lost_race(exc):
                logger.info("%s changed while it was being updated; reading it again", uri)
                continue
            raise
        return new
    raise SwapConflict(
        f"{uri}: {ATTEMPTS} conditional writes in a row lost to other writers; nothing was "
        "changed. Run again when the competing runs have finished."
    )


async def _get_with_etag(fs: Any, bucket: str, key: str) -> tuple[bytes | None, str | None]:
    """The object's bytes and the ETag of exactly those bytes (one GET), or (None, None)."""
    try:
        response = await fs._call_s3("get_object", Bucket=bucket, Key=key)
    except FileNotFoundError:
        return None, None
    try:
        return await response["Body"].read(), response["ETag"]
    finally:
        response["Body"].close()


def _lost_race(exc: BaseException) -> bool:
    """Whether S3 refused a conditional write because the object changed (or appeared,
    or vanished) since it was read."""
    cause = exc.__cause__
    response = getattr(cause, "response", None) or {}
    code = response.get("Error", {}).get("Code", "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
        return True
    # An If-Match on an object deleted since it was read: S3 answers 404.
    return isinstance(exc, FileNotFoundError) and code in ("NoSuchKey", "404")
