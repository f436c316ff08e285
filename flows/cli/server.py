"""`seqcast server start | stop | status`: one Prefect server (with its UI) for every command.

Without one, each command that runs a flow starts a temporary server of its own (seconds
of start-up, see `flows.cli.ephemeral`) whose runs nobody watches live. `seqcast server
start` runs ``prefect server start`` (through `flows.cli.server_app`) in the background,
on the database under ``PREFECT_HOME`` that the temporary servers use, and records its
address and process in ``PREFECT_HOME/seqcast-server.json``. Every later command with
that ``PREFECT_HOME`` (the default, ``.seqcast/prefect`` under the working directory) and
no ``PREFECT_API_URL`` finds it there, checks that it answers, and sends its runs to it:
manual runs land in the same UI as scheduled ones, and start without waiting for a server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.ephemeral import answers, startup_timeout
from flows.cli.support import ensure_prefect_home, fail

SERVER_MODULE = "flows.cli.server_app"
"""Runs ``prefect server start`` with `flows.cli.server_app.RetrySoon`."""
STATE_FILE = "seqcast-server.json"
LOG_FILE = "seqcast-server.log"

server_app = typer.Typer(
    help="A background Prefect server (UI included) that every command uses.",
    no_args_is_help=True,
)


@dataclass(frozen=True)
class ServerState:
    """What `seqcast server start` records about the server it started."""

    url: str
    """The UI's address; the API is at ``{url}/api``."""
    pid: int
    log: str
    started: str

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def state_path() -> Path:
    return Path(os.environ["PREFECT_HOME"]).expanduser() / STATE_FILE


def read_state() -> ServerState | None:
    """The recorded server, or None when there is no (readable) record."""
    try:
        return ServerState(**json.loads(state_path().read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def write_state(state: ServerState) -> None:
    path = state_path()
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    partial.replace(path)  # atomic: a reader never sees half a record


def is_prefect_server(pid: int) -> bool:
    """True while ``pid`` runs a Prefect server (guards against a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # not ours
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return True  # no /proc (macOS): the pid alone
    try:
        words = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"server" in words and (b"prefect" in words or SERVER_MODULE.encode() in words)


def running_server(timeout: float = 5.0) -> ServerState | None:
    """The recorded seqcast server if its process runs and its API answers, else None."""
    state = read_state()
    if state is None or not is_prefect_server(state.pid):
        return None
    return state if answers(state.api_url, timeout=timeout) else None


def use_running_server() -> None:
    """Point ``PREFECT_API_URL`` at a running seqcast server, unless one is configured.

    Call before Prefect is imported: its settings are read at import.
    """
    if os.environ.get("PREFECT_API_URL"):
        return
    found = running_server()
    if found is not None:
        os.environ["PREFECT_API_URL"] = found.api_url


@server_app.command("start")
def start(
    port: Annotated[int, typer.Option(help="Port of the UI and API.")] = 4200,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start a Prefect server in the background; seqcast commands then use it.

    Its database is the one under PREFECT_HOME, so earlier runs show in its UI. Stop it with
    `seqcast server stop`.
    """
    ensure_prefect_home()
    found = running_server()
    if found is not None:
        typer.echo(f"a seqcast server is already running at {found.url} (pid {found.pid})")
        return
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        fail(
            f"PREFECT_API_URL is set ({configured}): seqcast commands use that server. "
            "Unset it to start seqcast's own"
        )
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    if answers(f"{url}/api", timeout=2):
        fail(
            f"a Prefect server not started by seqcast answers at {url}; use it "
            f"(export PREFECT_API_URL={url}/api) or pass --port"
        )
    log = state_path().with_name(LOG_FILE)
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                SERVER_MODULE,  # `prefect server start` with Retry-After on 503s
                "server",
                "start",
                "--host",
                host,
                "--port",
                str(port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # outlives this command and the terminal's Ctrl-C
        )
    limit = startup_timeout()
    deadline = time.monotonic() + limit
    while not answers(f"{url}/api"):
        if process.poll() is not None:
            fail(f"the Prefect server exited with status {process.returncode}; see {log}")
        if time.monotonic() > deadline:
            _terminate(process.pid)
            fail(
                f"the Prefect server did not answer at {url} within {limit:.0f} s; see {log} "
                "(raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS on a busy machine)"
            )
        time.sleep(0.2)
    write_state(ServerState(url, process.pid, str(log), datetime.now(UTC).isoformat()))
    typer.echo(f"Prefect server running at {url} (pid {process.pid}, log {log})")
    typer.echo(
        "seqcast commands run from here now use it; for `prefect` commands and workers: "
        f"export PREFECT_API_URL={url}/api"
    )


def _terminate(pid: int, grace: float = 30.0) -> None:
    """SIGTERM the server's process group (it was started as a session leader), then
    SIGKILL what is left after ``grace`` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while is_prefect_server(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if is_prefect_server(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


@server_app.command("stop")
def stop() -> None:
    """Stop the server `seqcast server start` started."""
    state = read_state()
    if state is None:
        typer.echo(f"no seqcast server recorded in {state_path()}")
        return
    if is_prefect_server(state.pid):
        _terminate(state.pid)
        typer.echo(f"stopped the Prefect server at {state.url} (pid {state.pid})")
    else:
        typer.echo(f"the server recorded at {state.url} (pid {state.pid}) was not running")
    state_path().unlink(missing_ok=True)


@server_app.command("status")
def status() -> None:
    """Say which Prefect server seqcast commands use; exit 1 when no seqcast server runs."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        typer.echo(f"PREFECT_API_URL is set: commands use {configured}")
    state = read_state()
    if state is None:
        typer.echo(
            "no seqcast server; each command starts a temporary one (`seqcast server "
            "start` starts one for all)"
        )
        raise typer.Exit(code=1)
    if not is_prefect_server(state.pid):
        typer.echo(
            f"the seqcast server at {state.url} (pid {state.pid}) is not running; "
            "`seqcast server stop` clears the record, `seqcast server start` restarts it"
        )
        raise typer.Exit(code=1)
    health = "answering" if answers(state.api_url, timeout=5) else "NOT answering"
    typer.echo(
        f"seqcast server at {state.url}: pid {state.pid}, {health}, since "
        f"{state.started}, log {state.log}"
    )
    if health != "answering":
        raise typer.Exit(code=1)
