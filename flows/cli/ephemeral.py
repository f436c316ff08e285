"""The CLI's own temporary Prefect server: started early, waited for late, dead with the CLI.

Without ``PREFECT_API_URL`` (and no `seqcast server` running) a command that runs a flow
needs a Prefect API for its run. Prefect would start one itself (a uvicorn child) the first
time it needs it, and wait for it with a 20 s limit a loaded 2-core machine misses
(issue 14 #5). Importing Prefect's server module in the CLI to do so costs 2-6 s more.

So the CLI spawns the same uvicorn server itself, before it imports Prefect or the flows,
and points ``PREFECT_API_URL`` at it: to Prefect it is then an ordinary server. The server
boots while the CLI imports the flow (two processes, two cores), and the CLI waits for its
``/api/health`` only when the flow is about to run, as long as
``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` allows (the CLI sets 300), and
reports a server that cannot start in one sentence.

The server dies with the CLI, however the CLI ends (issue 13 #12): on Linux it is started
with a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``, set between fork and
exec), so the kernel sends SIGTERM the moment the CLI dies, even by SIGKILL. The signal is
tied to the thread that started the child, hence the main thread. Elsewhere (macOS) an
`atexit` stop remains, and a killed CLI still leaks the server.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seqcast.errors import SeqcastError
from seqcast.lifetime import parent_death_hook

PORT_IN_USE = 3
"""uvicorn's exit status when its port is taken (someone bound it after we picked it)."""
STARTUP_TIMEOUT = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


class ServerStartError(SeqcastError):
    """The Prefect API a command needs did not come up."""


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(api_url: str, timeout: float = 2.0) -> bool:
    """True when ``{api_url}/health`` answers 200."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def startup_timeout() -> float:
    """Seconds to wait for a server: Prefect's own setting, which the CLI raises to 300."""
    try:
        return float(os.environ.get(STARTUP_TIMEOUT, "300"))
    except ValueError:
        return 300.0


@dataclass
class OwnedServer:
    """Prefect's ephemeral API server (uvicorn) as a child of this process."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def stop(self) -> None:
        """SIGTERM, without waiting: uvicorn's graceful shutdown waits for this process's
        keep-alive connections, which close only when it exits (Prefect's own stop waited
        5 s for that, then killed the server: 5 s at the end of every command)."""
        if self.process.poll() is None:
            self.process.terminate()


def _spawn(port: int) -> subprocess.Popen[bytes]:
    """Prefect 3.9's command and environment for its ephemeral server
    (``SubprocessASGIServer._run_uvicorn_command``), plus the parent-death hook and
    `flows.cli.server_app.RetrySoon`, without importing Prefect here."""
    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin is not None, "prefect is not installed"
    env = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    env.pop("PREFECT_API_URL", None)  # the client's setting (ours), not the server's
    linux = sys.platform.startswith("linux")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(Path(spec.origin).parent.parent),
            "--factory",
            "flows.cli.server_app:create_app",  # Prefect's, with Retry-After on 503s
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        preexec_fn=parent_death_hook() if linux else None,  # `seqcast.lifetime`
    )


_owned: OwnedServer | None = None


def launch() -> None:
    """Spawn the server now and point ``PREFECT_API_URL`` at it, without waiting for it.

    Call before Prefect is imported (its settings are read at import) and from the main
    thread (the parent-death signal). A no-op with ``PREFECT_API_URL`` set (a configured
    server, or a running `seqcast server`), or once launched.
    """
    global _owned
    if os.environ.get("PREFECT_API_URL") or _owned is not None:
        return
    port = free_port()
    _owned = OwnedServer(port, _spawn(port))
    atexit.register(_owned.stop)  # registered before Prefect's: runs after its last flush
    os.environ["PREFECT_API_URL"] = _owned.api_url


def wait_until_ready(meanwhile: Sequence[str] = ()) -> str | None:
    """Block until the launched server answers; None when none was launched, else its
    API URL (a new one if its first port was taken meanwhile).

    ``meanwhile``: modules the flow's tasks will import (TensorFlow, GX: seconds each),
    imported here first if the server is still booting, which it does on the other core;
    with a server already answering they are left to the tasks.

    Raises:
        ServerStartError: the server exited or did not answer within the start-up timeout.
    """
    global _owned
    if _owned is None:
        return None
    if meanwhile and not answers(_owned.api_url, timeout=0.5):
        for module in meanwhile:
            importlib.import_module(module)
    limit = startup_timeout()
    deadline = time.monotonic() + limit
    while True:
        code = _owned.process.poll()  # first: an exited server's port may answer for another
        if code is None and answers(_owned.api_url):
            return _owned.api_url
        if code == PORT_IN_USE:
            port = free_port()
            _owned = OwnedServer(port, _spawn(port))
            atexit.register(_owned.stop)
            continue
        if code is not None:
            raise ServerStartError(
                f"the temporary Prefect server exited with status {code} before it answered "
                "(its error is above); start one yourself (`seqcast server start`) to see why"
            )
        if time.monotonic() > deadline:
            _owned.stop()
            raise ServerStartError(
                f"the temporary Prefect server did not answer within {limit:.0f} s "
                f"({STARTUP_TIMEOUT}); the machine may be overloaded. Raise that setting, "
                "or start one server for all commands: `seqcast server start`"
            )
        time.sleep(0.1)
