"""The `seqcast` command line: run the flows from a YAML config, inspect the registry.

Prefect defaults are set here before Prefect is imported (a user's own settings win):
runs go to the ephemeral API with its database under ``.seqcast/prefect`` so they can be
browsed later with ``prefect server start``, and telemetry and TensorFlow's start-up
chatter are off.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

PREFECT_DEFAULTS = {
    "PREFECT_HOME": str(Path(".seqcast/prefect").resolve()),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "seqcast",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TQDM_DISABLE": "1",
}
for _key, _value in PREFECT_DEFAULTS.items():
    os.environ.setdefault(_key, _value)
Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)

from seqcast.config import PipelineConfig, load_config  # noqa: E402
from seqcast.errors import SeqcastError  # noqa: E402

app = typer.Typer(
    help="Train and serve LSTM/GRU sequence models over time-series tables with Prefect.\n\n"
    "Quick start: `seqcast sample`, then `seqcast train --config configs/sample-load.yaml`, "
    "then `seqcast predict --config configs/sample-load.yaml`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Inspect the model registry.", no_args_is_help=True)
app.add_typer(models_app, name="models")
contract_app = typer.Typer(help="Draft data contracts (schemas/).", no_args_is_help=True)
app.add_typer(contract_app, name="contract")

_state = {"debug": False}

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Pipeline config (YAML).", show_default=False)
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a config key, e.g. --set model.cell=gru --set model.epochs=5 "
        "(repeatable; values are YAML).",
    ),
]


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


class _BriefKnownErrors(logging.Formatter):
    """Console formatter that drops the traceback of a `SeqcastError`: its message says it all.

    The traceback still reaches the Prefect API's run log; ``--debug`` keeps it here too.
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and isinstance(record.exc_info[1], SeqcastError):
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return self.inner.format(record)


def _quiet_known_tracebacks() -> None:
    """Wrap the formatter of Prefect's console handlers (Prefect must be imported first)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [
        logging.getLogger(),
        *(logging.getLogger(n) for n in logging.root.manager.loggerDict),
    ]
    for handler in {h for lg in loggers for h in getattr(lg, "handlers", [])}:
        if (
            isinstance(handler, PrefectConsoleHandler)
            and handler.formatter is not None
            and not isinstance(handler.formatter, _BriefKnownErrors)
        ):
            handler.setFormatter(_BriefKnownErrors(handler.formatter))


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _run(action: Any) -> Any:
    """Run ``action``, turning any failure into a short message and exit code 1."""
    if not _state["debug"] and "prefect" in sys.modules:
        _quiet_known_tracebacks()
    try:
        return action()
    except SeqcastError as exc:
        if _state["debug"]:
            raise
        _fail(str(exc))
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: report, don't dump
        if _state["debug"]:
            raise
        _fail(f"{type(exc).__name__}: {exc}\n(run with --debug for the traceback)")


def _config(path: Path, overrides: list[str] | None) -> PipelineConfig:
    return _run(lambda: load_config(path, overrides or []))


def format_metrics(scores: dict[str, dict[str, float]], primary: str) -> str:
    """A fixed-width table: one row per predictor, one column per metric."""
    order = sorted(scores, key=lambda n: (n != "model", n != "champion", n))
    metrics = list(scores["model"])
    width = max(len(name) for name in scores) + 2
    lines = ["predictor".ljust(width) + "".join(m.rjust(12) for m in metrics)]
    for name in order:
        values = scores[name]
        lines.append(name.ljust(width) + "".join(f"{values[m]:12.4f}" for m in metrics))
    lines.append(f"(test windows; primary metric: {primary})")
    return "\n".join(lines)


@app.command()
def train(config: ConfigOption, set_: SetOption = None) -> None:
    """Run the training flow: ingest, validate, window, train, evaluate, register.

    The new model becomes champion only if it beats the naive baselines and the current
    champion on the same test windows. An ad-hoc run: it always trains, even if a scheduled
    run already published a model today.
    """
    cfg = _config(config, set_)
    from flows.training import nightly_training
    from seqcast import storage

    outcome = _run(lambda: nightly_training(cfg, force=True))
    document = storage.read_json(outcome.evaluation.metrics_uri)
    typer.echo("\n" + format_metrics(document["scores"], document["primary_metric"]))
    version = outcome.version
    verdict = "promoted to champion" if version.promoted else "kept, NOT promoted"
    typer.echo(f"\nmodel version {version.version}: {verdict} ({version.reason})")
    typer.echo(f"model:   {version.uri}")


@app.command()
def predict(config: ConfigOption, set_: SetOption = None) -> None:
    """Run the batch prediction flow with the champion model and write Parquet.

    An ad-hoc run: it replaces any predictions published for today.
    """
    cfg = _config(config, set_)
    from flows.prediction import batch_predict

    result = _run(lambda: batch_predict(cfg, force=True))
    typer.echo(f"\n{result.rows} prediction rows from model {result.model_version}")
    typer.echo(f"predictions: {result.uri}")


@app.command()
def validate(config: ConfigOption, set_: SetOption = None) -> None:
    """Run ingest and validate only and print the contract summary.

    Exit code 0 when the data passes (warnings and quarantined rows included), 1 when it
    fails its contract; the message names the file, column, rule and rows.
    """
    cfg = _config(config, set_)
    from flows.validation import validate_source
    from seqcast import storage

    result = _run(lambda: validate_source(cfg))
    report = storage.read_json(result.report_uri)
    typer.echo("\n" + storage.read_bytes(report["summary_uri"]).decode("utf-8"))
    typer.echo(f"report: {result.report_uri}")


@contract_app.command("init")
def contract_init(
    config: ConfigOption,
    set_: SetOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write it; default: the config's `contract`, else schemas/."),
    ] = None,
    rows: Annotated[int, typer.Option(help="Rows of the source to infer from.")] = 10_000,
    margin: Annotated[float, typer.Option(help="Share of each range added on both sides.")] = 0.1,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Draft a data contract from a sample of the source, for you to review and commit.

    Types are inferred (column roles come from the config), ranges are the observed ones
    widened by --margin, the frequency is the most common step.
    """
    cfg = _config(config, set_)
    from seqcast.contracts import draft_contract, save_contract
    from seqcast.ingest import read_sample

    target = out or Path(cfg.contract or f"schemas/{cfg.name}.yaml")
    if target.exists() and not force:
        _fail(f"{target} exists; review it, or pass --force to overwrite it")

    def draft() -> tuple[Path, int, int]:
        raw, files = read_sample(cfg.source, rows)
        header = (
            f"Drafted by `seqcast contract init` from {len(raw)} rows of {len(files)} file(s) "
            f"matching {cfg.source.path}.\nReview every rule (types, ranges, frequency, "
            "severity), then commit it."
        )
        return save_contract(draft_contract(raw, cfg, margin), target, header), len(raw), len(files)

    path, n_rows, n_files = _run(draft)
    typer.echo(f"contract drafted from {n_rows} rows of {n_files} file(s): {path}")
    if cfg.contract != str(target):
        typer.echo(f"name it in the config to use it:  contract: {target}")


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="Directory for the sample CSV files.")] = Path(
        "data/sample"
    ),
) -> None:
    """Write the bundled sample data sets (deterministic): load/ and activity/."""
    from seqcast.sample_data import write_samples

    written = _run(lambda: write_samples(out))
    for name, paths in written.items():
        typer.echo(f"{name}: {len(paths)} file(s) in {out / name}")


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


def _apply_alerts(
    automations: Path, notify_url: str | None, notify_block: str | None
) -> list[tuple[str, Any]]:
    from flows import server_setup

    block_id = server_setup.notification_block_id(notify_url, notify_block)
    if block_id is None:
        typer.secho(
            "no --notify-url or --notify-block: the failure notification is not created",
            fg=typer.colors.YELLOW,
            err=True,
        )
    definitions = server_setup.load_automations(automations, block_id)
    with server_setup.client() as client:
        return server_setup.apply_automations(client, definitions)


@app.command()
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
) -> None:
    """Set up a Prefect server for seqcast: work pool, training limit, deployments, alerts.

    Run it from the repository root with PREFECT_API_URL pointing at the server; it is
    safe to run again. Then start a worker: `prefect worker start --pool seqcast`.
    """
    from flows import server_setup

    def setup() -> list[tuple[str, Any]]:
        with server_setup.client() as client:
            if server_setup.ensure_work_pool(client, pool):
                typer.echo(f"created process work pool {pool!r}")
            server_setup.ensure_training_limit(client, training_limit)
            typer.echo(f"task concurrency limit seqcast-train = {training_limit}")
        server_setup.deploy_all(prefect_file)
        return _apply_alerts(automations, notify_url, notify_block)

    for name, automation_id in _run(setup):
        typer.echo(f"automation {name}: {automation_id}")
    typer.echo(f"\nnow start a worker: prefect worker start --pool {pool}")


@app.command()
def alerts(
    automations: AutomationsFile = Path("deploy/automations.yaml"),
    notify_url: NotifyUrl = None,
    notify_block: NotifyBlock = None,
) -> None:
    """Create (or replace) the alerting automations on the Prefect server."""
    for name, automation_id in _run(lambda: _apply_alerts(automations, notify_url, notify_block)):
        typer.echo(f"automation {name}: {automation_id}")


@app.command()
def serve(
    config: ConfigOption, set_: SetOption = None, prefect_file: PrefectFile = DEFAULT_PREFECT_FILE
) -> None:
    """Serve nightly-retrain and batch-predict from this process, on their schedules.

    One machine, no work pool: the deployments of deploy/prefect.yaml with this config as
    their parameters. Runs until stopped (Ctrl-C); needs PREFECT_API_URL to point at a
    server (the UI there shows the runs and can trigger them).
    """
    cfg = _config(config, set_)
    from prefect import serve as prefect_serve

    from flows import scheduling, server_setup

    _run(server_setup.api_url)
    deployments = _run(lambda: scheduling.runner_deployments(prefect_file, cfg))
    _run(lambda: prefect_serve(*deployments))


@app.command()
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

    A date whose outputs were already published is skipped by its run unless --force.
    The runs wait for a worker (or `seqcast serve`) like any other.
    """
    from flows import scheduling, server_setup

    cfg = _config(config, set_) if config is not None else None
    days = _run(lambda: scheduling.logical_dates(start.date(), end.date()))
    _run(server_setup.api_url)
    for day, flow_run_id in _run(lambda: scheduling.backfill(deployment, days, cfg, force)):
        typer.echo(f"{day}: flow run {flow_run_id}")


@models_app.command("list")
def models_list(
    config: ConfigOption,
    set_: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List model versions with their test metrics; the champion is marked."""
    cfg = _config(config, set_)
    from seqcast.registry import list_versions

    rows = _run(lambda: list_versions(cfg.pipeline_root))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no model versions under {cfg.pipeline_root}/registry")
        return
    for row in rows:
        scores = row["metrics"]["scores"]
        primary = row["metrics"]["primary_metric"]
        mark = "*" if row["champion"] else " "
        others = ", ".join(f"{k}={v[primary]:.4f}" for k, v in scores.items() if k != "model")
        typer.echo(f"{mark} {row['version']}  {primary}={scores['model'][primary]:.4f}  ({others})")


@models_app.command("show")
def models_show(
    version: Annotated[str, typer.Argument(help="Version id (see `seqcast models list`).")],
    config: ConfigOption,
    set_: SetOption = None,
) -> None:
    """Print a version's manifest and metrics as JSON."""
    cfg = _config(config, set_)
    from seqcast import registry, storage

    def show() -> dict[str, Any]:
        manifest = registry.read_manifest(cfg.pipeline_root, version)
        metrics = storage.read_json(
            storage.join(registry.version_uri(cfg.pipeline_root, version), "metrics.json")
        )
        champion = registry.champion_version(cfg.pipeline_root) == version
        return {"champion": champion, "manifest": manifest, "metrics": metrics}

    typer.echo(json.dumps(_run(show), indent=2))


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="Version id to make champion.")],
    config: ConfigOption,
    set_: SetOption = None,
) -> None:
    """Make VERSION the champion by hand (recorded in the audit log)."""
    cfg = _config(config, set_)
    from seqcast import registry

    _run(lambda: registry.verify_version(cfg.pipeline_root, version))
    _run(lambda: registry.set_champion(cfg.pipeline_root, version, {"reason": "manual promote"}))
    typer.echo(f"champion: {version}")


@models_app.command("rollback")
def models_rollback(config: ConfigOption, set_: SetOption = None) -> None:
    """Restore the previous champion (recorded in the audit log)."""
    cfg = _config(config, set_)
    from seqcast import registry

    restored = _run(lambda: registry.rollback(cfg.pipeline_root))
    typer.echo(f"champion: {restored} (restored)")


def main() -> None:
    app(prog_name="seqcast")


if __name__ == "__main__":
    sys.exit(main())
