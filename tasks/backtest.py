"""Step 5b, backtest: rolling-origin folds as mapped tasks, then their spread in the UI."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from seqcast.config import ModelSpec, PipelineConfig, series_column
from seqcast.io import storage
from seqcast.modeling import backtest, evaluation
from seqcast.records import BacktestFoldRef, BacktestRef, TrainedRef, ValidatedRef, WindowsRef
from seqcast.windows import store as window_store
from seqcast.windows.grid import layout_step
from tasks.common import STEP_OPTIONS


@task(name="backtest-plan", **STEP_OPTIONS)
def plan_backtest(
    config: PipelineConfig, validated: ValidatedRef, windows: WindowsRef
) -> list[backtest.Fold]:
    """The latest ``evaluate.backtest_folds`` whole periods of the validated data, each
    with the fingerprint of the rows it reads (its cache key)."""
    layout = window_store.read_layout(windows.uri)
    last = backtest.last_stamp_ns(validated.uri, config.source.timestamp)
    planned = backtest.plan_folds(
        last,
        layout_step(layout),
        config.evaluate.backtest_folds,
        backtest.fold_steps(config),
    )
    # Every fold's rows fingerprint in one pass here, not one pass per fold task.
    folds = backtest.fingerprint_folds(validated.uri, config.source.timestamp, planned)
    get_run_logger().info(
        "Backtest: %d fold(s) of %d steps, %s to %s",
        len(folds),
        backtest.fold_steps(config),
        folds[0].test_from.isoformat(),
        folds[-1].until.isoformat(),
    )
    return folds


@task(name="backtest-fold", task_run_name="backtest-fold-{fold.number}", **STEP_OPTIONS)
def backtest_fold(
    config: PipelineConfig, validated: ValidatedRef, fold: backtest.Fold, trained: TrainedRef
) -> BacktestFoldRef:
    """Train on the rows before ``fold`` and score its period (read back if already done)."""
    if trained.search is not None:  # the search's best settings, not the configured ones
        searched = ModelSpec.model_validate({**trained.params, "search": config.model.search})
        config = config.model_copy(update={"model": searched})
    result = backtest.run_fold(
        config,
        validated.uri,
        series_column(config.source),
        fold,
        window_relative=trained.window_relative,
    )
    primary = evaluation.PRIMARY_METRIC[config.task]
    scores = result["scores"]
    get_run_logger().info(
        "Fold %d (%s to %s)%s: model %s %.4f",
        fold.number,
        result["test_from"],
        result["until"],
        " read from the cache" if result["cached"] else "",
        primary,
        scores["model"][primary],
    )
    return BacktestFoldRef(
        fold=fold.number,
        test_from=result["test_from"],
        until=result["until"],
        result_uri=result["result_uri"],
        model=scores["model"][primary],
        baselines={k: v[primary] for k, v in scores.items() if k != "model"},
        cached=result["cached"],
    )


@task(name="backtest-summary", **STEP_OPTIONS)
def summarise_backtest(
    config: PipelineConfig, folds: list[BacktestFoldRef], trained: TrainedRef
) -> BacktestRef:
    """Per-fold metrics and their mean and spread: a table artifact `{name}-backtest`."""
    results = [storage.read_json(f.result_uri) for f in folds]
    summary = backtest.summarise(results)
    primary = evaluation.PRIMARY_METRIC[config.task]
    rows = [
        {"fold": str(r["fold"]), "period": f"{r['test_from']} to {r['until']}"}
        | {name: round(m[primary], 4) for name, m in r["scores"].items()}
        for r in results
    ]
    for statistic in ("mean", "std"):
        rows.append(
            {"fold": statistic, "period": f"over {len(results)} folds"}
            | {name: round(m[primary][statistic], 4) for name, m in summary.items()}
        )
    create_table_artifact(
        key=f"{config.name}-backtest",
        table=rows,
        description=f"Rolling-origin backtest of `{config.name}`: test {primary} per fold "
        "(each model trained only on data before its period) and the spread",
    )
    run_dir = trained.model_uri.rpartition("/")[0]
    summary_uri = storage.join(run_dir, "backtest.json")
    storage.write_json(summary_uri, {"primary_metric": primary, "folds": rows, "summary": summary})
    model = summary["model"][primary]
    get_run_logger().info(
        "Backtest %s over %d folds: model %.4f +- %.4f | %s",
        primary,
        len(results),
        model["mean"],
        model["std"],
        " | ".join(f"{k} {v[primary]['mean']:.4f}" for k, v in summary.items() if k != "model"),
    )
    return BacktestRef(
        primary_metric=primary,
        folds=folds,
        model_mean=model["mean"],
        model_std=model["std"],
        summary_uri=summary_uri,
    )
