"""What a run published for its logical date: the idempotency key of scheduled runs.

A scheduled run, or a backfill's run, is *for* a day: its logical date, the day it was
scheduled for (not the day it happened to run). When it finishes it records what it
published in one small JSON marker, ``{pipeline_root}/published/{kind}/{day}.json``,
written after the outputs it names, so a marker means they are complete. Another run for
the same day returns what the marker records instead of publishing again, unless forced,
and unless the file it names is gone (`named_file`): then the day is done again.

Only a **scheduled** run (one a schedule or a backfill created) fills a day's slot. A
**manual** run (`seqcast train`/`predict`, a deployment run started by hand) publishes
under the day too, and its marker names its outputs, but it leaves the slot as it found
it: after `make demo`, that night's scheduled run of the same day still runs. The marker
says which run filled the slot (``slot_flow_run_id``), so a manual run that replaces a
scheduled run's outputs keeps the day done for the next scheduled run.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from seqcast.io import cas, storage

KINDS = ("training", "predictions")

SCHEDULED = "scheduled"
MANUAL = "manual"
TRIGGERS = (SCHEDULED, MANUAL)
"""What started a run: a schedule or a backfill (`SCHEDULED`), or a person (`MANUAL`)."""

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


def slot_holder(published: dict[str, Any]) -> str | None:
    """The flow run that filled the day's scheduled slot, or None if only manual runs
    published the day.

    A marker written before runs recorded their trigger counts as scheduled: re-running a
    backfill over days published then must keep skipping them.
    """
    if "trigger" not in published:
        return str(published.get("flow_run_id") or "unknown")
    holder = published.get("slot_flow_run_id")
    return str(holder) if holder else None


def marker(
    day: date,
    published: dict[str, Any],
    flow_run_id: str,
    trigger: str,
    earlier: dict[str, Any] | None,
) -> dict[str, Any]:
    """The marker of a ``trigger`` run publishing ``published`` for ``day``, replacing the
    marker ``earlier`` (None if there was none): a scheduled run fills the slot, a manual
    one keeps the earlier marker's slot holder."""
    if trigger not in TRIGGERS:
        raise ValueError(f"`trigger` must be one of {TRIGGERS}. Received: trigger={trigger!r}")
    if trigger == SCHEDULED:
        holder: str | None = flow_run_id
    else:
        holder = slot_holder(earlier) if earlier is not None else None
    return {
        "logical_date": day.isoformat(),
        **published,
        "flow_run_id": flow_run_id,
        "trigger": trigger,
        "slot_flow_run_id": holder,
    }


def record(
    pipeline_root: str,
    kind: str,
    day: date,
    published: dict[str, Any],
    flow_run_id: str,
    trigger: str,
) -> str:
    """Record (or replace, for a forced or manual re-run) what was published for ``day``.

    The marker is replaced under its compare-and-swap, so the slot holder it keeps from the
    marker it replaces cannot be lost to a run publishing the same day at the same time.
    """
    uri = marker_uri(pipeline_root, kind, day)

    def replace(current: bytes | None) -> bytes:
        earlier = json.loads(current) if current is not None else None
        return storage.json_bytes(marker(day, published, flow_run_id, trigger, earlier))

    cas.swap(uri, replace)
    return uri


def named_file(kind: str, published: dict[str, Any]) -> str | None:
    """The URI of the file a ``kind`` record names, or None for kinds that name none."""
    value: Any = published
    for key in NAMED_FILES.get(kind, ()):
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) and kind in NAMED_FILES else None
