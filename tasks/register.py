"""Step 6, register: store the model as a version; promote it only if it beats the others."""

from __future__ import annotations

from prefect import get_run_logger, task

from seqcast.config import PipelineConfig
from seqcast.data.contracts import PREDICTION_CONTRACT, contract_for, derive_prediction_contract
from seqcast.io import storage
from seqcast.modeling.evaluation import is_better
from seqcast.records import EvaluationRef, ModelVersionRef, TrainedRef, ValidatedRef, WindowsRef
from seqcast.serving import registry
from tasks.common import STEP_OPTIONS, current_run_id


def promotion_decision(evaluation: EvaluationRef, margin: float) -> tuple[bool, str]:
    """Promote only a model that beats every naive baseline and the champion (if comparable)."""
    metric = evaluation.primary_metric
    value = evaluation.challenger
    for name, baseline in evaluation.baselines.items():
        if not is_better(value, baseline, metric, margin):
            return False, f"{metric} {value:.4f} does not beat baseline {name} ({baseline:.4f})"
    if evaluation.champion is not None and not is_better(
        value, evaluation.champion, metric, margin
    ):
        return False, (
            f"{metric} {value:.4f} does not beat champion "
            f"{evaluation.champion_version} ({evaluation.champion:.4f})"
        )
    against = (
        f"champion {evaluation.champion_version} ({evaluation.champion:.4f})"
        if evaluation.champion is not None
        else "the baselines"
    )
    return True, f"{metric} {value:.4f} beats {against}"


@task(name="register", **STEP_OPTIONS)
def register(
    config: PipelineConfig,
    windows: WindowsRef,
    trained: TrainedRef,
    evaluation: EvaluationRef,
    validated: ValidatedRef | None = None,
) -> ModelVersionRef:
    """Store an immutable model version and atomically promote it if it is better."""
    metrics = storage.read_json(evaluation.metrics_uri)
    info = {
        "pipeline": config.name,
        "flow_run_id": current_run_id(),
        "config": config.model_dump(),
        "windows": windows.uri,
        "windows_fingerprint": windows.fingerprint,
        "seed": config.model.seed,
        "epochs_run": trained.epochs_run,
        "training": trained.training,
        "search": trained.search,
    }
    if validated is not None:
        # What prediction inputs must look like, from the data this model was trained on;
        # the prediction flow checks it before loading the model.
        contract = derive_prediction_contract(
            storage.read_parquet(validated.uri).to_pandas(),
            config,
            contract_for(config, predicting=True),
            classes=windows.classes,
        )
        info[PREDICTION_CONTRACT] = contract.model_dump(mode="json")
    version = registry.register_version(
        config.pipeline_root, trained.model_uri, windows.uri, metrics, info
    )
    promote, reason = promotion_decision(evaluation, config.evaluate.promotion_margin)
    decision = {
        "reason": reason,
        "metric": evaluation.primary_metric,
        "challenger": evaluation.challenger,
        "champion": evaluation.champion,
        "previous_champion": evaluation.champion_version,
    }
    if promote:
        try:
            registry.set_champion(
                config.pipeline_root, version, decision, expected=evaluation.champion_version
            )
        except registry.ChampionChanged as exc:
            promote, reason = False, str(exc)
            decision["reason"] = reason
    if promote:
        get_run_logger().info("Version %s promoted to champion: %s", version, reason)
    else:
        registry.append_audit(
            config.pipeline_root, {**decision, "version": version, "promoted": False}
        )
        get_run_logger().warning("Version %s registered but NOT promoted: %s", version, reason)
    return ModelVersionRef(
        version=version,
        uri=registry.version_uri(config.pipeline_root, version),
        promoted=promote,
        reason=reason,
    )
