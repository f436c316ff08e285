"""Alerting faults tried from outside (docs/faults.md): the zombie-run automation must see
the heartbeats Prefect really sends. The heartbeat here is built by Prefect's own flow
engine code and matched by the server's own trigger code, so a change in either shows
up here before it silently disables the alert again. The integration test proves it end
to end (a run whose process and worker are SIGKILLed is marked Crashed and alerted)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest

from flows.cli import server_setup
from seqcast.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
AUTOMATIONS = REPO / "deploy" / "automations.yaml"
DEPLOYMENTS = {"training/nightly-retrain": uuid4(), "batch-predict/batch-predict": uuid4()}


class Deployments:
    """The one client call `resolve_deployments` makes, against a fixed set of ids."""

    api_url = "http://127.0.0.1:4200/api/"

    def __init__(self, ids: dict[str, UUID]) -> None:
        self.ids = ids

    def read_deployment_by_name(self, name: str) -> SimpleNamespace:
        from prefect.exceptions import ObjectNotFound

        if name not in self.ids:
            raise ObjectNotFound(http_exc=Exception(name))
        return SimpleNamespace(id=self.ids[name])


def zombie_trigger(zombie_after: int | None = None) -> Any:
    """The seqcast-zombie-runs trigger as `seqcast alerts` sends it, read by the server."""
    from prefect.server.events.schemas.automations import EventTrigger

    automations = server_setup.load_automations(AUTOMATIONS, None, zombie_after)
    server_setup.resolve_deployments(Deployments(DEPLOYMENTS), automations)  # type: ignore[arg-type]
    (zombie,) = [a for a in automations if a["name"] == "seqcast-zombie-runs"]
    return EventTrigger.model_validate(zombie["trigger"])


def heartbeat(deployment_id: UUID) -> Any:
    """A `prefect.flow-run.heartbeat` event exactly as Prefect 3's flow engine emits it."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.events import Event
    from prefect.flow_engine import FlowRunEngine
    from prefect.server.events.schemas.events import ReceivedEvent

    run = FlowRun(
        id=uuid4(), name="brave-otter", flow_id=uuid4(), deployment_id=deployment_id,
        tags=["seqcast", "training"],
    )  # fmt: skip
    engine = SimpleNamespace(flow_run=run, flow=SimpleNamespace(name="training"))
    resource, related = FlowRunEngine._build_heartbeat_event_template(engine)  # type: ignore[arg-type]
    sent = Event(event="prefect.flow-run.heartbeat", resource=resource, related=related)
    return ReceivedEvent.model_validate(sent.model_dump())


def test_the_zombie_automation_matches_the_heartbeats_prefect_sends() -> None:
    trigger = zombie_trigger()
    for deployment_id in DEPLOYMENTS.values():
        beat = heartbeat(deployment_id)
        assert trigger.starts_after(beat.event)
        assert trigger.covers(beat), "a heartbeat of a seqcast deployment must start the clock"
    assert not trigger.covers(heartbeat(uuid4())), "another deployment's runs are not watched"
    assert trigger.within == timedelta(seconds=300)


def test_the_zombie_window_can_be_shortened() -> None:
    assert zombie_trigger(zombie_after=90).within == timedelta(seconds=90)


def test_alerts_before_the_deployments_exist_name_the_missing_deployment() -> None:
    automations = server_setup.load_automations(AUTOMATIONS, None)
    with pytest.raises(ConfigError, match="'training/nightly-retrain'.*run `seqcast deploy`"):
        server_setup.resolve_deployments(Deployments({}), automations)  # type: ignore[arg-type]


def monitor_event(event: str, retrain: bool) -> Any:
    """A monitoring event exactly as `tasks.events.emit` sends it, as the server gets it."""
    from prefect.events import Event
    from prefect.server.events.schemas.events import ReceivedEvent

    from tasks.events import event_fields
    from tests.conftest import tiny_config

    config = tiny_config(Path("source"), Path("root"))
    labels = {"seqcast.retrain": str(retrain).lower()}
    fields = event_fields(config, event, "v-1", {"live_mae": 3.0, "nights": 3}, labels)
    return ReceivedEvent.model_validate(Event(**fields).model_dump())


def monitor_automations() -> dict[str, Any]:
    """The monitoring automations as `seqcast alerts` sends them (with a block for the
    notifications), read by the server's own schema."""
    from prefect.server.events.schemas.automations import AutomationCore

    automations = server_setup.load_automations(AUTOMATIONS, uuid4())
    server_setup.resolve_deployments(Deployments(DEPLOYMENTS), automations)  # type: ignore[arg-type]
    return {a["name"]: AutomationCore.model_validate(a) for a in automations}


def test_degradation_notifies_and_retrains_only_when_the_pipeline_asks() -> None:
    automations = monitor_automations()
    notify = automations["seqcast-accuracy-degraded"].trigger
    retrain = automations["seqcast-retrain-on-degradation"]
    for asks in (True, False):
        event = monitor_event("seqcast.accuracy.degraded", retrain=asks)
        assert notify.covers(event), "every degradation event notifies"  # type: ignore[union-attr]
        assert retrain.trigger.covers(event) is asks  # type: ignore[union-attr]
    assert not notify.covers(monitor_event("seqcast.input.drifted", retrain=True))  # type: ignore[union-attr]
    (action,) = retrain.actions
    # the retraining run is the training deployment's, forced past the night's published run
    assert action.type == "run-deployment"
    assert action.deployment_id == DEPLOYMENTS["training/nightly-retrain"]  # type: ignore[union-attr]
    assert action.parameters == {"force": True}  # type: ignore[union-attr]


def test_drift_events_notify() -> None:
    drifted = monitor_automations()["seqcast-input-drifted"].trigger
    assert drifted.covers(monitor_event("seqcast.input.drifted", retrain=False))  # type: ignore[union-attr]
