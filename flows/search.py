"""The train step with `model.search`: a subflow that maps trial tasks on the runner.

Optuna's study lives here, in the flow's process; each batch of ``runner.n_workers``
proposed trials trains as mapped `train-trial` tasks on the same task runner as the
sharded steps (threads or Dask workers), and their results are told to the study before
the next batch is proposed, until the trial or minute budget is spent.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.runners import all_results, run_sharded
from seqcast.config import PipelineConfig
from seqcast.modeling.sequence_sizing import size_for
from seqcast.records import TrainedRef, WindowsRef
from tasks.common import current_run_id, sync_result
from tasks.search import finish_search, train_trial
from tasks.train import log_plan, train


@flow(name="search", flow_run_name="search-{config.name}")
def search_models(config: PipelineConfig, windows: WindowsRef, flow_run_id: str) -> TrainedRef:
    """Search model settings within the budget; the best on validation loss is the model."""
    from seqcast.modeling.search import ModelSearch  # Keras and Optuna: only when searching

    logger = get_run_logger()
    budget = config.model.search
    plan = size_for(config.model, windows.rows_by_split["train"], per=config.window.per)
    log_plan(plan)
    search = ModelSearch(config, plan)
    logger.info(
        "Model search: up to %d trial(s) or %g min, %d at a time, on %d train / %d "
        "validation windows (test windows untouched)",
        budget.trials,
        budget.minutes,
        config.runner.n_workers,
        windows.rows_by_split["train"],
        windows.rows_by_split["val"],
    )
    progress = sync_result(
        create_progress_artifact(progress=0.0, description="Search trials done (percent)")
    )
    while proposed := search.propose(config.runner.n_workers):
        records = all_results(
            train_trial.map(unmapped(config), unmapped(windows), proposed, unmapped(flow_run_id))
        )
        search.record(records)
        update_progress_artifact(progress, progress=100.0 * len(search.records) / budget.trials)
    stopped = [
        f"trial {r.number} "
        + (
            "dropped: no finished epoch"
            if r.best_val_loss is None
            else f"kept {r.epochs_run} epoch(s)"
        )
        for r in search.records
        if r.stopped
    ]
    if search.trials_left > 0 or stopped:
        logger.warning(
            "Model search stopped after %d of %d trial(s): model.search.minutes=%s reached%s",
            len(search.records),
            budget.trials,
            budget.minutes,
            f" (stopped while training: {'; '.join(stopped)})" if stopped else "",
        )
    return finish_search(
        config, search.records, search.ranked(), flow_run_id, plan.as_dict(), search.minutes_used
    )


def train_or_search(config: PipelineConfig, windows: WindowsRef) -> TrainedRef:
    """The train step: the model search (`model.search.enabled`) or the configured model."""
    if not config.model.search.enabled:
        return train(config, windows)
    return run_sharded(search_models, config, windows, current_run_id())
