"""Step 5, evaluate: test metrics of the new model, the statistical challengers (baselines)
and the champion, on the same test windows; every forecast kept in test_forecasts.parquet.
A whole-sequence classifier's challenger is the 1-NN (`seqcast.modeling.nearest`), fitted
here on the training sequences and scored on the same test sequences."""

from __future__ import annotations

import base64
import dataclasses
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from seqcast.config import PipelineConfig
from seqcast.errors import RegistryError
from seqcast.io import storage
from seqcast.modeling import evaluation, intervals, plots, scoring
from seqcast.modeling.challengers import (
    ChallengerFits,
    effective_season,
    forecast_names,
    seasonal_naive_name,
)
from seqcast.modeling.gate import NEAREST, decide, decide_classifier, kind_of_predictor
from seqcast.modeling.nearest import Neighbours, fit_neighbours
from seqcast.records import ChallengersRef, EvaluationRef, TrainedRef, WindowsRef
from seqcast.serving import registry
from seqcast.windows import store as window_store
from seqcast.windows.scaling import Scaler
from seqcast.windows.windowing import WindowArrays, WindowLayout, concat_windows
from tasks.challengers import read_fits
from tasks.common import STEP_OPTIONS

if TYPE_CHECKING:  # Keras is imported by the task, not by the flows that import it
    import keras


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


def load_comparable_champion(
    config: PipelineConfig, layout: WindowLayout
) -> tuple[str | None, registry.LoadedModel | None]:
    logger = get_run_logger()
    try:
        champion = registry.load_champion(config.pipeline_root)
    except RegistryError:
        if registry.champion_version(config.pipeline_root) is not None:
            raise  # a champion exists but fails its checks: never silently replace it
        # Not the registry's message: it tells the user to run `seqcast train`, which is
        # what is running now.
        logger.info(
            "No champion yet under %s: the new model is compared with the baselines only",
            registry.registry_root(config.pipeline_root),
        )
        return None, None
    if not comparable(champion.layout, layout):
        logger.warning(
            "Champion %s was trained on another window layout; not comparable", champion.version
        )
        return champion.version, None
    return champion.version, champion


def _image(title: str, png: bytes) -> str:
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _metrics_table(scores: dict[str, dict[str, float]]) -> str:
    """Every predictor's metrics; a metric a predictor lacks (an interval metric of a
    champion scored without one) shows as a dash."""
    metrics = list(dict.fromkeys(m for values in scores.values() for m in values))
    lines = ["| predictor | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, values in scores.items():
        cells = (f"{values[m]:.4f}" if m in values else "-" for m in metrics)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def publish(config: PipelineConfig, document: dict[str, Any], images: dict[str, bytes]) -> None:
    """A metrics table under a stable key (its history shows quality night over night) and a
    markdown report with the plots."""
    scores = document["scores"]
    create_table_artifact(
        key=f"{config.name}-metrics",
        table=[
            {"predictor": name, **{k: round(v, 4) for k, v in m.items()}}
            for name, m in scores.items()
        ],
        description=f"Test metrics of pipeline `{config.name}`: new model vs baselines and "
        "champion, on the same test windows",
    )
    parts = [
        f"# {config.name}: evaluation on {document['test_windows']} test windows",
        _metrics_table(scores),
    ]
    if "gate" in document:
        gate = document["gate"]
        winner = gate["winner"] or "none"
        parts.append(
            f"**Tonight's winner: {winner}** ({gate['kind'] or 'no registrable kind'}; "
            f"{'promoted' if gate['promote'] else 'not promoted'}). {gate['reason']}."
        )
    if "intervals" in document:
        methods = "; ".join(f"{k}: {v}" for k, v in document["intervals"]["methods"].items())
        parts.append(
            f"Intervals for quantiles {document['intervals']['quantiles']} ({methods}). "
            "coverage_N is the share of test actuals inside the central N% interval, wql "
            "the weighted quantile loss (lower is better)."
        )
        parts.extend(f"**Warning:** {flag}" for flag in document.get("interval_flags", []))
    if "worst_series" in document:
        worst = ", ".join(
            f"{s} ({document['per_series_mae'][s]['model']:.3f})" for s in document["worst_series"]
        )
        parts.append(
            f"Worst series by model MAE: {worst}. The plot below shows the last test window "
            f"of the first {min(scoring.EXAMPLES, len(document['worst_series']))} of them."
        )
    if NEAREST in document:
        facts = document[NEAREST]
        loo = ", ".join(f"{m} {a:.4f}" for m, a in facts["loo_accuracy"].items())
        parts.append(
            f"1-NN challenger: {facts['metric']} distance over {facts['neighbours']} training "
            f"sequences of {facts['length']} steps"
            + (f" (leave-one-out accuracy on them: {loo})." if loo else f" ({facts['setting']}).")
        )
    if "per_class" in document:
        parts.append(
            "| class | precision | recall | support |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['support']} |"
                for c, m in document["per_class"].items()
            )
        )
    parts.extend(_image(title, png) for title, png in images.items())
    create_markdown_artifact(
        key=f"{config.name}-report", markdown="\n\n".join(parts), description="Evaluation report"
    )


def fit_nearest(
    config: PipelineConfig, windows_uri: str, layout: WindowLayout, test: WindowArrays
) -> tuple[Neighbours, np.ndarray] | None:
    """The 1-NN challenger of a whole-sequence classifier (None for other layouts or with
    ``evaluate.nearest_neighbour: none``) and its test probabilities (sequences, classes).

    Its neighbours are the training *and validation* sequences: the network needs validation
    for early stopping and the model search, the 1-NN tunes nothing, so it gets all labelled
    sequences the network saw (as the archive's 1-NN uses the whole official train set).
    """
    setting = config.evaluate.nearest_neighbour
    if layout.per != "sequence" or layout.task != "classify" or setting == "none":
        return None
    started = time.perf_counter()
    train = concat_windows(
        [window_store.read_split(windows_uri, split, layout) for split in ("train", "val")]
    )
    neighbours = fit_neighbours(train.x, train.y, len(layout.classes), setting)
    chosen = time.perf_counter()
    probabilities = neighbours.probabilities(test.x)
    logger = get_run_logger()
    if neighbours.loo_accuracy:
        logger.info(
            "1-NN distance %s chosen by leave-one-out accuracy on %d training sequences: %s "
            "(%.1fs)",
            neighbours.metric,
            len(train),
            ", ".join(f"{m} {a:.4f}" for m, a in neighbours.loo_accuracy.items()),
            chosen - started,
        )
    logger.info(
        "1-NN (%s) on %d test x %d training sequences of %d steps: %.1fs",
        neighbours.metric,
        len(test),
        len(train),
        neighbours.train.shape[1],
        time.perf_counter() - chosen,
    )
    return neighbours, probabilities


def nearest_facts(config: PipelineConfig, neighbours: Neighbours) -> dict[str, Any]:
    """What metrics.json says about the 1-NN challenger: the distance it uses, the setting
    that chose it and (``auto``) each distance's leave-one-out accuracy, so a reader sees why."""
    return {
        "setting": config.evaluate.nearest_neighbour,
        "metric": neighbours.metric,
        "loo_accuracy": dict(neighbours.loo_accuracy),
        "neighbours": len(neighbours.train),
        "length": int(neighbours.train.shape[1]),
        "band": neighbours.band,
    }


def _score(model: keras.Model, inputs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
    """The class probabilities (or point forecasts) of a model."""
    from seqcast.modeling.networks import split_outputs

    return np.asarray(split_outputs(model.predict(inputs, verbose=0, batch_size=1024))[0])


def champion_forecaster(
    champion: registry.LoadedModel,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
    kinds: list[str],
) -> tuple[scoring.ChampionForecaster, list[int]]:
    """How the champion forecasts this run's test windows (original units), and the seasons
    of seasonal naive it needs beyond this run's.

    A network rescales the windows' inputs to its own scaler. A statistical champion's kind
    and parameters say what it is: the same forecast as this run's challenger of that kind
    (a seasonal naive of another season is computed for its season; an ETS or AR champion
    is scored as this run's fit of that kind, which ``kinds`` must hold).
    """
    from seqcast.serving import prediction

    targets = layout.target_columns
    if champion.model is not None:

        def network(windows: WindowArrays, _: dict[str, np.ndarray]) -> np.ndarray:
            inputs = evaluation.rescale_inputs(
                windows, layout.input_columns, scaler, champion.scaler
            )
            outputs = prediction.network_outputs(champion, windows.model_inputs(inputs))
            return evaluation.to_original_units(outputs, windows.series, champion.scaler, targets)

        return network, []
    extra: list[int] = []
    name = champion.kind
    if champion.kind == "seasonal_naive":
        extra = [int(champion.params["season"])]
        name = seasonal_naive_name(extra[0])
    elif champion.kind not in forecast_names([season] if season else [], kinds):
        raise RegistryError(
            f"champion {champion.version} is of kind {champion.kind!r}, which this run did "
            "not score; it cannot be compared. Promote another version (`seqcast models "
            f"promote`) or add {champion.kind} to evaluate.challengers."
        )

    def statistical(windows: WindowArrays, challengers: dict[str, np.ndarray]) -> np.ndarray:
        return evaluation.to_original_units(challengers[name], windows.series, scaler, targets)

    return statistical, extra


def interval_bands(
    config: PipelineConfig,
    windows_uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
    fits: ChallengerFits,
    network: scoring.NetworkForecaster,
    levels: list[float],
    head: bool,
) -> tuple[scoring.Bands, dict[str, Any]]:
    """The intervals to score on the test windows, and what metrics.json keeps of them (the
    offsets prediction applies to a champion, `seqcast.serving.prediction`, and how each
    predictor got its band).

    The network's band is its quantile head's, shifted with ``evaluate.calibrate`` by the
    conformal shifts of the validation windows (`intervals.conformal_shifts`); each
    challenger's is its point forecast plus its validation residuals' quantiles.
    """
    seasons = [season] if season else []
    calibrate = head and config.evaluate.calibrate
    sample = scoring.validation_sample(
        windows_uri, layout, scaler, seasons, fits, network if calibrate else None
    )
    sampled = (
        f" (every {-(-sample.of // len(sample.y))}th: {len(sample.y)} of {sample.of})"
        if len(sample.y) < sample.of
        else ""
    )
    offsets: dict[str, list[Any]] = {}
    methods: dict[str, str] = {}
    shifts = None
    if head:
        methods["model"] = "quantile head (pinball loss)"
        if calibrate:
            quantiles = sample.quantiles
            if quantiles is None:  # no validation window: conformal_shifts says so
                quantiles = np.empty((*sample.y.shape, len(levels)), np.float32)
            shifts = intervals.conformal_shifts(quantiles, sample.y, levels)
            offsets["model"] = shifts.tolist()
            methods["model"] += f", conformally calibrated on the validation windows{sampled}"
    residuals = {}
    for name, forecast in sample.challengers.items():
        residuals[name] = intervals.residual_offsets(forecast, sample.y, levels)
        offsets[name] = residuals[name].tolist()
        methods[name] = f"empirical quantiles of validation residuals per step{sampled}"
    bands = scoring.Bands(levels=levels, offsets=residuals, head=head, shifts=shifts)
    return bands, {"quantiles": levels, "methods": methods, "offsets": offsets}


def score_forecasts(
    config: PipelineConfig,
    windows_uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    model: keras.Model,
    champion: registry.LoadedModel | None,
    fits: ChallengerFits,
    forecasts_uri: str,
) -> tuple[scoring.TestScores, dict[str, Any] | None]:
    """The test scores of a forecaster, its challengers and champion, streamed block by block
    (`seqcast.modeling.scoring`), and the intervals' part of metrics.json (None without
    quantiles)."""
    from seqcast.modeling.forward import window_forecaster
    from seqcast.modeling.networks import model_quantiles

    network = window_forecaster(model)

    season = effective_season(config.evaluate.season, layout)
    head = model_quantiles(model)
    levels = head or config.model.quantiles
    bands, described = None, None
    if levels:
        bands, described = interval_bands(
            config, windows_uri, layout, scaler, season, fits, network, levels, bool(head)
        )
    forecaster, champion_seasons = (
        champion_forecaster(champion, layout, scaler, season, fits.kinds)
        if champion
        else (None, [])
    )
    test = scoring.score_test(
        windows_uri,
        layout,
        scaler,
        season,
        fits,
        network,
        forecasts_uri,
        champion=forecaster,
        champion_seasons=champion_seasons,
        bands=bands,
    )
    return test, described


def score_classifier(
    config: PipelineConfig,
    windows_uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    model: keras.Model,
    champion: registry.LoadedModel | None,
    run_dir: str,
    document: dict[str, Any],
    images: dict[str, bytes],
) -> tuple[dict[str, dict[str, float]], str | None]:
    """A classifier's test scores, its 1-NN challenger's and its champion's (with the
    report's parts added to ``document`` and ``images``), and where the 1-NN was saved.

    The test split is read whole: classification sets are counted in sequences, and the
    1-NN compares every test sequence with every training one anyway.
    """
    test = window_store.read_split(windows_uri, "test", layout)
    document["test_windows"] = len(test)
    outputs = _score(model, test.model_inputs())
    nearest = fit_nearest(config, windows_uri, layout, test)
    champion_outputs = None
    if champion is not None and (champion.model is not None or champion.neighbours is not None):
        inputs = evaluation.rescale_inputs(test, layout.input_columns, scaler, champion.scaler)
        champion_outputs = (
            _score(champion.model, test.model_inputs(inputs))
            if champion.model is not None
            else champion.neighbours.probabilities(inputs)  # type: ignore[union-attr]
        )
    neighbours_uri = None
    majority = int(window_store.label_counts(windows_uri, "train").argmax())
    scored = evaluation.evaluate_classify(outputs, test, layout, majority)
    scores = {s.name: s.metrics for s in scored}
    if nearest is not None:
        neighbours, nearest_outputs = nearest
        nearest_scored = evaluation.evaluate_classify(nearest_outputs, test, layout, majority)
        scores[NEAREST] = nearest_scored[0].metrics
        document[NEAREST] = nearest_facts(config, neighbours)
        neighbours_uri = storage.join(run_dir, "neighbours.npz")
        storage.write_bytes(neighbours_uri, neighbours.to_bytes())
    if champion_outputs is not None:
        scores["champion"] = evaluation.evaluate_classify(champion_outputs, test, layout, majority)[
            0
        ].metrics
    matrix = evaluation.confusion(np.argmax(outputs, -1), test.y, len(layout.classes))
    document.update(
        per_class=evaluation.per_class_metrics(matrix, layout.classes),
        confusion=matrix.tolist(),
        classes=layout.classes,
        kinds={name: kind for name in scores if (kind := _kind(name, champion))},
    )
    images["confusion matrix"] = plots.confusion_matrix(matrix, layout.classes)
    return scores, neighbours_uri


@task(name="evaluate", **STEP_OPTIONS)
def evaluate(
    config: PipelineConfig, windows: WindowsRef, trained: TrainedRef, challengers: ChallengersRef
) -> EvaluationRef:
    """Score the new model, the statistical challengers and the champion on the test windows."""
    layout = window_store.read_layout(windows.uri)
    scaler = window_store.read_scaler(windows.uri)
    import keras

    import seqcast.modeling.networks  # noqa: F401  registers the custom layers saved models use

    with storage.local_copy(trained.model_uri, ".keras") as path:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    champion_version, champion = load_comparable_champion(config, layout)
    run_dir = trained.model_uri.rpartition("/")[0]
    history = storage.read_json(storage.join(run_dir, "history.json"))
    images = {"loss curve": plots.loss_curve(history)}
    document: dict[str, Any] = {
        "test_windows": 0,
        "champion_version": champion_version,
        "window_relative": trained.window_relative,
    }
    run_forecasts_uri: str | None = None
    neighbours_uri: str | None = None
    if layout.task == "forecast":
        fits, _ = read_fits(challengers)
        run_forecasts_uri = storage.join(run_dir, registry.FORECASTS_FILE)
        test, described = score_forecasts(
            config, windows.uri, layout, scaler, model, champion, fits, run_forecasts_uri
        )
        scores = test.scores
        document["test_windows"] = test.windows
        if described is not None:
            document.update(intervals=described, per_step_intervals=test.interval_per_step)
        document.update(
            per_step_mae=test.per_step_mae,
            per_series_mae=test.per_series_mae,
            worst_series=test.worst_series(),
            kinds={name: kind for name in scores if (kind := _kind(name, champion))},
        )
        images["forecasts of the worst series"] = plots.forecasts(
            test.examples, layout.target_columns[0]
        )
    else:
        scores, neighbours_uri = score_classifier(
            config, windows.uri, layout, scaler, model, champion, run_dir, document, images
        )
    primary = evaluation.PRIMARY_METRIC[layout.task]
    document.update(primary_metric=primary, scores=scores)
    # The register step decides from the same numbers; the report says it plainly now.
    gate = (
        decide_classifier(scores, champion_version, primary, config.evaluate.promotion_margin)
        if layout.task == "classify"
        else decide(
            scores["model"][primary],
            {k: v[primary] for k, v in scores.items() if k not in ("model", "champion")},
            scores["champion"][primary] if "champion" in scores else None,
            champion_version,
            primary,
            config.evaluate.promotion_margin,
        )
    )
    document["gate"] = dataclasses.asdict(gate)
    if "intervals" in document:
        # The network's interval and tonight's winner's, when another predictor won.
        flagged = dict.fromkeys(["model", *([gate.winner] if gate.winner else [])])
        document["interval_flags"] = [
            flag
            for name in flagged
            for flag in intervals.coverage_flags(
                scores[name], name, calibrated=config.evaluate.calibrate
            )
        ]
    metrics_uri = storage.join(run_dir, "metrics.json")
    storage.write_json(metrics_uri, document)
    publish(config, document, images)
    for flag in document.get("interval_flags", []):
        get_run_logger().warning(flag)
    get_run_logger().info(
        "Test %s: model %.4f | %s",
        primary,
        scores["model"][primary],
        " | ".join(f"{k} {v[primary]:.4f}" for k, v in scores.items() if k != "model"),
    )
    baselines = {k: v[primary] for k, v in scores.items() if k not in ("model", "champion")}
    return EvaluationRef(
        metrics_uri=metrics_uri,
        primary_metric=primary,
        challenger=scores["model"][primary],
        baselines=baselines,
        champion=scores["champion"][primary] if "champion" in scores else None,
        champion_version=champion_version,
        forecasts_uri=run_forecasts_uri,
        classify_scores=scores if layout.task == "classify" else None,
        neighbours_uri=neighbours_uri,
    )


def _kind(name: str, champion: registry.LoadedModel | None) -> str | None:
    """The model kind behind a predictor name of the metrics table (for the report)."""
    if name == "champion":
        return champion.kind if champion is not None else None
    return kind_of_predictor(name)
