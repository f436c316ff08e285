"""What every step shares: the retry policy and where a run's files go."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, date
from typing import Any, TypeVar, cast

from prefect import get_run_logger
from prefect.context import FlowRunContext
from prefect.logging.handlers import APILogHandler
from prefect.runtime import flow_run
from prefect.states import Completed
from pydantic import ValidationError

from seqcast.config import PipelineConfig
from seqcast.errors import SeqcastError, permanent_os_error
from seqcast.io import publications, storage

T = TypeVar("T")


def route_library_logs() -> None:
    """Send the library's INFO lines (epoch losses, snapshot reuse, leftover cleanup) to the
    run log.

    Prefect gives the loggers of ``PREFECT_LOGGING_EXTRA_LOGGERS`` its API handler but
    leaves their level unset, so ``seqcast`` inherits the root's WARNING and every INFO line
    is dropped. A level or handler set by the user's own logging config is kept; where the
    variable does not name ``seqcast`` (a worker's environment), the handler is added here.
    """
    library = logging.getLogger("seqcast")
    if library.level == logging.NOTSET:
        library.setLevel(logging.INFO)
    if not any(isinstance(handler, APILogHandler) for handler in library.handlers):
        library.addHandler(APILogHandler())


route_library_logs()  # every task module imports this one: flows, workers, Dask workers


def retry_only_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry I/O and other transient faults, never a contract, config or registry error,
    nor an OS error a retry cannot fix (disk full, read-only, permission denied: see
    `seqcast.errors.PERMANENT_OS_ERRORS`), which would only waste the retry delays. A
    seqcast error marked ``transient`` (a source that did not answer in time) is retried."""
    try:
        state.result()
    except SeqcastError as exc:
        return exc.transient
    except (ValidationError, ValueError, TypeError, KeyError):
        return False
    except Exception as exc:  # noqa: BLE001 - anything else may be a passing fault
        return permanent_os_error(exc) is None
    return True


STEP_OPTIONS: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": retry_only_transient,
}
"""Keyword arguments of every step's @task."""

TRAINING_TAG = "seqcast-train"
"""Tag of the steps that occupy the training device. A task concurrency limit on it
(`prefect concurrency-limit create seqcast-train 1`, made by `seqcast deploy`) keeps two
flows from training on the same machine at once."""


def sync_result(value: T | Coroutine[Any, Any, T]) -> T:
    """``value`` of a Prefect API that runs sync or async depending on where it is called.

    Such APIs (`create_progress_artifact`, `run_deployment`, `Flow.to_deployment`,
    `Block.save`...) are typed ``T | Coroutine[Any, Any, T]``: they return a coroutine only
    when called from an async flow, task or event loop. seqcast calls them from sync tasks
    and the CLI, where they return ``T``; a coroutine here is a bug, said so at once.
    """
    if isinstance(value, Coroutine):
        value.close()  # never awaited: close it so it does not warn later as well
        raise TypeError(f"a Prefect API returned {value!r}: it was called from async code")
    return value


def current_run_id() -> str:
    """The flow run's id, or a fresh one when a step runs outside a flow (unit tests)."""
    return str(flow_run.get_id() or uuid.uuid4())


def logical_date() -> date:
    """The day this run is for: the UTC day of its scheduled start (a backfill's date, the
    night a schedule fired), not the day it happens to run. Today outside a flow run."""
    return flow_run.scheduled_start_time.astimezone(UTC).date()


BACKFILL_TAG = "backfill"
"""Tag of the runs `seqcast backfill` creates."""


def trigger_of(tags: Iterable[str], auto_scheduled: bool) -> str:
    """`publications.SCHEDULED` for a run a schedule (``auto_scheduled``) or a backfill
    (tagged `BACKFILL_TAG`) created, else `publications.MANUAL`: `seqcast train`/`predict`,
    a deployment run started by hand (`prefect deployment run`, the UI's *Run*)."""
    scheduled = auto_scheduled or BACKFILL_TAG in tags
    return publications.SCHEDULED if scheduled else publications.MANUAL


def run_trigger() -> str:
    """`trigger_of` the current flow run; manual outside one. Call it in the top-level flow:
    a subflow's run is neither scheduled nor tagged by the backfill."""
    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    if run is None:
        return publications.MANUAL
    return trigger_of(run.tags, run.auto_scheduled)


@dataclass(frozen=True)
class Publication:
    """What a scheduled run published for a day, which the run asking need not redo."""

    record: dict[str, Any]
    """The day's marker (the latest publication of the day: a manual one may follow)."""
    reason: str
    """Why the run skips, for its final state's message."""


def already_published(
    config: PipelineConfig, kind: str, day: date, force: bool
) -> Publication | None:
    """What a scheduled run published for ``day``, if any and not ``force``; the caller
    then returns it (`skipped`) instead of doing the work again.

    A day only manual runs published is not done (`seqcast.io.publications`): the run goes
    on. A record naming a file that does not exist (a publication interrupted before issue
    13 #3 was fixed, or a file removed by hand) is no publication: the day is done again.
    """
    if force:
        return None
    published = publications.read(config.pipeline_root, kind, day)
    if published is None:
        return None
    holder = publications.slot_holder(published)
    if holder is None:
        get_run_logger().info(
            "Only manual runs published the %s of %s for %s (last: flow run %s): this run "
            "publishes them again",
            kind,
            config.name,
            day,
            published.get("flow_run_id"),
        )
        return None
    named = publications.named_file(kind, published)
    if named is not None and not storage.exists(named):
        get_run_logger().warning(
            "%s names %s, which does not exist: publishing the %s for %s again",
            publications.marker_uri(config.pipeline_root, kind, day),
            named,
            kind,
            day,
        )
        return None
    reason = (
        f"Pipeline {config.name} already published its {kind} for {day} (scheduled flow "
        f"run {holder}): nothing to do. Run with force=true (`seqcast backfill --force`) "
        "to replace them."
    )
    get_run_logger().info("Skipped: %s", reason)
    return Publication(record=published, reason=reason)


def skipped(value: T, reason: str) -> T:
    """End the flow run in a ``Completed`` state named ``Skipped`` with ``reason`` as its
    message, so the runs list tells it from a run that did the work.

    A flow that returns a state it made ends in that state, and whoever called the flow
    gets the state's data (``state.result()``): ``value``, the earlier publication's
    record. Hence the cast: to the caller the flow returns ``value``.
    """
    return cast(T, Completed(name="Skipped", message=reason, data=value))


def warn_on_failure(step: Any, *args: Any, what: str, consequence: str) -> Any | None:
    """Run the task ``step`` on ``args`` and return its result, or None if it failed.

    For the steps that must never fail the run they are in (retention, live accuracy,
    input drift): their run's outputs are published by then or do not depend on them, and
    the next run does their work again, so a failure is one warning naming ``what`` failed,
    the cause and ``consequence``, and the run stays Completed. Such steps take no retries
    for the same reason.
    """
    state = step(*args, return_state=True)
    if not state.is_failed():
        return state.result()
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - any failure here is only logged
        get_run_logger().warning(
            "%s failed (%s: %s); %s", what, type(exc).__name__, exc, consequence
        )
    return None
