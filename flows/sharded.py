"""Subflows that map one task over shards of series (or source files, backtest folds,
window-store blocks for the ETS challengers);
`flows.runners.on_runner` picks where their tasks run (threads or Dask) from the config.
`ingest_source` picks between the ingest subflow and the one serial ingest task."""

from __future__ import annotations

from datetime import date

from prefect import flow, unmapped

from flows.runners import all_results, run_sharded
from seqcast.config import PipelineConfig
from seqcast.records import (
    BacktestRef,
    ChallengersRef,
    PredictionsRef,
    SnapshotRef,
    TrainedRef,
    ValidatedRef,
    WindowsRef,
)
from tasks.backtest import backtest_fold, plan_backtest, summarise_backtest
from tasks.challengers import (
    fit_challenger_group,
    fit_challengers,
    merge_challengers,
    plan_challengers,
)
from tasks.ingest import (
    abandon_ingest,
    combine_ingest,
    count_source_files,
    ingest,
    ingest_file,
    plan_ingest,
)
from tasks.predict import combine_predictions, plan_prediction, predict_shard
from tasks.validate import abandon_validation, check_shard, plan_validation, publish_validation
from tasks.window import (
    abandon_windows,
    fit_windows,
    plan_windows,
    publish_windows,
    start_windows,
    windows_ref,
    write_windows,
)


def ingest_source(config: PipelineConfig, predicting: bool = False) -> SnapshotRef:
    """The raw snapshot of the source (``predicting``: the prediction's files).

    On a Dask runner, a source of many files is read by one task per file (`ingest_files`);
    otherwise (the thread runner, or one file) by the one `ingest` task, file after file.
    Threads share one machine's cores, where the mapped path measured slower than the
    serial one (parts written and read back, a task run per file); a Dask runner is chosen
    to spread tasks over more workers, where reading the files in parallel can pay
    (`benchmarks/README.md`, "Many files"). Both write the same snapshot bytes.
    """
    if config.runner.kind == "dask" and count_source_files(config, predicting) > 1:
        return run_sharded(ingest_files, config, predicting)
    return ingest(config, predicting)


@flow(name="ingest", flow_run_name="ingest-{config.name}")
def ingest_files(config: PipelineConfig, predicting: bool = False) -> SnapshotRef:
    """Reuse the snapshot of unchanged files, or stream each file into a part (one task per
    file) and combine the parts into the snapshot; ``predicting``: the prediction's files."""
    plan = plan_ingest(config, predicting)
    if plan.reused is not None:
        return plan.reused
    try:
        files = list(range(len(plan.files)))
        parts = all_results(ingest_file.map(unmapped(config), unmapped(plan), files))
        return combine_ingest(config, plan, parts)
    except BaseException:
        abandon_ingest(plan)
        raise


@flow(name="validate", flow_run_name="validate-{config.name}")
def validate_shards(
    config: PipelineConfig,
    snapshot: SnapshotRef,
    predicting: bool = False,
    flow_run_id: str | None = None,
) -> ValidatedRef:
    """Check each shard of whole series against the contract; merge into one report and
    publish the validated table once (``predicting``: the champion's prediction contract,
    on the rows prediction reads)."""
    plan = plan_validation(config, snapshot, predicting)
    try:
        common = (unmapped(config), unmapped(snapshot), unmapped(plan))
        summaries = all_results(check_shard.map(*common, plan.shards))
        return publish_validation(config, snapshot, plan, summaries, predicting, flow_run_id)
    except BaseException:
        abandon_validation(plan)
        raise


@flow(name="window", flow_run_name="window-{config.name}")
def window_shards(config: PipelineConfig, validated: ValidatedRef) -> WindowsRef:
    """Reuse or build the windows: fit then write each shard of series, publish once."""
    build = start_windows(config, validated)
    if build.reused:
        return windows_ref(build)
    try:
        common = (unmapped(config), unmapped(validated), unmapped(build))
        # all_results raises a failed shard's error here; passing the futures on would let
        # the next task skip as NotReady and the subflow end Completed with no result.
        fits = all_results(fit_windows.map(*common, build.shards))
        plan = plan_windows(config, build, fits)
        written = all_results(write_windows.map(*common, build.shards, unmapped(plan)))
        return publish_windows(config, validated, build, written)
    except BaseException:
        abandon_windows(config, build)
        raise


def fit_challengers_on_runner(
    config: PipelineConfig, windows: WindowsRef, flow_run_id: str
) -> ChallengersRef:
    """ETS per series: on a Dask runner one task per group of window-store blocks
    (`fit_challenger_groups`), on threads the one `fit_challengers` task. The fits hold the
    GIL: two threads fitted no faster than one (benchmarks/README.md, "ETS challengers on the
    runner"), so on threads mapping would only add task runs; Dask workers are processes."""
    if config.runner.kind == "dask":
        return run_sharded(fit_challenger_groups, config, windows, flow_run_id)
    return fit_challengers(config, windows, flow_run_id)


@flow(name="fit-challengers", flow_run_name="fit-challengers-{config.name}")
def fit_challenger_groups(
    config: PipelineConfig, windows: WindowsRef, flow_run_id: str
) -> ChallengersRef:
    """Fit ETS per series, one task per group of window-store blocks; merge the fits into
    the run's ``challengers.json`` (``flow_run_id``: the training run's, whose folder)."""
    plan = plan_challengers(config, windows, flow_run_id)
    if plan.done is not None:
        return plan.done
    groups = list(range(len(plan.groups)))
    parts = all_results(fit_challenger_group.map(unmapped(windows), unmapped(plan), groups))
    return merge_challengers(config, plan, parts)


@flow(name="predict", flow_run_name="predict-shards-{config.name}")
def predict_shards(
    config: PipelineConfig, validated: ValidatedRef, day: date, flow_run_id: str, trigger: str
) -> PredictionsRef:
    """Predict each shard of series with one champion version; combine into one file and
    publish it as the day's predictions (``flow_run_id``: the prediction run's, recorded;
    ``trigger``: what started it, `seqcast.io.publications`)."""
    plan = plan_prediction(config, validated, flow_run_id)
    common = (unmapped(config), unmapped(validated), unmapped(plan))
    parts = all_results(predict_shard.map(*common, plan.shards, unmapped(flow_run_id)))
    return combine_predictions(config, plan, parts, day, flow_run_id, trigger)


@flow(name="backtest", flow_run_name="backtest-{config.name}")
def backtest_folds(
    config: PipelineConfig, validated: ValidatedRef, windows: WindowsRef, trained: TrainedRef
) -> BacktestRef:
    """Train and score each rolling-origin fold (cached ones are read back); their spread."""
    folds = plan_backtest(config, validated, windows)
    common = (unmapped(config), unmapped(validated))
    results = all_results(backtest_fold.map(*common, folds, unmapped(trained)))
    return summarise_backtest(config, results, trained)
