"""Work folders of multi-task writers: marked with their writer, removed once it is dead.

A step whose tasks write parts before one of them publishes the whole (a window build,
a sharded validation) works in a folder of its own. While it works, ``_writer.json`` in
it names the writer (host, pid, the process's start time). A writer killed midway leaves
the folder behind, invisible to readers, since nothing points at it; `clean` removes it
on the next run: at once when the writer's process is gone, else after a grace period
(a writer on another host cannot be checked from here).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seqcast.io import storage

logger = logging.getLogger(__name__)

WRITER = "_writer.json"
"""Present in a work folder while its writer works."""
LEFTOVER_GRACE_SECONDS = 6 * 3600
"""A leftover whose writer cannot be checked is removed after this long."""


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a live writer from a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def writer_marker() -> dict[str, Any]:
    """What `writer_alive` checks later: this host, process and its start time."""
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "process_start": process_start(pid),
        "started": datetime.now(UTC).isoformat(),
    }


def writer_alive(marker: dict[str, Any]) -> bool | None:
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
    return started is None or process_start(pid) in (None, started)


def mtime_age(fs: Any, path: str) -> float:
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


def age_seconds(when: str | None) -> float:
    """Seconds since an ISO time; infinite when there is none."""
    if not when:
        return float("inf")
    return (datetime.now(UTC) - datetime.fromisoformat(when)).total_seconds()


def begin(parent: str, prefix: str) -> str:
    """A fresh work folder ``{parent}/{prefix}-{uid}``, marked as this process's."""
    uri = storage.join(parent, f"{prefix}-{uuid.uuid4().hex[:12]}")
    storage.write_json(storage.join(uri, WRITER), writer_marker())
    return uri


def remove(uri: str) -> None:
    """Delete a work folder and everything in it (nothing when it is gone already)."""
    fs, path = storage.filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def writer_gone(uri: str, grace_seconds: float = LEFTOVER_GRACE_SECONDS) -> bool | None:
    """What the writer marker in folder ``uri`` says: True when its writer is dead (or
    older than the grace), False while it may be working, None when there is no marker."""
    marker_uri = storage.join(uri, WRITER)
    if not storage.exists(marker_uri):
        return None
    try:
        marker = storage.read_json(marker_uri)
    except (OSError, ValueError):
        return False  # being written this instant
    if writer_alive(marker) is False:
        return True
    return age_seconds(marker.get("started")) > grace_seconds


def is_leftover(uri: str, grace_seconds: float = LEFTOVER_GRACE_SECONDS) -> bool:
    """Whether the work folder ``uri`` belongs to a writer that is gone."""
    gone = writer_gone(uri, grace_seconds)
    if gone is not None:
        return gone
    fs, path = storage.filesystem(uri)
    return mtime_age(fs, path) > grace_seconds  # a writer that died before it began


def clean(parent: str, grace_seconds: float = LEFTOVER_GRACE_SECONDS) -> list[str]:
    """Remove the work folders under ``parent`` whose writers are gone.

    Returns:
        The URIs removed.
    """
    fs, path = storage.filesystem(parent)
    if not fs.exists(path):
        return []
    removed = []
    for entry in fs.ls(path, detail=False):
        uri = storage.join(parent, entry.rstrip("/").rsplit("/", 1)[-1])
        if fs.isdir(entry) and is_leftover(uri, grace_seconds):
            remove(uri)
            removed.append(uri)
    if removed:
        logger.info("removed %d leftover work folder(s): %s", len(removed), removed)
    return removed
