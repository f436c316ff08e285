"""The ephemeral Prefect server of a CLI run dies with the CLI, however the CLI ends.

Without ``PREFECT_API_URL`` Prefect starts a server (uvicorn) as a child process and stops
it at exit (`atexit`). A CLI killed by SIGKILL, or by SIGTERM (Python runs no `atexit` on
a signal's default action), left that child running for good: re-parented to PID 1, with
its port and some 230 MB (issue 13 #12).

On Linux the child is started with a parent-death signal (``prctl(PR_SET_PDEATHSIG,
SIGTERM)``), set between fork and exec: the kernel sends SIGTERM to the server the moment
the CLI dies, by any cause, and uvicorn shuts down cleanly. This needs nothing from the
CLI at its end, which a SIGKILL would never give. The signal is tied to the thread that
started the child, so the CLI starts the server from its main thread before the flow runs,
rather than leaving it to whichever Prefect thread first needs the API. Elsewhere (macOS)
Prefect's own `atexit` stop remains: a killed CLI still leaks the server there.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from typing import Any

from prefect.server.api.server import SubprocessASGIServer
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_SERVER_EPHEMERAL_ENABLED,
    get_current_settings,
)

PR_SET_PDEATHSIG = 1
"""From <linux/prctl.h>."""


def parent_death_hook(signum: int = signal.SIGTERM) -> Any:
    """A ``preexec_fn`` that has the kernel send ``signum`` to the child when this
    process dies; the child exits at once if this process died before that took effect."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not after the fork
    parent = os.getpid()

    def hook() -> None:
        if prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
            os._exit(127)  # exec would start a server no one stops: refuse instead
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(0)

    return hook


class OwnedServer(SubprocessASGIServer):
    """Prefect's ephemeral server, started with a parent-death signal (Linux)."""

    def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
        # Prefect 3.9's command and environment (prefect/server/api/server.py), plus the
        # preexec hook, which Prefect gives no way to pass.
        import prefect

        return subprocess.Popen(
            args=[
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(prefect.__module_path__.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env={
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **get_current_settings().to_environment_variables(exclude_unset=True),
            },
            preexec_fn=parent_death_hook(),
        )


def start_owned_server() -> None:
    """Start the ephemeral server now, from this (the main) thread, so that it dies with
    this process; a no-op with ``PREFECT_API_URL`` set, off Linux, or once started.

    Prefect's own code asks for ``SubprocessASGIServer()``, the instance registered for no
    port; registering ours there (as `prefect_test_harness` registers its server) makes
    every part of Prefect use it.
    """
    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    if not sys.platform.startswith("linux"):
        return
    current = SubprocessASGIServer._instances.get(None)
    if current is not None and current.running:
        return
    SubprocessASGIServer._instances.pop(None, None)
    OwnedServer().start()  # registers itself under None, the key Prefect asks for
