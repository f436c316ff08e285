"""Step 6, register: store the network (and a winning statistical or 1-NN challenger) as
versions; promote the night's winner only if it beats the champion."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from seqcast.config import PipelineConfig, series_column
from seqcast.data.contracts import PREDICTION_CONTRACT, contract_for, derive_prediction_contract
from seqcast.data.training_facts import read_training_facts
from seqcast.io import storage
from seqcast.modeling.challenger_parts import DOCUMENT_KEYS
from seqcast.modeling.gate import (
    NEAREST,
    NETWORK,
    GateDecision,
    decide,
    decide_classifier,
    season_of,
)
from seqcast.monitoring import drift
from seqcast.records import (
    ChallengersRef,
    EvaluationRef,
    ModelVersionRef,
    TrainedRef,
    ValidatedRef,
    WindowsRef,
)
from seqcast.serving import registry
from tasks.common import STEP_OPTIONS, current_run_id


def promotion_decision(evaluation: EvaluationRef, margin: float) -> GateDecision:
    """The gate on this run's test scores (see `seqcast.modeling.gate`): the network must
    beat every baseline, a statistical winner every simpler one, and either the champion;
    a classifier must beat the majority class on accuracy and balanced accuracy."""
    if evaluation.classify_scores is not None:
        return decide_classifier(
            evaluation.classify_scores,
            evaluation.champion_version,
            evaluation.primary_metric,
            margin,
        )
    return decide(
        evaluation.challenger,
        evaluation.baselines,
        evaluation.champion,
        evaluation.champion_version,
        evaluation.primary_metric,
        margin,
    )


def statistical_params(winner: str, challengers: ChallengersRef | None) -> dict[str, Any]:
    """What a statistical version forecasts with (params.json): the season of a seasonal
    naive; for ETS the season and every series' fit (`EtsFit.to_json`), which batch
    prediction refits on recent history; for AR every series' fit (`ArFit.to_json`), whose
    coefficients batch prediction applies to the latest values."""
    if winner in ("ets", "ar"):
        if challengers is None or challengers.uri is None:
            raise ValueError(f"an {winner} version needs the run's fits: pass `challengers`")
        document = storage.read_json(challengers.uri)
        fits = document[DOCUMENT_KEYS[winner]]
        return {"fits": fits} if winner == "ar" else {"season": document["season"], "fits": fits}
    season = season_of(winner)
    return {"season": season} if season else {}


def input_profile(
    config: PipelineConfig, windows: WindowsRef, validated: ValidatedRef
) -> dict[str, Any]:
    """The training inputs' profile every version of this run keeps (``profile.json``),
    which prediction runs check their inputs against (`seqcast.monitoring.drift`)."""
    layout = storage.read_json(storage.join(windows.uri, "layout.json"))
    profile = drift.reference_profile(
        validated.uri,
        layout["input_columns"],
        series_column(config.source),
        config.split,
        seed=config.model.seed,
    )
    return profile.to_json()


def _promote(
    config: PipelineConfig, version: str, decision: dict[str, Any], expected: str | None
) -> tuple[bool, str]:
    """Promote by compare-and-swap; returns (promoted, reason)."""
    try:
        registry.set_champion(config.pipeline_root, version, decision, expected=expected)
    except registry.ChampionChanged as exc:
        return False, str(exc)
    return True, decision["reason"]


@task(name="register", **STEP_OPTIONS)
def register(
    config: PipelineConfig,
    windows: WindowsRef,
    trained: TrainedRef,
    evaluation: EvaluationRef,
    validated: ValidatedRef | None = None,
    challengers: ChallengersRef | None = None,
) -> ModelVersionRef:
    """Store the network as a version, and the winning statistical challenger; promote the
    night's winner atomically if it beats the champion."""
    logger = get_run_logger()
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
        base = contract_for(config, predicting=True)
        contract = derive_prediction_contract(
            read_training_facts(validated.uri, config, base),  # streamed: issue 18
            config,
            base,
            classes=windows.classes,
        )
        info[PREDICTION_CONTRACT] = contract.model_dump(mode="json")
    profile = input_profile(config, windows, validated) if validated is not None else None
    network = registry.register_version(
        config.pipeline_root,
        trained.model_uri,
        windows.uri,
        metrics,
        {**info, "predictor": "model"},
        forecasts_uri=evaluation.forecasts_uri,
        profile=profile,
    )
    gate = promotion_decision(evaluation, config.evaluate.promotion_margin)
    statistical: str | None = None
    if gate.winner is not None and gate.kind != NETWORK:
        assert gate.kind is not None
        nearest = gate.kind == NEAREST
        if nearest and evaluation.neighbours_uri is None:
            raise ValueError("a nearest_neighbour winner needs the run's neighbours.npz")
        statistical = registry.register_version(
            config.pipeline_root,
            evaluation.neighbours_uri if nearest else None,
            windows.uri,
            metrics,
            {**info, "predictor": gate.winner, "epochs_run": 0},
            kind=gate.kind,
            params=None if nearest else statistical_params(gate.winner, challengers),
            forecasts_uri=evaluation.forecasts_uri,
            profile=profile,
        )
    winner_version = network if gate.kind == NETWORK else statistical
    decision = {
        "reason": gate.reason,
        "metric": evaluation.primary_metric,
        "winner": gate.winner,
        "kind": gate.kind,
        "challenger": gate.score if gate.score is not None else evaluation.challenger,
        "network": evaluation.challenger,
        "champion": evaluation.champion,
        "previous_champion": evaluation.champion_version,
    }
    promoted, reason = False, gate.reason
    if gate.promote and winner_version is not None:
        promoted, reason = _promote(
            config, winner_version, decision, expected=evaluation.champion_version
        )
    if promoted:
        logger.info("Version %s (%s) promoted to champion: %s", winner_version, gate.kind, reason)
    else:
        registry.append_audit(
            config.pipeline_root,
            {**decision, "reason": reason, "version": winner_version or network, "promoted": False},
        )
        logger.warning(
            "Version %s registered but NOT promoted: %s", winner_version or network, reason
        )
    if gate.kind != NETWORK and gate.winner is not None:
        logger.info(
            "No network beat %s: %s is %s",
            gate.winner,
            gate.winner,
            "champion" if promoted else "the night's best, but not champion",
        )
    champion = registry.champion_version(config.pipeline_root)
    statistical_ref = (
        ModelVersionRef(
            version=statistical,
            uri=registry.version_uri(config.pipeline_root, statistical),
            promoted=promoted,
            reason=reason,
            kind=gate.kind or NETWORK,
        )
        if statistical is not None
        else None
    )
    return ModelVersionRef(
        version=network,
        uri=registry.version_uri(config.pipeline_root, network),
        promoted=promoted and gate.kind == NETWORK,
        reason=reason,
        winner=gate.kind,
        statistical=statistical_ref,
        champion=champion,
    )
