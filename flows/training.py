"""The nightly training flow: ingest -> validate -> window -> fit-challengers (ETS, AR) -> train
-> evaluate -> register, then (with `evaluate.backtest_folds`) the rolling-origin backtest
folds, and last the retention step (GC of what `retention:` does not keep)."""

from __future__ import annotations

from prefect import flow

from flows.names import run_name
from flows.runners import run_sharded
from flows.search import train_or_search
from flows.sharded import (
    backtest_folds,
    fit_challengers_on_runner,
    ingest_source,
    validate_shards,
    window_shards,
)
from flows.tls import share_tls_contexts
from seqcast.config import PipelineConfig
from seqcast.io import publications
from seqcast.records import TrainingOutcome
from tasks.common import already_published, current_run_id, logical_date, run_trigger, skipped
from tasks.evaluate import evaluate
from tasks.register import register
from tasks.retention import collect_garbage

share_tls_contexts()  # Prefect's API clients: one TLS context each kind (flows.tls)


@flow(name="training", flow_run_name=run_name("train"), validate_parameters=True)
def nightly_training(config: PipelineConfig, force: bool = False) -> TrainingOutcome:
    """Train an LSTM/GRU and fit ETS and AR; promote whichever beats the champion (always one).

    Once per logical date: once a scheduled (or backfill) run published the date, another
    run for it ends ``Skipped`` and returns the published outcome, unless ``force``. A
    manual run's publication does not count (`seqcast.io.publications`).
    """
    day = logical_date()
    trigger = run_trigger()
    if (done := already_published(config, "training", day, force)) is not None:
        return skipped(TrainingOutcome.model_validate(done.record["outcome"]), done.reason)
    snapshot = ingest_source(config)
    validated = run_sharded(validate_shards, config, snapshot, False, current_run_id())
    windows = run_sharded(window_shards, config, validated)
    challengers = fit_challengers_on_runner(config, windows, current_run_id())
    trained = train_or_search(config, windows)
    evaluation = evaluate(config, windows, trained, challengers)
    version = register(config, windows, trained, evaluation, validated, challengers)
    backtested = None
    if config.evaluate.backtest_folds:
        backtested = run_sharded(backtest_folds, config, validated, windows, trained)
    outcome = TrainingOutcome(evaluation=evaluation, version=version, backtest=backtested)
    published = {"outcome": outcome.model_dump()}
    publications.record(config.pipeline_root, "training", day, published, current_run_id(), trigger)
    collect_garbage(config)  # after the marker: a failed GC leaves the day published
    return outcome
