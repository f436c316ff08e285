"""`seqcast deploy | alerts | serve | backfill`: run seqcast on a Prefect server."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.support import (
    ConfigOption,
    SetOption,
    config_or_exit,
    ensure_prefect_home,
    run_or_exit,
)

PrefectFile = Annotated[
    Path, typer.Option("--prefect-file", help="The deployments (prefect.yaml).")
]
DEFAULT_PREFECT_FILE = Path("deploy/prefect.yaml")
NotifyUrl = Annotated[
    str | None,
    typer.Option(
        "--notify-url",
        help="Send alerts as JSON {subject, body} to this webhook (saved as block "
        "custom-webhook/seqcast-alerts).",
        show_default=False,
    ),
]
NotifyBlock = Annotated[
    str | None,
    typer.Option(
        "--notify-block",
        help="Send alerts through an existing notification block, e.g. slack-webhook/ops.",
        show_default=False,
    ),
]
AutomationsFile = Annotated[
    Path, typer.Option("--automations", help="Automations to apply (YAML).")
]
ZombieAfter = Annotated[
    int | None,
    typer.Option(
        "--zombie-after",
        envvar="SEQCAST_ZOMBIE_AFTER",
        min=60,
        help="Mark a run Crashed when no heartbeat came for this many seconds (default: "
        "the automations file's, 300). At least two of the workers' heartbeat intervals "
        "(PREFECT_FLOWS_HEARTBEAT_FREQUENCY, 30 s or more), or healthy runs are marked too.",
        show_default=False,
    ),
]


def _apply_alerts(
    automations: Path,
    notify_url: str | None,
    notify_block: str | None,
    zombie_after: int | None,
) -> list[tuple[str, Any]]:
    from flows.cli import server_setup

    block_id = server_setup.notification_block_id(notify_url, notify_block)
    if block_id is None:
        typer.secho(
            "no --notify-url or --notify-block: the failure notification is not created",
            fg=typer.colors.YELLOW,
            err=True,
        )
    definitions = server_setup.load_automations(automations, block_id, zombie_after)
    with server_setup.client() as client:
        server_setup.resolve_deployments(client, definitions)
        return server_setup.apply_automations(client, definitions)


def deploy(
    prefect_file: PrefectFile = DEFAULT_PREFECT_FILE,
    pool: Annotated[str, typer.Option(help="Process work pool to create if missing.")] = (
        "seqcast"
    ),
    training_limit: Annotated[
        int, typer.Option(help="Training task runs allowed at once on the server.", min=1)
    ] = 1,
    automations: AutomationsFile = Path("deploy/automations.yaml"),
    notify_url: NotifyUrl = None,
    notify_block: NotifyBlock = None,
    zombie_after: ZombieAfter = None,
) -> None:
    """Set up a Prefect server for seqcast: work pool, training limit, deployments, alerts.

    Run it from the repository root with PREFECT_API_URL pointing at the server; it is
    safe to run again. Then start a worker: `prefect worker start --pool seqcast`.
    """
    ensure_prefect_home()
    from flows.cli import server_setup

    def setup() -> list[tuple[str, Any]]:
        with server_setup.client() as client:
            if server_setup.ensure_work_pool(client, pool):
                typer.echo(f"created process work pool {pool!r}")
            server_setup.ensure_training_limit(client, training_limit)
            typer.echo(f"task concurrency limit seqcast-train = {training_limit}")
        server_setup.deploy_all(prefect_file)
        return _apply_alerts(automations, notify_url, notify_block, zombie_after)

    for name, automation_id in run_or_exit(setup):
        typer.echo(f"automation {name}: {automation_id}")
    typer.echo(f"\nnow start a worker: prefect worker start --pool {pool}")


def alerts(
    automations: AutomationsFile = Path("deploy/automations.yaml"),
    notify_url: NotifyUrl = None,
    notify_block: NotifyBlock = None,
    zombie_after: ZombieAfter = None,
) -> None:
    """Create (or replace) the alerting automations on the Prefect server.

    Run it after `seqcast deploy` (the zombie-run automation names the deployments by id),
    and again after deleting and re-creating a deployment.
    """
    ensure_prefect_home()
    for name, automation_id in run_or_exit(
        lambda: _apply_alerts(automations, notify_url, notify_block, zombie_after)
    ):
        typer.echo(f"automation {name}: {automation_id}")


def serve(
    config: ConfigOption,
    set_: SetOption = None,
    prefect_file: PrefectFile = DEFAULT_PREFECT_FILE,
    training_limit: Annotated[
        int | None,
        typer.Option(
            help="Training task runs allowed at once on the server (default: keep the "
            "server's, else 1).",
            min=1,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve nightly-retrain-serve and batch-predict-serve from this process, on their
    schedules.

    One machine, no work pool: the deployments of deploy/prefect.yaml under their own names
    (suffix -serve, so `seqcast deploy`'s worker deployments are left alone) with this
    config as their parameters, and the seqcast-train limit. Runs until stopped (Ctrl-C
    pauses the served schedules); needs PREFECT_API_URL to point at a server (the UI there
    shows the runs and can trigger them).
    """
    cfg = config_or_exit(config, set_)
    ensure_prefect_home()
    from prefect import serve as prefect_serve

    from flows.cli import server_setup, serving

    def prepare() -> serving.ServePlan:
        with server_setup.client() as client:
            return serving.prepare(client, prefect_file, cfg, training_limit)

    plan = run_or_exit(prepare)
    typer.echo(f"task concurrency limit seqcast-train = {plan.training_limit}")
    for name in plan.also_scheduled:
        typer.secho(
            f"{name} (a work pool's, from `seqcast deploy`) is scheduled on this server too: "
            "both run every night. Pause one of them (the deployment's toggle in the UI).",
            fg=typer.colors.YELLOW,
            err=True,
        )
    run_or_exit(lambda: prefect_serve(*plan.deployments))


def backfill(
    start: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First logical date.")
    ],
    end: Annotated[
        datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last logical date (included).")
    ],
    deployment: Annotated[
        str, typer.Option(help="FLOW/DEPLOYMENT to run once per date.")
    ] = "training/nightly-retrain",
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Config for the runs (default: the deployment's)."),
    ] = None,
    set_: SetOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace what was already published for a date.")
    ] = False,
) -> None:
    """Create one run per date from --from to --to, each with that date as its logical date.

    A date a scheduled or backfill run already published is skipped by its run (state
    Skipped) unless --force; `seqcast train`/`predict` runs of that date do not count. A date
    whose earlier backfill run has not finished keeps that run (no second one beside it,
    --force or not). The runs wait for a worker like any other; under `seqcast serve`, pass
    --deployment training/nightly-retrain-serve (or batch-predict/batch-predict-serve).
    """
    ensure_prefect_home()
    from flows.cli import scheduling, server_setup

    cfg = config_or_exit(config, set_) if config is not None else None
    days = run_or_exit(lambda: scheduling.logical_dates(start.date(), end.date()))
    run_or_exit(server_setup.api_url)
    for run in run_or_exit(lambda: scheduling.backfill(deployment, days, cfg, force)):
        if run.requested_before:
            typer.echo(
                f"{run.day}: flow run {run.flow_run_id} (requested before, {run.state}: "
                "not started again)"
            )
        else:
            typer.echo(f"{run.day}: flow run {run.flow_run_id}")
