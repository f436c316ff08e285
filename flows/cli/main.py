"""The `seqcast` command line: run the flows from a YAML config, inspect the registry.

`flows/cli/support.py` sets Prefect's defaults before Prefect is imported; the `models`
sub-commands live in `models.py`, `server start|stop|status` in `server.py`, the commands
that set up and use a server (deploy, alerts, serve, backfill) in `operate.py`, `gc`
in `retention.py`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# Each cli module imports support first, which sets Prefect's defaults before any
# module imports Prefect.
from flows.cli import operate, retention
from flows.cli.models import models_app
from flows.cli.server import server_app
from flows.cli.support import (
    ConfigOption,
    JsonOption,
    SetOption,
    config_or_exit,
    echo_json,
    ensure_prefect_home,
    exit_now,
    fail,
    run_flow_or_exit,
    run_or_exit,
    start_prefect_api,
    start_side_process,
    state,
)

if TYPE_CHECKING:  # the records import pydantic only; at run time they come with the flows
    from seqcast.records import ModelVersionRef, TrainingOutcome, ValidatedRef

VALIDATION_IMPORTS = ("great_expectations",)
"""What the validate task imports (seconds): imported while a temporary server boots, or
in the side process (`start_side_process`)."""
TRAINING_IMPORTS = (
    *VALIDATION_IMPORTS,
    "keras",
    "statsmodels.tsa.exponential_smoothing.ets",
    "statsmodels.tsa.ar_model",
)

app = typer.Typer(
    help="Train and serve LSTM/GRU sequence models over time-series tables with Prefect.\n\n"
    "Quick start: `seqcast sample`, then `seqcast train --config configs/sample-load.yaml`, "
    "then `seqcast predict --config configs/sample-load.yaml`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models_app, name="models")
app.add_typer(server_app, name="server")
contract_app = typer.Typer(help="Draft data contracts (schemas/).", no_args_is_help=True)
app.add_typer(contract_app, name="contract")


@app.callback()
def _global(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    state["debug"] = debug


def metric_cell(value: float, width: int = 12) -> str:
    """One table cell of exactly ``width`` characters, so the columns stay aligned:
    ``n/a`` for an undefined metric (NaN: MASE of a constant series), 4 decimals when they
    fit, else 4 significant digits (a huge error must not push the row's columns right)."""
    if not math.isfinite(value):
        return "n/a".rjust(width)
    fixed = f"{value:.4f}"
    return (fixed if len(fixed) < width else f"{value:.4g}").rjust(width)


def format_metrics(
    scores: dict[str, dict[str, float]], primary: str, winner: str | None = None
) -> str:
    """A fixed-width table: one row per predictor, one column per metric; the night's
    winning kind (``winner``: network, ets, ar, seasonal_naive, last_value, nearest_neighbour)
    is marked."""
    order = sorted(scores, key=lambda n: (n != "model", n != "champion", n))
    metrics = list(scores["model"])
    width = max(len(name) for name in scores) + 2
    cell = max(12, *(len(m) + 2 for m in metrics))  # balanced_accuracy is 17 characters
    lines = ["predictor".ljust(width) + "".join(m.rjust(cell) for m in metrics)]
    for name in order:
        values = scores[name]
        won = winner is not None and (
            (name == "model" and winner == "network")
            or (name != "champion" and name.startswith(winner))
        )
        mark = "  <- winner" if won else ""
        # A champion scored without intervals has no coverage or wql: n/a.
        cells = "".join(metric_cell(values.get(m, math.nan), cell) for m in metrics)
        lines.append(name.ljust(width) + cells + mark)
    lines.append(f"(test windows; primary metric: {primary})")
    return "\n".join(lines)


@app.command()
def train(config: ConfigOption, set_: SetOption = None, as_json: JsonOption = False) -> None:
    """Run the training flow: ingest, validate, window, fit-challengers, train, evaluate,
    register.

    The night's winner (the network if it beats every baseline, else the best of ETS,
    AR, seasonal naive and last value; a whole-sequence classifier: the network or its 1-NN
    challenger) becomes champion if it beats the current champion on the
    same test windows, or if there is none. An ad-hoc run: it always trains, even if a scheduled
    run already published a model today, and it does not take today's scheduled slot (that
    night's scheduled run still trains).
    """
    cfg = config_or_exit(config, set_)
    ensure_prefect_home()
    start_prefect_api()  # boots while the flow is imported
    imports = start_side_process(cfg, TRAINING_IMPORTS)  # GX, statsmodels: there
    from flows.training import nightly_training
    from seqcast.io import storage

    outcome = run_flow_or_exit(lambda: nightly_training(cfg, force=True), imports)
    document = storage.read_json(outcome.evaluation.metrics_uri)
    version = outcome.version
    if as_json:
        echo_json(training_result(cfg.name, outcome, document))
        return
    table = format_metrics(document["scores"], document["primary_metric"], version.winner)
    typer.echo("\n" + table)
    verdict = "promoted to champion" if version.promoted else "kept, NOT promoted"
    typer.echo(f"\nnetwork version {version.version}: {verdict} ({version.reason})")
    typer.echo(f"model:   {version.uri}")
    if version.statistical is not None:
        other = version.statistical
        verdict = "promoted to champion" if other.promoted else "kept, NOT promoted"
        typer.echo(f"{other.kind} version {other.version}: {verdict}")
    if version.winner is not None:
        typer.echo(f"tonight's winner: {version.winner}")
    typer.echo(f"champion: {version.champion or 'none'}")


def training_result(
    pipeline: str, outcome: TrainingOutcome, document: dict[str, Any]
) -> dict[str, Any]:
    """What `seqcast train --json` prints: each registered version (the network's, and the
    statistical winner's when one won), whether it was promoted and why, the night's winner,
    the champion after the run, the test metrics of every predictor and where the outputs
    are."""

    def registered(ref: ModelVersionRef) -> dict[str, Any]:
        return {
            "version": ref.version,
            "kind": ref.kind,
            "promoted": ref.promoted,
            "reason": ref.reason,
            "uri": ref.uri,
        }

    version, evaluation = outcome.version, outcome.evaluation
    versions = [registered(version)]
    if version.statistical is not None:
        versions.append(registered(version.statistical))
    return {
        "pipeline": pipeline,
        "versions": versions,
        "winner": version.winner,
        "champion": version.champion,
        "primary_metric": document["primary_metric"],
        "metrics": document["scores"],
        "metrics_uri": evaluation.metrics_uri,
        "test_forecasts_uri": evaluation.forecasts_uri,
        "backtest_uri": outcome.backtest.summary_uri if outcome.backtest is not None else None,
    }


@app.command()
def predict(config: ConfigOption, set_: SetOption = None, as_json: JsonOption = False) -> None:
    """Run the batch prediction flow with the champion model; write Parquet and its artifact.

    An ad-hoc run: it replaces any predictions published for today, and does not take
    today's scheduled slot (that night's scheduled run still predicts).
    """
    cfg = config_or_exit(config, set_)
    ensure_prefect_home()
    from seqcast.serving import registry

    # Before a Prefect server starts or the source is read: no champion, nothing to do.
    run_or_exit(lambda: registry.required_champion_version(cfg.pipeline_root))
    start_prefect_api()  # boots while the flow is imported
    imports = start_side_process(cfg, VALIDATION_IMPORTS)
    from flows.prediction import batch_predict

    result = run_flow_or_exit(lambda: batch_predict(cfg, force=True), imports)
    if as_json:
        echo_json(
            {
                "pipeline": cfg.name,
                "model_version": result.model_version,
                "rows": result.rows,
                "predictions_uri": result.uri,
            }
        )
        return
    typer.echo(f"\n{result.rows} prediction rows from model {result.model_version}")
    typer.echo(f"predictions: {result.uri}")


@app.command()
def validate(config: ConfigOption, set_: SetOption = None, as_json: JsonOption = False) -> None:
    """Run ingest and validate only and print the contract summary.

    Exit code 0 when the data passes (warnings and quarantined rows included), 1 when it
    fails its contract; the message names the file, column, rule and rows. With --json a
    failed contract prints ``{"outcome": "fail", "error": ...}`` as well.
    """
    cfg = config_or_exit(config, set_)
    ensure_prefect_home()
    start_prefect_api()  # boots while the flow is imported
    imports = start_side_process(cfg, VALIDATION_IMPORTS)
    from flows.validation import validate_source
    from seqcast.errors import DataContractError
    from seqcast.io import storage

    def checked() -> ValidatedRef:
        try:
            return validate_source(cfg)
        except DataContractError as exc:
            if as_json:
                echo_json({"pipeline": cfg.name, "outcome": "fail", "error": str(exc)})
            raise

    result = run_flow_or_exit(checked, imports)
    report = storage.read_json(result.report_uri)
    if as_json:
        echo_json(
            {
                "pipeline": cfg.name,
                "outcome": result.outcome,
                "contract": report.get("contract"),
                "rows": result.rows,
                "series": result.series,
                "quarantined": result.quarantined,
                "warnings": result.warnings,
                "validated_uri": result.uri,
                "report_uri": result.report_uri,
                "quarantine_uri": report.get("quarantine_uri"),
                "rules": report.get("results", []),
            }
        )
        return
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
    cfg = config_or_exit(config, set_)
    from seqcast.data.contracts import draft_contract, save_contract
    from seqcast.data.ingest import read_sample

    target = out or Path(cfg.contract or f"schemas/{cfg.name}.yaml")
    if target.exists() and not force:
        fail(f"{target} exists; review it, or pass --force to overwrite it")

    def draft() -> tuple[Path, int, int]:
        raw, files = read_sample(cfg.source, rows)
        header = (
            f"Drafted by `seqcast contract init` from {len(raw)} rows of {len(files)} file(s) "
            f"matching {cfg.source.path}.\nReview every rule (types, ranges, frequency, "
            "severity), then commit it."
        )
        return save_contract(draft_contract(raw, cfg, margin), target, header), len(raw), len(files)

    path, n_rows, n_files = run_or_exit(draft)
    typer.echo(f"contract drafted from {n_rows} rows of {n_files} file(s): {path}")
    written = os.path.abspath(target)
    if cfg.contract != written:  # the config's contract is absolute once loaded
        # The config reads a relative path from its own folder: say it that way.
        relative = os.path.relpath(written, os.path.dirname(os.path.abspath(config)))
        typer.echo(f"name it in the config to use it:  contract: {relative}")


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="Directory for the sample CSV files.")] = Path(
        "data/sample"
    ),
) -> None:
    """Write the bundled sample data sets (deterministic): load/, activity/ and sequences/."""
    from seqcast.data.sample import write_samples

    written = run_or_exit(lambda: write_samples(out))
    for name, paths in written.items():
        typer.echo(f"{name}: {len(paths)} file(s) in {out / name}")


for command in (operate.deploy, operate.alerts, operate.serve, operate.backfill):
    app.command()(command)
app.command()(retention.gc)


def main() -> None:
    try:
        app(prog_name="seqcast")
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)


if __name__ == "__main__":
    main()  # typer exits with the command's status itself
