"""Step 4 with `model.search`: train one trial of the model search, and sum the search up.

The study lives in the search subflow (`flows.search`); these tasks train what it
proposes and turn the ranked trials into the `TrainedRef` evaluate and register take.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from seqcast.config import PipelineConfig
from seqcast.io import storage
from seqcast.records import TrainedRef, TrialRecord, WindowsRef
from tasks.common import STEP_OPTIONS, TRAINING_TAG
from tasks.train import checkpoint_dir, claimed

if TYPE_CHECKING:  # Keras and Optuna are imported by the tasks, not by the flows
    from seqcast.modeling.search import TrialPlan


def _run_dir(config: PipelineConfig, flow_run_id: str) -> str:
    return storage.join(config.pipeline_root, "runs", flow_run_id)


def _backup_dir(config: PipelineConfig, windows: WindowsRef, plan: TrialPlan) -> str:
    """Checkpoints of this trial, keyed like the train step's (`tasks.train.checkpoint_dir`:
    logical date, data, settings), not by the flow run: a retried task, and a killed search
    run again on the same day and data, resume each trial that proposes the same settings
    at its last epoch. The earlier trials' curves and the search's deadline are left out of
    the key: they only decide when the trial stops, and a rerun's differ."""
    trial = plan.model_dump_json(exclude={"earlier_curves", "deadline"})
    settings = f"{trial}{config.evaluate.season_steps}"
    return checkpoint_dir(config, windows, settings, label=f"trial-{plan.number}-")


@task(name="train-trial", task_run_name="{plan.label}", tags=[TRAINING_TAG], **STEP_OPTIONS)
def train_trial(
    config: PipelineConfig, windows: WindowsRef, plan: TrialPlan, flow_run_id: str
) -> TrialRecord:
    """Train one search trial on the train windows, scored on the validation windows."""
    from seqcast.modeling.search import run_trial

    model_uri = storage.join(
        _run_dir(config, flow_run_id), "trials", str(plan.number), "model.keras"
    )
    # The library logs "resuming after epoch N from checkpoint ..." when it resumes.
    with claimed(_backup_dir(config, windows, plan)) as checkpoints:
        record = run_trial(
            plan,
            windows.uri,
            model_uri,
            season=config.evaluate.season_steps,
            backup_dir=checkpoints,
        )
    if record.best_val_loss is None:
        get_run_logger().warning(
            "Trial %d failed: %s%s",
            record.number,
            record.error,
            "; dropped from the ranking" if record.stopped else "",
        )
        return record
    get_run_logger().info(
        "Trial %d: best val_loss %.4f after %d epoch(s) in %.1fs%s%s",
        record.number,
        record.best_val_loss,
        record.epochs_run,
        record.seconds,
        " (pruned)" if record.pruned else "",
        " (stopped by model.search.minutes; ranked on its best finished epoch)"
        if record.stopped
        else "",
    )
    return record


def trials_table(records: list[TrialRecord], chosen: set[int]) -> list[dict[str, Any]]:
    """One row per trial, in trial order, for the table artifact and ``search.json``."""
    return [
        {
            "trial": r.number,
            "chosen": "yes" if r.number in chosen else "",
            "best_val_loss": "failed" if r.best_val_loss is None else round(r.best_val_loss, 5),
            "epochs": r.epochs_run,
            "seconds": round(r.seconds, 1),
            "pruned": "yes" if r.pruned else "",
            "stopped": "yes" if r.stopped else "",
            **{k: round(v, 5) if isinstance(v, float) else v for k, v in r.params.items()},
        }
        for r in sorted(records, key=lambda r: r.number)
    ]


@task(name="search-summary", **STEP_OPTIONS)
def finish_search(
    config: PipelineConfig,
    records: list[TrialRecord],
    ranked: list[TrialRecord],
    flow_run_id: str,
    training: dict[str, Any],
    minutes: float,
) -> TrainedRef:
    """The best trial (or the mean of the top k) as the trained model; a table of trials."""
    logger = get_run_logger()
    if not ranked:
        out_of_time = any(r.stopped for r in records)
        raise RuntimeError(
            f"model search of {config.name}: none of its {len(records)} trial(s) finished "
            "with a finite validation loss; "
            + (
                f"model.search.minutes ({config.model.search.minutes}) ran out before one "
                "finished an epoch: raise it"
                if out_of_time
                else "see the train-trial runs' logs"
            )
        )
    best = ranked[0]
    best_loss = cast(float, best.best_val_loss)  # ranked trials all have a loss
    members = ranked[: config.model.search.ensemble_top_k]
    run_dir = _run_dir(config, flow_run_id)
    # Where the train step puts its model, beside its history: evaluate reads both there.
    model_uri = storage.join(run_dir, "model.keras")
    if len(members) > 1:
        from seqcast.modeling.ensemble import mean_ensemble
        from seqcast.modeling.search import save_model

        save_model(mean_ensemble([m.model_uri for m in members]), model_uri)
    else:
        storage.write_bytes(model_uri, storage.read_bytes(best.model_uri))
    storage.write_json(
        storage.join(run_dir, "history.json"),
        {"loss": best.train_losses, "val_loss": best.val_losses},
    )
    rows = trials_table(records, {m.number for m in members})
    create_table_artifact(
        key=f"{config.name}-search",
        table=rows,
        description=f"Model search of `{config.name}`: {len(records)} trial(s) in "
        f"{minutes:.1f} min, ranked by validation loss (test windows untouched); chosen: "
        + ", ".join(f"trial {m.number}" for m in members),
    )
    summary = {
        "trials": len(records),
        "pruned": sum(r.pruned for r in records),
        "stopped": sum(r.stopped for r in records),
        "minutes": round(minutes, 2),
        "budget": config.model.search.model_dump(),
        "best_trial": best.number,
        "best_val_loss": best_loss,
        "best_params": best.params,
        "best_model": best.model,
        "ensemble": [m.number for m in members] if len(members) > 1 else None,
        "table": rows,
    }
    storage.write_json(storage.join(run_dir, "search.json"), summary)
    logger.info(
        "Model search: trial %d wins (val_loss %.4f, %s) of %d trial(s) (%d pruned) in %.1f min%s",
        best.number,
        best_loss,
        best.params,
        len(records),
        summary["pruned"],
        minutes,
        f"; mean of trials {summary['ensemble']}" if summary["ensemble"] else "",
    )
    return TrainedRef(
        model_uri=model_uri,
        epochs_run=best.epochs_run,
        best_val_loss=best_loss,
        train_seconds=round(sum(r.seconds for r in records), 3),
        window_relative=best.window_relative,
        training=training,
        params=best.model,
        search={k: v for k, v in summary.items() if k != "table"},
    )
