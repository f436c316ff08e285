"""What every step shares: the retry policy and where a run's files go."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Coroutine
from datetime import UTC, date
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.logging.handlers import APILogHandler
from prefect.runtime import flow_run
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


def already_published(
    config: PipelineConfig, kind: str, day: date, force: bool
) -> dict[str, Any] | None:
    """What an earlier run published for ``day``, if any and not ``force``; the caller then
    returns it instead of doing the work again.

    A record naming a file that does not exist (a publication interrupted before issue 13
    #3 was fixed, or a file removed by hand) is no publication: the day is done again.
    """
    if force:
        return None
    published = publications.read(config.pipeline_root, kind, day)
    named = publications.named_file(kind, published) if published is not None else None
    if named is not None and not storage.exists(named):
        get_run_logger().warning(
            "%s names %s, which does not exist: publishing the %s for %s again",
            publications.marker_uri(config.pipeline_root, kind, day),
            named,
            kind,
            day,
        )
        return None
    if published is not None:
        get_run_logger().warning(
            "Pipeline %s already published its %s for %s (flow run %s): nothing to do. "
            "Run with force=true (`seqcast backfill --force`) to replace them.",
            config.name,
            kind,
            day,
            published.get("flow_run_id"),
        )
    return published
