"""Publishing window builds: a content key, a manifest and one atomic pointer swap.

Layout of one pipeline's windows (``{pipeline_root}/windows/``)::

    builds/{key16}-{uid}/   one immutable build (`seqcast.windows.store` format); never
                            renamed or changed once published
        _writer.json        present only while a writer works (host, pid, start time)
    {key16}.json            the pointer: which build holds the windows for a key
    current.json            the pointer to the latest published build

A build is written in place under a fresh name, checksummed into its manifest, and
published by writing its key's pointer (one small atomic file write: a rename on a local
disk, a single PUT on an object store, where a directory rename would be a copy). A writer
that dies leaves an unreferenced build that readers never see; `WindowStore.clean` removes
it on the next run: at once if its writer's process is gone, else after a grace period.
On S3 a killed writer's large files may also leave an unfinished multipart upload, which
is invisible to readers; a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes
those.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from seqcast import __version__
from seqcast.io import storage, work_dirs
from seqcast.io.work_dirs import age_seconds, mtime_age, writer_marker
from seqcast.windows.store import FORMAT, MANIFEST, WRITER, payload_files, read_manifest

logger = logging.getLogger(__name__)

LEFTOVER_GRACE_SECONDS = 6 * 3600
"""An unreferenced build whose writer cannot be checked is removed after this long."""

VERIFY_THREADS = 8
"""Files of a build checked at once when it is reused."""

_CODE_MODULES = (
    "grid.py",
    "series_source.py",
    "covariates.py",
    "scaling.py",
    "windowing.py",
    "build.py",
    "step.py",
    "store.py",
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
    """Problems with a build: an unreadable manifest, missing files, wrong sizes, and
    (``checksums``) a sha256 that differs from the manifest's, each naming its file.

    Files are checked on a few threads (hashlib and file reads release the GIL; on an
    object store the reads overlap), so the check costs about the time of the largest file.
    """
    try:
        manifest = read_manifest(uri)
        files = dict(manifest["files"])
    except FileNotFoundError:
        return [f"{uri}: no {MANIFEST}"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{storage.join(uri, MANIFEST)}: unreadable ({exc})"]

    def check(name: str) -> str | None:
        expected = files[name]
        file_uri = storage.join(uri, name)
        fs, path = storage.filesystem(file_uri)
        if not fs.exists(path):
            return f"{file_uri}: missing"
        if int(fs.size(path)) != expected["bytes"]:
            return f"{file_uri}: {fs.size(path)} bytes, manifest says {expected['bytes']}"
        if checksums and storage.sha256_of(file_uri) != expected["sha256"]:
            return f"{file_uri}: sha256 differs from the manifest"
        return None

    with ThreadPoolExecutor(max_workers=max(1, min(VERIFY_THREADS, len(files)))) as pool:
        return [problem for problem in pool.map(check, files) if problem is not None]


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
        """The published build for ``key`` if it is whole: every file present, of its size
        and sha256 as the manifest records them.

        The checksums are worth their cost: one flipped byte in a segment file changes
        values silently, training on them then diverges, and every later run would reuse
        the same damaged build. Hashing reads the build once (about 1 GB/s), which stays a
        small fraction of building it (docs/faults.md, section 4, has the numbers).
        """
        pointer = self.pointer_uri(key)
        if not storage.exists(pointer):
            return None
        target = storage.read_json(pointer)
        uri = storage.join(self.root, target["build"])
        if target.get("key") != key:
            logger.warning("%s names another key; rebuilding", pointer)
            return None
        problems = verify(uri)
        if problems:
            logger.warning(
                "published windows damaged, rebuilding them (the damaged build is left for "
                "clean-up): %s",
                "; ".join(problems),
            )
            return None
        return uri

    def begin(self, key: str) -> str:
        """A fresh build directory, marked as being written by this process."""
        uri = storage.join(self.root, "builds", f"{key[:16]}-{uuid.uuid4().hex[:12]}")
        storage.write_json(storage.join(uri, WRITER), writer_marker())
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
            "files": {name: _file_entry(storage.join(uri, name)) for name in payload_files(blocks)},
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
        work_dirs.remove(uri)

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
        gone = work_dirs.writer_gone(uri, grace_seconds)
        if gone is not None:
            return gone
        manifest_uri = storage.join(uri, MANIFEST)
        if storage.exists(manifest_uri):
            # Whole but unpublished (a writer lost a race, or died before its pointer).
            return age_seconds(read_manifest(uri).get("created")) > grace_seconds
        fs, path = storage.filesystem(uri)
        return mtime_age(fs, path) > grace_seconds  # a writer that died before it began

    def _clean_root_files(self, grace_seconds: float) -> list[str]:
        """Old temporary pointer files and staging directories of interrupted writes."""
        fs, root = storage.filesystem(self.root)
        removed = []
        for entry in fs.ls(root, detail=False):
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith((".tmp-", ".staging-")) and mtime_age(fs, entry) > grace_seconds:
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
