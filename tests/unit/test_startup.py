"""CLI start-up (issue 14 #5): a running `seqcast server` is used, a temporary server that
cannot start says so in one sentence, and the flows import no heavy library before a task
needs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from flows.cli import ephemeral, server
from flows.cli.ephemeral import ServerStartError, free_port
from tests.conftest import run_cli
from tests.unit.test_contracts_cli import (
    assert_passed_with_one_row_quarantined,
    one_null_load,
    seqcast,
)

HEAVY = (
    "tensorflow",
    "keras",
    "great_expectations",
    "statsmodels",
    "optuna",
    "matplotlib",
    "prefect.server.api.server",
)


def test_cli_and_flow_modules_import_no_heavy_library() -> None:
    # `seqcast --help`, `models list` and the flow import before the first task paid
    # 10-30 s of TensorFlow, GX and Prefect's server module on a loaded machine.
    code = (
        "import sys\n"
        "import flows.cli.main, flows.training, flows.prediction, flows.validation\n"
        "import seqcast.serving.registry\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_temporary_server_that_exits_is_reported_in_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "")  # unset for seqcast, removed after the test
    monkeypatch.setattr(ephemeral, "_owned", None)
    monkeypatch.setattr(
        ephemeral, "_spawn", lambda port: subprocess.Popen([sys.executable, "-c", "exit(1)"])
    )
    ephemeral.launch()
    assert os.environ["PREFECT_API_URL"].startswith("http://127.0.0.1:")
    with pytest.raises(ServerStartError, match="exited with status 1 before it answered"):
        ephemeral.wait_until_ready()


def test_a_temporary_server_that_never_answers_is_stopped_and_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    monkeypatch.setenv("PREFECT_API_URL", "")
    monkeypatch.setenv(ephemeral.STARTUP_TIMEOUT, "0.5")
    monkeypatch.setattr(ephemeral, "_owned", None)
    monkeypatch.setattr(ephemeral, "_spawn", lambda port: sleeper)
    try:
        ephemeral.launch()
        with pytest.raises(ServerStartError, match=r"did not answer within 0 s.*seqcast server"):
            ephemeral.wait_until_ready()
        assert sleeper.wait(timeout=60) is not None  # stopped, not left behind
    finally:
        if sleeper.poll() is None:
            sleeper.kill()


def test_a_stale_state_file_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    state = server.ServerState(f"http://127.0.0.1:{free_port()}", gone.pid, "log", "then")
    server.write_state(state)
    assert server.read_state() == state
    server.use_running_server()
    assert os.environ["PREFECT_API_URL"] == ""  # the command starts its own server instead


def flow_runs(api_url: str) -> list[dict[str, object]]:
    request = urllib.request.Request(
        f"{api_url}/flow_runs/filter",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        runs: list[dict[str, object]] = json.load(response)
    return runs


@pytest.mark.flow
def test_commands_use_the_running_seqcast_server(tmp_path: Path) -> None:
    # Issue 14 #5: each command started a server of its own (seconds, and a 20 s limit a
    # loaded machine missed), and its runs showed in no UI anyone was watching.
    one_null_load(tmp_path)  # the passing `validate` of tests/unit/test_contracts_cli.py
    port = free_port()
    started = seqcast(tmp_path, "server", "start", "--port", str(port))
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        state = json.loads((tmp_path / ".seqcast/prefect/seqcast-server.json").read_text())
        assert state["url"] == f"http://127.0.0.1:{port}"
        status = seqcast(tmp_path, "server", "status")
        assert status.returncode == 0 and "answering" in status.stdout, status.stdout

        done = seqcast(tmp_path, "validate", "--config", "pipeline.yaml")
        assert_passed_with_one_row_quarantined(tmp_path, done)
        assert f"View at http://127.0.0.1:{port}/runs/flow-run/" in done.stderr
        runs = flow_runs(f"{state['url']}/api")
        top = [r for r in runs if not r.get("parent_task_run_id")]  # not its subflows
        assert [(r["name"], r["state_type"]) for r in top] == [
            (top[0]["name"], "COMPLETED")
        ] and str(top[0]["name"]).startswith("validate-sample-load-")
        assert {r["state_type"] for r in runs} == {"COMPLETED"}
    finally:
        stopped = seqcast(tmp_path, "server", "stop")
    assert stopped.returncode == 0 and "stopped the Prefect server" in stopped.stdout
    assert not server.is_prefect_server(state["pid"])
    assert not (tmp_path / ".seqcast/prefect/seqcast-server.json").exists()
    after = seqcast(tmp_path, "server", "status")
    assert after.returncode == 1 and "no seqcast server" in after.stdout


def test_server_start_refuses_a_configured_server(tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    env.pop("PREFECT_HOME", None)
    done = run_cli("server", "start", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert "PREFECT_API_URL is set (http://127.0.0.1:9/api)" in done.stderr


def test_a_command_s_flow_run_sends_no_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prefect joins the heartbeat thread at the flow's end, up to 1 s per command; nothing
    # watches an ad-hoc run's heartbeats (the zombie automation matches deployments).
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    from flows.cli.support import run_flow_or_exit

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # no server launched
    monkeypatch.setattr(ephemeral, "_owned", None)
    assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is not None
    assert run_flow_or_exit(PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value) is None
    assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is not None  # for this command only
