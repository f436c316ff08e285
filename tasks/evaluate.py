"""Step 5, evaluate: test metrics of the new model, the naive baselines and the champion."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from seqcast import evaluation, registry, storage, window_store
from seqcast.config import PipelineConfig
from seqcast.errors import RegistryError
from seqcast.evaluation import Scored
from seqcast.records import EvaluationRef, TrainedRef, WindowsRef
from seqcast.scaling import Scaler
from seqcast.windowing import WindowArrays, WindowLayout
from tasks.common import STEP_OPTIONS


def score_model(
    model: keras.Model,
    name: str,
    test: WindowArrays,
    layout: WindowLayout,
    scaler: Scaler,
    inputs: np.ndarray | dict[str, np.ndarray],
    majority: int,
    season: int | None,
) -> list[Scored]:
    """The model's metrics (first) and, for a forecast, the baselines' on the same windows."""
    outputs = model.predict(inputs, verbose=0, batch_size=1024)
    if layout.task == "forecast":
        scored = evaluation.evaluate_forecast(outputs, test, layout, scaler, season)
    else:
        scored = evaluation.evaluate_classify(outputs, test, layout, majority)
    return [Scored(name, scored[0].metrics), *scored[1:]]


def comparable(champion: WindowLayout, challenger: WindowLayout) -> bool:
    """Whether the champion can score the challenger's test windows."""
    keys = (
        "task",
        "lookback",
        "horizon",
        "input_columns",
        "target_columns",
        "classes",
        "future_columns",
        "static_columns",
    )
    return all(getattr(champion, k) == getattr(challenger, k) for k in keys)


def champion_scores(
    config: PipelineConfig, test: WindowArrays, layout: WindowLayout, scaler: Scaler, majority: int
) -> tuple[str | None, dict[str, float] | None]:
    logger = get_run_logger()
    try:
        champion = registry.load_champion(config.pipeline_root)
    except RegistryError:
        logger.info("No champion yet: the new model is compared with the baselines only")
        return None, None
    if not comparable(champion.layout, layout):
        logger.warning(
            "Champion %s was trained on another window layout; not comparable", champion.version
        )
        return champion.version, None
    x = evaluation.rescale_inputs(test, layout.input_columns, scaler, champion.scaler)
    scored = score_model(
        champion.model,
        "champion",
        test,
        layout,
        champion.scaler,
        test.model_inputs(x),
        majority,
        None,
    )
    return champion.version, scored[0].metrics


def publish_metrics(config: PipelineConfig, table: dict[str, dict[str, float]]) -> None:
    create_table_artifact(
        key=f"{config.name}-metrics",
        table=[
            {"predictor": name, **{k: round(v, 4) for k, v in m.items()}}
            for name, m in table.items()
        ],
        description=f"Test metrics of pipeline `{config.name}`: new model vs baselines and "
        "champion, on the same test windows",
    )


@task(name="evaluate", **STEP_OPTIONS)
def evaluate(config: PipelineConfig, windows: WindowsRef, trained: TrainedRef) -> EvaluationRef:
    """Score the new model, the baselines and the current champion on the test windows."""
    layout = window_store.read_layout(windows.uri)
    scaler = window_store.read_scaler(windows.uri)
    test = window_store.read_split(windows.uri, "test", layout)
    majority = 0
    if layout.task == "classify":
        majority = int(window_store.label_counts(windows.uri, "train").argmax())
    model = keras.saving.load_model(
        storage.local_path(trained.model_uri, ".keras"), safe_mode=True, compile=False
    )
    scored = score_model(
        model, "model", test, layout, scaler, test.model_inputs(), majority, config.evaluate.season
    )
    table: dict[str, dict[str, float]] = {s.name: s.metrics for s in scored}
    champion_version, champion_metrics = champion_scores(config, test, layout, scaler, majority)
    if champion_metrics is not None:
        table["champion"] = champion_metrics
    primary = evaluation.PRIMARY_METRIC[layout.task]
    metrics_uri = storage.join(trained.model_uri.rpartition("/")[0], "metrics.json")
    document: dict[str, Any] = {
        "primary_metric": primary,
        "test_windows": len(test),
        "scores": table,
        "champion_version": champion_version,
    }
    storage.write_json(metrics_uri, document)
    publish_metrics(config, table)
    get_run_logger().info(
        "Test %s: model %.4f | %s",
        primary,
        table["model"][primary],
        " | ".join(f"{k} {v[primary]:.4f}" for k, v in table.items() if k != "model"),
    )
    baselines = {k: v[primary] for k, v in table.items() if k not in ("model", "champion")}
    return EvaluationRef(
        metrics_uri=metrics_uri,
        primary_metric=primary,
        challenger=table["model"][primary],
        baselines=baselines,
        champion=champion_metrics[primary] if champion_metrics else None,
        champion_version=champion_version,
    )
