"""Faults of issue 13 tried as a user runs the CLI (a subprocess each)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.test_contracts_cli import project, seqcast

SEQCAST = Path(sys.executable).parent / "seqcast"


def test_predict_without_a_champion_fails_before_reading_the_source(tmp_path: Path) -> None:
    # Issue 13 #16: it ingested (snapshotted) the whole source before saying there is no
    # champion; now it says so at once and writes nothing under the data root.
    project(tmp_path)
    done = seqcast(tmp_path, "predict", "--config", "pipeline.yaml")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: no champion model under" in done.stderr
    assert "run `seqcast train` first" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".seqcast/data/sample-load/raw").exists()


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc), none once it is gone."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except OSError:
        pass
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_cli_run_takes_its_prefect_server_with_it(tmp_path: Path, signum: int) -> None:
    # Issue 13 #12: SIGKILL or SIGTERM of a CLI run left the ephemeral Prefect server
    # (uvicorn) running for good, re-parented to PID 1. Killed as soon as the server
    # process exists (whatever the flow is doing then), the server must go too.
    project(tmp_path)
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    for name in ("PREFECT_HOME", "PREFECT_API_URL"):
        env.pop(name, None)  # the CLI's own ephemeral server under cwd/.seqcast
    cli = subprocess.Popen(
        [str(SEQCAST), "validate", "--config", "pipeline.yaml"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = None
    try:
        deadline = time.monotonic() + 300  # a generous start-up on a loaded machine
        while server is None and cli.poll() is None and time.monotonic() < deadline:
            server = next((c for c in children(cli.pid) if "uvicorn" in command_line(c)), None)
            time.sleep(0.05)
        assert server is not None, f"no server process seen (CLI exit {cli.returncode})"
        os.kill(cli.pid, signum)
        cli.wait(timeout=60)
        deadline = time.monotonic() + 60  # polled, not a tight limit
        while alive(server) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(server), f"server {server} outlived its CLI: {command_line(server)}"
    finally:
        if cli.poll() is None:
            cli.kill()
        if server is not None and alive(server):
            os.kill(server, signal.SIGKILL)  # never leak it from the test either
