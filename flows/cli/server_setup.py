"""What a Prefect server needs before it can run seqcast: the objects `seqcast deploy` makes.

A process work pool, the task concurrency limit of the training tag, the deployments of
``deploy/prefect.yaml`` (through `prefect deploy`, exactly as the README shows) and the
automations of ``deploy/automations.yaml``. Each step is idempotent, so `seqcast deploy`
can be run again after any change to those files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.exceptions import ObjectNotFound

from seqcast.errors import ConfigError
from tasks.common import TRAINING_TAG, sync_result

ALERT_BLOCK_NAME = "seqcast-alerts"
# In automations.yaml, a related resource id written `deployment:FLOW/NAME` stands for
# that deployment's id on the server, which only exists once it is deployed.
DEPLOYMENT_REFERENCE = "deployment:"
HEARTBEAT = "prefect.flow-run.heartbeat"


def api_url() -> str:
    """The server `seqcast deploy` talks to; refuses the ephemeral one, which no worker sees."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise ConfigError(
            "PREFECT_API_URL is not set: deployments need a Prefect server. Start one "
            "(`prefect server start`, or `docker compose -f deploy/compose.yaml up`) and "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    return url


def ensure_work_pool(client: SyncPrefectClient, name: str) -> bool:
    """Create a process work pool called ``name`` unless it exists; True if created."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        template = ProcessWorker.get_default_base_job_template()
        client.create_work_pool(
            WorkPoolCreate(name=name, type="process", base_job_template=template)
        )
        return True
    if pool.type != "process":
        raise ConfigError(
            f"work pool {name!r} exists with type {pool.type!r}; seqcast's deployments expect "
            "a process pool. Pass --pool with another name."
        )
    return False


DEFAULT_TRAINING_LIMIT = 1


def ensure_training_limit(client: SyncPrefectClient, limit: int | None) -> int:
    """At most ``limit`` task runs tagged `seqcast-train` at once, server-wide. With None
    (`seqcast serve` without --training-limit) the server's limit is kept, or one of
    `DEFAULT_TRAINING_LIMIT` created. Returns the limit in force."""
    if limit is None:
        try:
            return client.read_concurrency_limit_by_tag(TRAINING_TAG).concurrency_limit
        except ObjectNotFound:
            limit = DEFAULT_TRAINING_LIMIT
    client.create_concurrency_limit(tag=TRAINING_TAG, concurrency_limit=limit)
    return limit


def deploy_all(prefect_file: Path) -> None:
    """`prefect deploy --prefect-file F --all` from the repository root (the entrypoints and
    the default config's paths are relative to it)."""
    if not prefect_file.is_file():
        raise ConfigError(
            f"{prefect_file} not found: run `seqcast deploy` from the repository root"
        )
    prefect = Path(sys.executable).parent / "prefect"
    command = [str(prefect), "deploy", "--prefect-file", str(prefect_file), "--all", "--no-prompt"]
    if subprocess.run(command, env=os.environ.copy()).returncode != 0:
        raise ConfigError(f"`prefect deploy --prefect-file {prefect_file} --all` failed (above)")


def notification_block_id(notify_url: str | None, notify_block: str | None) -> UUID | None:
    """The block the alerts send through: a webhook block saved from ``notify_url``, or an
    existing block by slug (``slack-webhook/ops``); None when neither is given."""
    from prefect.blocks.core import Block
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    if notify_url and notify_block:
        raise ConfigError("give --notify-url or --notify-block, not both")
    if notify_url:
        block = CustomWebhookNotificationBlock(
            name=ALERT_BLOCK_NAME,
            url=notify_url,
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
        )
        return sync_result(block.save(ALERT_BLOCK_NAME, overwrite=True))
    if notify_block:
        try:
            loaded = sync_result(Block.load(notify_block))
        except ValueError as exc:
            raise ConfigError(f"--notify-block {notify_block!r}: {exc}") from exc
        return loaded._block_document_id
    return None


def load_automations(
    path: Path, block_id: UUID | None, zombie_after: int | None = None
) -> list[dict[str, Any]]:
    """The automations of ``path``, with ``block_id`` in every notification action and
    ``zombie_after`` (seconds) as the window of every trigger that waits for heartbeats.

    Without a block the notification automations are left out (they could not send
    anything); the others are kept. Deployment references (``deployment:FLOW/NAME``) are
    left for `resolve_deployments`, which needs the server.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read automations from {path}: {exc}") from exc
    automations = []
    for automation in document["automations"]:
        notifying = [a for a in automation["actions"] if a["type"] == "send-notification"]
        if notifying and block_id is None:
            continue
        for action in notifying:
            action["block_document_id"] = str(block_id)
        if zombie_after is not None and HEARTBEAT in automation["trigger"].get("after", []):
            automation["trigger"]["within"] = zombie_after
        automations.append(automation)
    return automations


def resolve_deployments(client: SyncPrefectClient, automations: list[dict[str, Any]]) -> None:
    """Replace each ``deployment:FLOW/NAME`` in the triggers' ``match_related`` resource
    ids with that deployment's id on the server (``prefect.deployment.<uuid>``), and in a
    ``run-deployment`` action's ``deployment_id`` with the bare id.

    Why ids: Prefect's ``prefect.flow-run.heartbeat`` event names its deployment by id
    alone, so a trigger matching the deployment's name never sees a heartbeat.
    """
    ids: dict[str, str] = {}

    def resolve(value: str) -> str:
        if not value.startswith(DEPLOYMENT_REFERENCE):
            return value
        name = value.removeprefix(DEPLOYMENT_REFERENCE)
        if name not in ids:
            try:
                ids[name] = f"prefect.deployment.{client.read_deployment_by_name(name).id}"
            except ObjectNotFound:
                raise ConfigError(
                    f"the automations name deployment {name!r}, which is not on the server "
                    f"at {client.api_url}: run `seqcast deploy` (it creates the deployments, "
                    "then the automations)"
                ) from None
        return ids[name]

    for automation in automations:
        for action in automation["actions"]:
            # A run-deployment action names its deployment by id, as heartbeats do.
            reference = action.get("deployment_id")
            if isinstance(reference, str) and reference.startswith(DEPLOYMENT_REFERENCE):
                action["deployment_id"] = resolve(reference).removeprefix("prefect.deployment.")
        related = automation["trigger"].get("match_related") or {}
        for spec in related if isinstance(related, list) else [related]:
            value = spec.get("prefect.resource.id")
            if isinstance(value, str):
                spec["prefect.resource.id"] = resolve(value)
            elif isinstance(value, list):
                spec["prefect.resource.id"] = [resolve(v) for v in value]


def apply_automations(
    client: SyncPrefectClient, automations: list[dict[str, Any]]
) -> list[tuple[str, UUID]]:
    """Create each automation, replacing any of the same name; return (name, id) pairs."""
    from prefect.events.schemas.automations import AutomationCore

    created = []
    for data in automations:
        automation = AutomationCore.model_validate(data)
        for old in client.read_automations_by_name(automation.name):
            client.delete_automation(old.id)
        created.append((automation.name, client.create_automation(automation)))
    return created


def client() -> SyncPrefectClient:
    api_url()
    return get_client(sync_client=True)
