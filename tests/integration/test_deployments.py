"""The deployments on a real Prefect server, on SQLite and on PostgreSQL.

On SQLite, the whole scenario: start `prefect server start` on a free loopback port,
create the work pool and deployments from `deploy/prefect.yaml` with the README's prefect
commands, start a process worker, trigger the runs with the CLI and read everything back
through the REST API: task runs, artifacts, the published predictions of a backfill (and
of its re-runs, skipped or forced), the registry after two racing retrains, the alert a
failed run sends, and a run whose worker and process were SIGKILLed marked Crashed by the
zombie automation and alerted, and a live-accuracy degradation event notified and
answered with a forced retraining run by the shipped automations.

On PostgreSQL (with basic auth, as deploy/compose.yaml runs it), what depends on the
database: `seqcast deploy` creates the same objects, and of two racing retrains one runs
to Completed while the deployment's concurrency limit holds the other, which starts only
then. Small data and a tiny model keep the legs near two minutes and under one.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from postgres import start_postgres, unavailable
from stack import BIN, HEARTBEAT, REPO, TERMINAL, Stack, free_port

from seqcast.data.sample import load_series, write_csv_per_series
from seqcast.serving import registry
from tests.conftest import placeholder_version

pytestmark = pytest.mark.integration

TRAINING_STEPS = [
    "ingest",
    "validate",
    "window",
    "fit-challengers",
    "train",
    "evaluate",
    "register",
    "retention",
]
PREDICTION_STEPS = [
    "ingest",
    "live-accuracy",
    "validate",
    "predict",
    "prediction-report",
    "input-drift",
]
REQUIRE_POSTGRES = os.environ.get("SEQCAST_REQUIRE_POSTGRES") == "1"
# The zombie automation's window: three of the stack's heartbeats (stack.HEARTBEAT, 30 s),
# so a healthy run on a loaded machine is not taken for dead, and a dead one is marked
# within about a minute and a half instead of the production five minutes.
ZOMBIE_AFTER = 3 * HEARTBEAT


class Webhook:
    """A loopback HTTP endpoint that records the JSON bodies POSTed to it (the alerts)."""

    def __init__(self) -> None:
        received: queue.Queue[dict[str, Any]] = queue.Queue()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                received.put(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.seen: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alert_for(self, flow_run_id: str, timeout: float) -> dict[str, Any]:
        """The first alert about ``flow_run_id`` (alerts of several runs come in any order)."""
        deadline = time.monotonic() + timeout
        while True:
            for alert in self.seen:
                if flow_run_id in alert.get("body", ""):
                    return alert
            try:
                self.seen.append(self.received.get(timeout=max(deadline - time.monotonic(), 0)))
            except queue.Empty:
                raise AssertionError(
                    f"no alert about flow run {flow_run_id} after {timeout}s; got {self.seen}"
                ) from None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pipeline_config(root: Path, name: str) -> dict[str, Any]:
    """A config small enough to train in seconds that still beats the naive baseline.

    A 1% promotion margin: a retrain of the same data (same seed) is not "better", so of
    two identical racing retrains exactly one may promote.
    """
    return {
        "name": name,
        "data_root": str(root / "out"),
        "source": {
            "path": str(root / "data" / "*.csv"),
            "timestamp": "ts",
            "series_id": "sensor",
            "target": ["load"],
            "features": ["temperature"],
        },
        "window": {"lookback": 24, "horizon": 12, "stride": 2},
        "model": {
            "units": [8],
            "epochs": 1,
            "batch_size": 32,
            "learning_rate": 0.01,
            "search": {"enabled": False},
        },
        "evaluate": {"promotion_margin": 0.01},
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """A running server (not yet deployed to) on the parametrized database."""
    cluster = None
    if request.param == "sqlite":
        server = Stack(
            home=tmp_path / "prefect", database_url=f"sqlite+aiosqlite:///{tmp_path}/prefect.db"
        )
    else:
        reason = unavailable()
        if reason and not REQUIRE_POSTGRES:
            pytest.skip(reason)
        assert reason is None, reason
        cluster = start_postgres()
        # The shared-server setup: PostgreSQL plus basic auth, as in deploy/compose.yaml.
        server = Stack(home=tmp_path / "prefect", database_url=cluster.url, auth="ops:s3cret")
    try:
        server.start_server()
        yield server
    finally:
        server.stop()
        if cluster is not None:
            cluster.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def deploy(stack: Stack, webhook: Webhook) -> None:
    """SQLite: the README's prefect commands one by one. PostgreSQL: `seqcast deploy`."""
    zombie_after = ["--zombie-after", str(ZOMBIE_AFTER)]
    if stack.auth is None:
        stack.cli("work-pool", "create", "seqcast", "--type", "process")
        stack.cli("concurrency-limit", "create", "seqcast-train", "1")
        stack.cli("deploy", "--prefect-file", "deploy/prefect.yaml", "--all")
        stack.cli("alerts", "--notify-url", webhook.url, *zombie_after, program="seqcast")
    else:
        stack.cli("deploy", "--notify-url", webhook.url, *zombie_after, program="seqcast")


def check_server_objects(stack: Stack) -> None:
    with stack.client() as api:
        retrain = api.get("/deployments/name/training/nightly-retrain").raise_for_status().json()
        predict = api.get("/deployments/name/batch-predict/batch-predict").raise_for_status()
        limit = api.get("/concurrency_limits/tag/seqcast-train").raise_for_status().json()
        automations = api.post("/automations/filter", json={}).raise_for_status().json()
        ui = api.get(stack.api_url.removesuffix("/api") + "/ui-settings").raise_for_status()
    schedule = retrain["schedules"][0]["schedule"]
    assert (schedule["cron"], schedule["timezone"]) == ("0 2 * * *", "UTC")
    assert predict.json()["schedules"][0]["schedule"]["cron"] == "30 3 * * *"
    assert retrain["global_concurrency_limit"]["limit"] == 1
    assert retrain["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    assert "config" in retrain["parameter_openapi_schema"]["properties"]
    assert retrain["parameters"]["config"]["name"] == "sample-load"
    assert limit["concurrency_limit"] == 1
    assert {a["name"] for a in automations} == {
        "seqcast-run-failed",
        "seqcast-zombie-runs",
        "seqcast-accuracy-degraded",
        "seqcast-retrain-on-degradation",
        "seqcast-input-drifted",
    }
    # Heartbeats name their deployment by id only: the zombie automation must match ids.
    (zombie,) = [a["trigger"] for a in automations if a["name"] == "seqcast-zombie-runs"]
    assert zombie["match_related"]["prefect.resource.id"] == [
        f"prefect.deployment.{retrain['id']}", f"prefect.deployment.{predict.json()['id']}"
    ]  # fmt: skip
    assert zombie["within"] == ZOMBIE_AFTER
    # The UI asks this endpoint where the API is: it must be this port, not 4200.
    assert ui.json()["api_url"] == stack.api_url


def check_steps(stack: Stack, flow_run_id: str, steps: list[str]) -> list[dict[str, Any]]:
    """Every step ran once and Completed. Task run states reach the API as events, a moment
    after the flow run's own state, so wait a little for them."""
    deadline = time.monotonic() + 30
    while True:
        runs = stack.task_runs(flow_run_id)
        states = [run["state"]["type"] if run["state"] else None for run in runs]
        if all(state == "COMPLETED" for state in states) or time.monotonic() > deadline:
            break
        time.sleep(1)
    names = [run["name"].rsplit("-", 1)[0] for run in runs]
    assert sorted(names) == sorted(steps), names
    assert states == ["COMPLETED"] * len(steps), dict(zip(names, states, strict=True))
    return runs


def check_table(artifact: dict[str, Any], column: str) -> list[dict[str, Any]]:
    assert artifact["type"] == "table"
    rows = json.loads(artifact["data"]) if isinstance(artifact["data"], str) else artifact["data"]
    assert rows and all(column in row for row in rows), rows
    return rows


def trigger(stack: Stack, deployment: str, config: dict[str, Any]) -> dict[str, Any]:
    return stack.wait_for(stack.run_deployment(deployment, {"config": config}))


def train(stack: Stack, root: Path) -> str:
    """A deployment run of the training flow: every step Completed, the train step holding
    the training tag, the metrics and validation tables, a verified champion. Its id."""
    config = pipeline_config(root, "nightly")
    pipeline = f"{config['data_root']}/nightly"

    run = trigger(stack, "training/nightly-retrain", config)
    assert run["state"]["type"] == "COMPLETED", stack.flow_run_logs(run["id"])
    task_runs = check_steps(stack, run["id"], TRAINING_STEPS)
    assert "seqcast-train" in next(t for t in task_runs if t["name"].startswith("train-"))["tags"]
    artifacts = stack.artifacts(run["id"])
    metrics = check_table(artifacts["nightly-metrics"], "predictor")
    assert {row["predictor"] for row in metrics} >= {"model", "last_value"}
    checks = check_table(artifacts["nightly-validation"], "rule")
    assert all(row["outcome"] == "pass" for row in checks)
    champion = registry.champion_version(pipeline)
    assert champion is not None, "the first run always leaves a champion"
    registry.verify_version(pipeline, champion)
    return champion


def check_prediction_run(stack: Stack, root: Path, flow_run_id: str, day: str) -> None:
    """A batch-predict run's steps all Completed, its validation table, and what it
    published for ``day``: one row per series and horizon step, by the champion."""
    check_steps(stack, flow_run_id, PREDICTION_STEPS)
    artifacts = stack.artifacts(flow_run_id)
    check_table(artifacts["nightly-prediction-validation"], "rule")
    report = artifacts["nightly-predictions"]
    assert report["type"] == "markdown" and "- rows written: **24**" in report["data"]
    assert "data:image/png;base64," in report["data"]
    predictions = published_predictions(root, day)
    assert len(predictions) == 2 * 12  # two series, horizon 12
    champion = registry.champion_version(str(root / "out" / "nightly"))
    assert set(predictions["model_version"]) == {champion}
    assert set(predictions["flow_run_id"]) == {flow_run_id}


def launch_racing_retrains(stack: Stack, root: Path) -> list[str]:
    """Trigger two retrains at once (two CLI processes) on a pipeline without a champion.
    Forced: both are for today, and the second would otherwise return the first one's
    outcome without training."""
    parameters = {"config": pipeline_config(root, "race"), "force": True}
    command = [
        str(BIN / "prefect"), "deployment", "run", "training/nightly-retrain",
        "--params", json.dumps(parameters),
    ]  # fmt: skip
    launched = [
        subprocess.Popen(command, cwd=REPO, env=stack.env(), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    ids = []
    for process in launched:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
        ids.append(output.split("UUID:", 1)[1].split()[0])
    return ids


def check_racing_retrains(stack: Stack, root: Path, ids: list[str]) -> None:
    """The deployment's concurrency limit ran them one after the other, the second waiting
    for the slot, and exactly one promoted; the registry is consistent."""
    pipeline = str(root / "out" / "race")
    runs = [stack.wait_for(flow_run_id, timeout=240) for flow_run_id in ids]
    assert [r["state"]["type"] for r in runs] == ["COMPLETED", "COMPLETED"]

    first, second = sorted(runs, key=lambda r: r["start_time"])
    assert second["start_time"] >= first["end_time"], "the two retrains overlapped"
    with stack.client() as api:
        states = api.get("/flow_run_states/", params={"flow_run_id": second["id"]}).json()
    assert "AwaitingConcurrencySlot" in {s["name"] for s in states}

    audit_file = Path(registry.registry_root(pipeline), "audit.jsonl")
    audit = [json.loads(line) for line in audit_file.read_text().splitlines()]
    promoted = [entry["version"] for entry in audit if entry["promoted"]]
    assert len(audit) == 2 and len(promoted) == 1, audit
    assert registry.champion_version(pipeline) == promoted[0]
    versions = registry.list_versions(pipeline)
    # One network version per run (registered for audit), beside it the statistical winner
    # of a night the network lost; one champion in all.
    assert [v["kind"] for v in versions].count("network") == 2, versions
    assert [v["champion"] for v in versions].count(True) == 1, versions
    for version in versions:
        registry.verify_version(pipeline, version["version"])


def check_slot_queue(stack: Stack, ids: list[str]) -> None:
    """The deployment's concurrency limit held the second retrain (AwaitingConcurrencySlot
    in its state records) until the first had Completed, then started it. Once it has
    started the leg has seen what depends on the database, and ends without waiting for it
    to train (the SQLite leg checks how the race ends)."""
    deadline = time.monotonic() + 240
    with stack.client() as api:
        while True:
            runs = [api.get(f"/flow_runs/{i}").raise_for_status().json() for i in ids]
            types = [r["state"]["type"] if r["state"] else None for r in runs]
            assert not set(types) & (TERMINAL - {"COMPLETED"}), runs
            if "COMPLETED" in types and all(r["start_time"] for r in runs):
                break
            assert time.monotonic() < deadline, f"the race is not past its slot: {types}"
            time.sleep(1)
        first, second = sorted(runs, key=lambda r: r["start_time"])
        assert first["state"]["type"] == "COMPLETED", stack.flow_run_logs(first["id"])
        assert second["start_time"] >= first["end_time"], "the two retrains overlapped"
        states = api.get("/flow_run_states/", params={"flow_run_id": second["id"]}).json()
    assert "AwaitingConcurrencySlot" in {s["name"] for s in states}


def backfill(stack: Stack, root: Path, *args: str) -> dict[str, str]:
    """`seqcast backfill` of batch-predict; the finished runs by logical date."""
    config_file = root / "nightly.yaml"
    config_file.write_text(yaml.safe_dump(pipeline_config(root, "nightly")))
    output = stack.cli(
        "backfill", "--deployment", "batch-predict/batch-predict", "--config", str(config_file),
        *args, program="seqcast",
    )  # fmt: skip
    created = {
        day: rest.split()[0]  # "ID" or "ID (requested before, ...)"
        for day, rest in (
            line.split(": flow run ") for line in output.splitlines() if ": flow run " in line
        )
    }
    runs = {day: stack.wait_for(flow_run_id) for day, flow_run_id in created.items()}
    assert {day: run["state"]["type"] for day, run in runs.items()} == dict.fromkeys(
        created, "COMPLETED"
    )
    return {day: run["id"] for day, run in runs.items()}


def published_predictions(root: Path, day: str) -> pd.DataFrame:
    files = list(Path(root, "out", "nightly", "predictions", f"date={day}").glob("*.parquet"))
    assert len(files) == 1, files
    return pd.read_parquet(files[0])


def backfill_is_idempotent(stack: Stack, root: Path) -> None:
    """One run per date, each a whole prediction run publishing under its logical date; a
    re-run of a date keeps what was published unless --force, which replaces it."""
    first = backfill(stack, root, "--from", "2026-01-01", "--to", "2026-01-02")
    assert sorted(first) == ["2026-01-01", "2026-01-02"]
    for day, flow_run_id in first.items():
        check_prediction_run(stack, root, flow_run_id, day)

    again = backfill(stack, root, "--from", "2026-01-01", "--to", "2026-01-01")
    assert stack.task_runs(again["2026-01-01"]) == [], "a published date was predicted again"
    skipped = stack.wait_for(again["2026-01-01"])["state"]
    assert (skipped["name"], skipped["type"]) == ("Skipped", "COMPLETED"), skipped  # issue 14 #2
    assert first["2026-01-01"] in skipped["message"], skipped
    assert set(published_predictions(root, "2026-01-01")["flow_run_id"]) == {first["2026-01-01"]}

    forced = backfill(stack, root, "--from", "2026-01-01", "--to", "2026-01-01", "--force")
    assert set(published_predictions(root, "2026-01-01")["flow_run_id"]) == {forced["2026-01-01"]}


def check_failure_alert(stack: Stack, flow_run_id: str, webhook: Webhook) -> None:
    """batch-predict alone on a pipeline that never trained fails, and the alert arrives."""
    run = stack.wait_for(flow_run_id)
    assert run["state"]["type"] == "FAILED"
    assert "no champion model" in stack.flow_run_logs(run["id"])
    alert = webhook.alert_for(run["id"], timeout=60)
    assert "batch-predict" in alert["subject"] and "Failed" in alert["subject"], alert


def start_zombie(stack: Stack, root: Path) -> str:
    """A batch-predict run whose worker and flow process die while it runs, as with a lost
    machine: once the server has its first heartbeat, SIGKILL the worker and the run's
    process, then start a new worker for the rest of the test. Return the run's id.

    The run is of a pipeline of its own whose champion is a placeholder (the run checks
    that one exists, then reads its source), and reads a FIFO nobody writes to, so it is
    still running when killed; so it can go first, and the zombie automation's window
    passes while the rest of the scenario runs."""
    fifo = root / "stuck" / "load.csv"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    config = pipeline_config(root, "stuck")
    config["source"]["path"] = str(fifo)
    champion = placeholder_version(f"{config['data_root']}/stuck", root, "stuck")
    registry.set_champion(f"{config['data_root']}/stuck", champion, {"reason": "placeholder"})
    flow_run_id = stack.run_deployment(
        "batch-predict/batch-predict", {"config": config, "force": True}
    )
    deadline = time.monotonic() + 180
    while stack.heartbeats(flow_run_id) == 0:
        with stack.client() as api:
            state = api.get(f"/flow_runs/{flow_run_id}").raise_for_status().json()["state"]
        assert state is None or state["type"] not in TERMINAL, state
        assert time.monotonic() < deadline, f"no heartbeat from flow run {flow_run_id} in 180 s"
        time.sleep(1)
    (worker,) = [p for p in stack.processes if p.name == "worker" and p.popen.poll() is None]
    assert worker.kill(), "the worker had no flow run process to kill"
    stack.start_worker("seqcast")
    return flow_run_id


def check_zombie_crashed(stack: Stack, flow_run_id: str, webhook: Webhook) -> None:
    """Nothing is left to report the killed run's end: the zombie automation marks it
    Crashed once its heartbeats stop, and that sends the failure alert."""
    run = stack.wait_for(flow_run_id, timeout=ZOMBIE_AFTER + 240)
    assert run["state"]["type"] == "CRASHED", run["state"]
    assert "seqcast-zombie-runs" in run["state"]["message"], run["state"]
    alert = webhook.alert_for(flow_run_id, timeout=60)
    assert "batch-predict" in alert["subject"] and "Crashed" in alert["subject"], alert


def check_degradation_automations(stack: Stack, webhook: Webhook, root: Path) -> None:
    """A `seqcast.accuracy.degraded` event, built as the prediction flow's live-accuracy
    task builds it, reaches the server: the notification automation sends it to the
    webhook, and (the pipeline asks for retraining) the retraining automation starts a
    forced nightly-retrain run with the deployment's own config."""
    from prefect.events import Event

    from seqcast.config import config_from_dict
    from tasks.events import ACCURACY_DEGRADED, event_fields

    config = config_from_dict(pipeline_config(root, "watched"))
    payload = {"night": "2026-01-09", "live_mae": 9.5, "test_mae": 3.1, "ratio": 3.06,
               "nights": 3, "threshold": 1.3}  # fmt: skip
    fields = event_fields(
        config, ACCURACY_DEGRADED, "v-degraded", payload, {"seqcast.retrain": "true"}
    )
    with stack.client() as api:
        retrain = api.get("/deployments/name/training/nightly-retrain").raise_for_status().json()
        api.post("/events", json=[Event(**fields).model_dump(mode="json")]).raise_for_status()
    alert = webhook.alert_for("v-degraded", timeout=120)
    assert "watched forecasts degraded (3 nights)" in alert["subject"], alert
    assert "live MAE" in alert["body"] and "9.5" in alert["body"], alert
    deadline = time.monotonic() + 120
    while True:
        with stack.client() as api:
            runs = (
                api.post(
                    "/flow_runs/filter",
                    json={"flow_runs": {"deployment_id": {"any_": [retrain["id"]]}}},
                )
                .raise_for_status()
                .json()
            )
        started = [r for r in runs if r["parameters"].get("force") is True
                   and r["parameters"]["config"]["name"] == "sample-load"]  # fmt: skip
        if started:
            break
        assert time.monotonic() < deadline, f"no retraining run after 120 s: {runs}"
        time.sleep(1)


def test_deployments_on_a_real_server(stack: Stack, webhook: Webhook, tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    mark = time.monotonic()

    def lap(name: str) -> None:
        nonlocal mark
        timings[name] = round(time.monotonic() - mark)
        mark = time.monotonic()

    write_csv_per_series(load_series(n_series=2, n_steps=24 * 7 * 3), "sensor", tmp_path / "data")
    if stack.auth:
        with stack.client(auth=False) as anonymous:
            assert anonymous.post("/flow_runs/count").status_code == 401
    deploy(stack, webhook)
    check_server_objects(stack)
    stack.start_worker("seqcast")
    lap("deploy")

    if not stack.database_url.startswith("sqlite"):
        # PostgreSQL: what depends on the database. Of two racing retrains, one deployment
        # run to Completed while the other waits for the deployment's concurrency slot
        # (its records); the rest of the scenario is the SQLite leg's.
        check_slot_queue(stack, launch_racing_retrains(stack, tmp_path))
        lap("race")
        print(f"\npostgresql: {timings}")
        return

    # One leg is enough for the zombie run (the other checks that `seqcast deploy` made the
    # automation match ids). Killed first, it is marked Crashed while the rest runs (the
    # window is a minute and a half).
    zombie = start_zombie(stack, tmp_path)
    lap("zombie killed")
    train(stack, tmp_path)
    lap("train")
    # Independent of each other: run them side by side, then check each. The backfill's
    # runs are the scenario's prediction runs (steps, artifacts, the published file).
    race = launch_racing_retrains(stack, tmp_path)
    untrained = {"config": pipeline_config(tmp_path, "untrained")}
    failing = stack.run_deployment("batch-predict/batch-predict", untrained)
    backfill_is_idempotent(stack, tmp_path)
    check_racing_retrains(stack, tmp_path, race)
    check_failure_alert(stack, failing, webhook)
    lap("race, backfill, alert")
    check_zombie_crashed(stack, zombie, webhook)
    lap("zombie crashed")
    check_degradation_automations(stack, webhook, tmp_path)
    lap("degradation alert and retrain")
    print(f"\nsqlite: {timings}")
