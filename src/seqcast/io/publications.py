"""What a run published for its logical date: the idempotency key of scheduled runs.

A scheduled run, or a backfill's run, is *for* a day: its logical date, the day it was
scheduled for (not the day it happened to run). When it finishes it records what it
published in one small JSON marker, ``{pipeline_root}/published/{kind}/{day}.json``,
written after the outputs it names, so a marker means they are complete. Another run for
the same day returns what the marker records instead of publishing again, unless forced,
and unless the file it names is gone (`named_file`): then the day is done again.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from seqcast.io import storage

KINDS = ("training", "predictions")

NAMED_FILES = {"predictions": ("predictions", "uri")}
"""Where a kind's record names the file it published (the record keys leading to its URI)."""


def marker_uri(pipeline_root: str, kind: str, day: date) -> str:
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
    return storage.join(pipeline_root, "published", kind, f"{day.isoformat()}.json")


def read(pipeline_root: str, kind: str, day: date) -> dict[str, Any] | None:
    """The record of what was published for ``day``, or None if nothing was."""
    uri = marker_uri(pipeline_root, kind, day)
    return storage.read_json(uri) if storage.exists(uri) else None


def record(pipeline_root: str, kind: str, day: date, published: dict[str, Any]) -> str:
    """Record (or replace, for a forced re-run) what was published for ``day``."""
    uri = marker_uri(pipeline_root, kind, day)
    storage.write_json(uri, {"logical_date": day.isoformat(), **published})
    return uri


def named_file(kind: str, published: dict[str, Any]) -> str | None:
    """The URI of the file a ``kind`` record names, or None for kinds that name none."""
    value: Any = published
    for key in NAMED_FILES.get(kind, ()):
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) and kind in NAMED_FILES else None
