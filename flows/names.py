"""Flow run names that say which pipeline and which logical date a run is for.

A fixed ``flow_run_name`` such as ``train-{config.name}`` named every run alike and
replaced the names runs were given at creation (a backfill's ``nightly-retrain-2026-01-03-
backfill``). Here the name is built when the run starts: ``train-sample-load-2026-01-03``
for a scheduled run, with ``-manual`` for an ad-hoc one (``seqcast train``, a deployment run
started by hand) and ``-backfill`` for a backfill's; a name given at creation is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

from prefect.context import FlowRunContext

from seqcast.io import publications
from tasks.common import BACKFILL_TAG, logical_date, trigger_of

GENERATED_NAME = re.compile(r"[a-z]+-[a-z]+")
"""Prefect names a run it was not given a name for with two random words
(``amazing-tiger``); any other name was chosen by whoever created the run."""


def build_run_name(
    prefix: str,
    pipeline: str,
    day: date,
    current: str | None,
    tags: Iterable[str],
    auto_scheduled: bool,
) -> str:
    """The run's name: ``current`` if it was given at creation, else
    ``{prefix}-{pipeline}-{day}``, ending in ``-backfill`` or ``-manual`` unless a schedule
    created the run.

    Manual or not is `tasks.common.trigger_of`'s call, the one that decides whether the run
    holds its date's publication slot, so a name never says ``-manual`` of a run that
    claims the slot, or the reverse; a backfill's run (scheduled to it) says so.
    """
    if current and not GENERATED_NAME.fullmatch(current):
        return current
    name = f"{prefix}-{pipeline}-{day.isoformat()}"
    tags = list(tags)
    if trigger_of(tags, auto_scheduled) == publications.MANUAL:
        return f"{name}-manual"
    return f"{name}-backfill" if BACKFILL_TAG in tags else name


def _pipeline_name(config: Any) -> str:
    """``config.name``, from a validated `PipelineConfig` or its JSON form."""
    return str(config["name"] if isinstance(config, dict) else config.name)


def run_name(prefix: str) -> Callable[[], str]:
    """A ``flow_run_name`` for a flow whose ``config`` parameter is a `PipelineConfig`.

    Prefect calls it once, inside the run's context, when the run starts (a retry keeps the
    name).
    """

    def name() -> str:
        context = FlowRunContext.get()
        if context is None or context.flow_run is None or context.parameters is None:
            raise RuntimeError(f"{prefix} run name asked for outside a flow run")
        run = context.flow_run
        return build_run_name(
            prefix,
            _pipeline_name(context.parameters["config"]),
            logical_date(),
            run.name,
            run.tags,
            run.auto_scheduled,
        )

    name.__name__ = f"{prefix}_run_name"
    return name
