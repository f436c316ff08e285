"""What every `seqcast` command shares: Prefect defaults, options and error handling.

Prefect defaults are set on import, before anything imports Prefect (a user's own settings
win): runs go to the configured server (``PREFECT_API_URL``), else to the one `seqcast server
start` left running, else to a temporary server of the command's own; the database of the
last two is under ``.seqcast/prefect``, so the runs can be browsed later. Telemetry and
TensorFlow's start-up chatter are off.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

PREFECT_DEFAULTS = {
    "PREFECT_HOME": str(Path(".seqcast/prefect").resolve()),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "seqcast",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TQDM_DISABLE": "1",
    # Prefect's telemetry is off (the server setting above); this is its client-side
    # switch, without which Prefect prints a notice telling the user to set it.
    "DO_NOT_TRACK": "1",
    # Prefect gives its ephemeral server 20 s to start; a busy 2-core machine needs more.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
}
for _key, _value in PREFECT_DEFAULTS.items():
    os.environ.setdefault(_key, _value)

from seqcast.config import PipelineConfig, load_config  # noqa: E402
from seqcast.errors import SeqcastError  # noqa: E402

state = {"debug": False}
"""Set by the global --debug option."""

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Pipeline config (YAML).", show_default=False)
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a config key, e.g. --set model.cell=gru --set model.epochs=5 "
        "(repeatable; values are YAML).",
    ),
]


class _BriefKnownErrors(logging.Formatter):
    """Console formatter that drops the traceback of a `SeqcastError`: its message says it all.

    The traceback still reaches the Prefect API's run log; ``--debug`` keeps it here too.
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and isinstance(record.exc_info[1], SeqcastError):
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return self.inner.format(record)


RUN_FAILURE_LINES = (
    "Finished in state Failed",
    "Encountered exception during execution",
    "Task run failed with",
)
"""How Prefect's engine reports a failed task or flow run, once per task, subflow and flow:
the same cause three to six times before the CLI's own ``error:`` line."""


class _OneErrorLine(logging.Filter):
    """Console filter that drops the engine's reports of a failed run: the CLI prints the
    cause once (``error: ...``) and the run log on the Prefect API keeps every report with
    its traceback. A retry announced (``- Retry 1/2 will start ...``) is kept: the run goes
    on. ``--debug`` keeps everything."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(("prefect.flow_runs", "prefect.task_runs")):
            return True
        message = str(record.msg)
        return " - Retry " in message or not message.startswith(RUN_FAILURE_LINES)


def _quiet_known_tracebacks() -> None:
    """Wrap the formatter of Prefect's console handlers and filter out the repeated failure
    reports (Prefect must be imported first)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [
        logging.getLogger(),
        *(logging.getLogger(n) for n in logging.root.manager.loggerDict),
    ]
    for handler in {h for lg in loggers for h in getattr(lg, "handlers", [])}:
        if not isinstance(handler, PrefectConsoleHandler):
            continue
        if handler.formatter is not None and not isinstance(handler.formatter, _BriefKnownErrors):
            handler.setFormatter(_BriefKnownErrors(handler.formatter))
        if not any(isinstance(f, _OneErrorLine) for f in handler.filters):
            handler.addFilter(_OneErrorLine())


def ensure_prefect_home() -> None:
    """Create PREFECT_HOME (the local servers' database lives there) and use a running
    `seqcast server` if no server is configured: called by the commands that run Prefect,
    before they import it (its settings are read at import, and it warns when the home's
    parent is missing), so `seqcast --help`, `sample` or `models list` create nothing."""
    from flows.cli.server import use_running_server

    home = Path(os.environ["PREFECT_HOME"]).expanduser()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(
            f"cannot create the Prefect home {home} ({exc}); set PREFECT_HOME to a writable "
            "directory"
        )
    use_running_server()


def start_prefect_api() -> None:
    """Without a server to use, spawn the command's temporary one now, before the flow
    (and Prefect) is imported, so that it boots meanwhile; `run_flow_or_exit` waits for it.
    Call after `ensure_prefect_home`, from the main thread."""
    from flows.cli.ephemeral import launch

    launch()


def start_side_process(config: PipelineConfig, imports: Sequence[str]) -> tuple[str, ...]:
    """On the thread runner, start the process that imports Great Expectations and
    statsmodels, checks a snapshot of one shard and fits its ETS challengers
    (`seqcast.side_process`), telling it that this process imports the rest of ``imports``
    (what the flow's tasks need) while it checks. Returns what this process still imports
    while a temporary server boots: ``imports`` without what the process took. Call after
    `start_prefect_api` (the server boots first)."""
    if config.runner.kind != "thread":
        return tuple(imports)  # the checks run on Dask workers
    from seqcast import side_process

    rest = tuple(module for module in imports if module not in side_process.IMPORTS)
    side_process.start(meanwhile=rest)
    return rest


def exit_now(code: object) -> NoReturn:
    """End the process with ``code`` (as `sys.exit` takes it) once the `atexit` handlers
    ran (Prefect's last log and event flushes, `logging.shutdown`, the temporary server's
    stop) and stdout and stderr are flushed, without the interpreter's teardown: with
    TensorFlow loaded that took 3-5 s after the work was done (issue 14 #5). Prefect's
    threads are daemons by then, which a normal exit would not wait for either."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(status)


def fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def run_or_exit(action: Any) -> Any:
    """Run ``action``, turning any failure into a short message and exit code 1."""
    if not state["debug"] and "prefect" in sys.modules:
        _quiet_known_tracebacks()
    try:
        return action()
    except SeqcastError as exc:
        if state["debug"]:
            raise
        fail(str(exc))
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: report, don't dump
        if state["debug"]:
            raise
        fail(f"{type(exc).__name__}: {exc}\n(run with --debug for the traceback)")


def run_flow_or_exit(action: Any, meanwhile: Sequence[str] = ()) -> Any:
    """`run_or_exit` for a command that runs a flow: waits first for the temporary Prefect
    server that `start_prefect_api` spawned (if it did; see `flows.cli.ephemeral`),
    importing the ``meanwhile`` modules its tasks need while it boots.

    The command's flow run sends no heartbeats: Prefect joins its heartbeat thread at the
    flow's end, and that thread sleeps in 1 s steps (0-1 s added to every command, issue
    14 #5), while nothing watches an ad-hoc run's heartbeats (the zombie-run automation,
    `deploy/automations.yaml`, matches the deployments' runs; those keep theirs).
    """
    from flows.cli.ephemeral import launch, wait_until_ready

    launch()  # a no-op when already launched or a server is configured

    def ready_then_run() -> Any:
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            temporary_settings,
        )

        url = wait_until_ready(meanwhile)
        updates: dict[Any, Any] = {}
        if PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is not None:
            updates[PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
        if url is not None and url != os.environ.get("PREFECT_API_URL"):
            # Its first port was taken meanwhile: Prefect read the old address at import.
            os.environ["PREFECT_API_URL"] = url
            updates[PREFECT_API_URL] = url
        if not updates:  # `temporary_settings` rebuilds Prefect's settings: 30 ms
            return action()
        with temporary_settings(updates=updates):
            return action()

    return run_or_exit(ready_then_run)


JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the result as JSON on stdout (the run's log stays on stderr).",
    ),
]


def finite(value: Any) -> Any:
    """``value`` with NaN and infinite floats as None (an undefined metric, e.g. MASE of a
    constant series), so the output is strict JSON every parser reads."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(finite(data), indent=2, allow_nan=False))


def config_or_exit(path: Path, overrides: list[str] | None) -> PipelineConfig:
    return run_or_exit(lambda: load_config(path, overrides or []))
