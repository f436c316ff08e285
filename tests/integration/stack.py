"""A real Prefect stack for the integration tests: server, worker and CLI, as subprocesses.

Every process starts in its own session (process group) with its output in a log file, and
`Stack.stop()` ends each group it started, so nothing outlives the test. The test talks to
the server the way a user does: the `prefect` CLI for actions, the REST API for reading.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# Prefect's shortest heartbeat interval, so a dead run is noticed within a minute or two
# (the zombie automation's window, ZOMBIE_AFTER in the test, must span a few of them).
HEARTBEAT = 30
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """This process's environment without any Prefect setting (a user's profile, the
    suite's own test harness), so the stack sees only what `Stack` sets."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc; Linux only)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Process:
    """A subprocess in its own process group, logging to ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the whole group, then SIGKILL what is left after ``grace`` seconds,
        including the groups of descendants that left it (a worker starts each flow run
        in a session of its own)."""
        groups = {self.popen.pid}
        for pid in descendants(self.popen.pid):
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(pid))
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace)
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.popen.wait(timeout=grace)

    def kill(self) -> list[int]:
        """SIGKILL this process, then every descendant it had (a worker's flow runs), as a
        lost machine would; return the descendants' pids. The process goes first so that
        a worker cannot see its flow run die and report the crash itself."""
        children = descendants(self.popen.pid)
        self.popen.kill()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait(timeout=30)
        return children

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    """A Prefect server on a free loopback port with its own home and database."""

    home: Path
    database_url: str
    auth: str | None = None
    port: int = field(default_factory=free_port)
    processes: list[Process] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every process of this stack (server, worker, CLI)."""
        env = clean_environment()
        env.update(
            {
                "PREFECT_HOME": str(self.home),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                # Host and port as settings, not only --host/--port: the UI reads them to
                # know where the API is, and would call port 4200 otherwise.
                "PREFECT_SERVER_API_HOST": "127.0.0.1",
                "PREFECT_SERVER_API_PORT": str(self.port),
                "PREFECT_API_DATABASE_CONNECTION_URL": self.database_url,
                # Short waits so a queued run is retried within seconds, not 30 s.
                "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "PREFECT_LOGGING_EXTRA_LOGGERS": "seqcast",
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "TQDM_DISABLE": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.auth:
            env["PREFECT_SERVER_API_AUTH_STRING"] = self.auth
            env["PREFECT_API_AUTH_STRING"] = self.auth
        env.update(extra)
        return env

    def spawn(self, name: str, args: list[str], **extra_env: str) -> Process:
        log = self.home / f"{name}.log"
        handle = log.open("ab")
        popen = subprocess.Popen(
            args,
            cwd=REPO,
            env=self.env(**extra_env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def start_server(self, timeout: float = 90.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        server = self.spawn("server", [str(BIN / "prefect"), "server", "start"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.popen.poll() is not None:
                raise RuntimeError(f"prefect server exited:\n{server.tail()}")
            try:
                if self.client().get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"prefect server not healthy after {timeout}s:\n{server.tail()}")

    def start_worker(self, pool: str) -> Process:
        """A process worker; its flow runs send a heartbeat every ``HEARTBEAT`` seconds."""
        return self.spawn(
            "worker",
            [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", "process"],
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY=str(HEARTBEAT),
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def client(self, auth: bool = True) -> httpx.Client:
        headers = {}
        if auth and self.auth:
            import base64

            headers["Authorization"] = "Basic " + base64.b64encode(self.auth.encode()).decode()
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=30.0)

    def cli(self, *args: str, program: str = "prefect", timeout: float = 180.0) -> str:
        """Run a CLI command against this stack; return its output or raise with it."""
        done = subprocess.run(
            [str(BIN / program), *args],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise AssertionError(f"{program} {' '.join(args)} exited {done.returncode}:\n{output}")
        return output

    def run_deployment(self, name: str, parameters: dict[str, Any]) -> str:
        """Trigger a deployment through the CLI; return the new flow run's id."""
        output = self.cli(
            "deployment", "run", name, "--params", json.dumps(parameters), timeout=120.0
        )
        match = UUID.search(output.split("UUID", 1)[-1])
        assert match, f"no flow run id in the output of `prefect deployment run`:\n{output}"
        return match.group(0)

    def wait_for(self, flow_run_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Poll the API until the flow run is in a terminal state; return the run."""
        deadline = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < deadline:
                run = client.get(f"/flow_runs/{flow_run_id}").raise_for_status().json()
                if run["state"] and run["state"]["type"] in TERMINAL:
                    return run
                time.sleep(1.0)
        logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.processes)
        raise TimeoutError(f"flow run {flow_run_id} not finished after {timeout}s\n{logs}")

    def task_runs(self, flow_run_id: str) -> list[dict[str, Any]]:
        body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
        with self.client() as client:
            return client.post("/task_runs/filter", json=body).raise_for_status().json()

    def artifacts(self, flow_run_id: str) -> dict[str, dict[str, Any]]:
        """The flow run's artifacts, by key (a task's artifacts belong to its flow run)."""
        body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
        with self.client() as client:
            found = client.post("/artifacts/filter", json=body).raise_for_status().json()
        return {a["key"]: a for a in found if a["key"]}

    def heartbeats(self, flow_run_id: str) -> int:
        """How many heartbeat events of the flow run the server has stored so far."""
        body = {
            "filter": {
                "event": {"name": ["prefect.flow-run.heartbeat"]},
                "resource": {"id": [f"prefect.flow-run.{flow_run_id}"]},
            }
        }
        with self.client() as client:
            page = client.post("/events/filter", json=body).raise_for_status().json()
        return int(page["total"])

    def flow_run_logs(self, flow_run_id: str) -> str:
        body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC"}
        with self.client() as client:
            logs = client.post("/logs/filter", json=body).raise_for_status().json()
        return "\n".join(entry["message"] for entry in logs)
