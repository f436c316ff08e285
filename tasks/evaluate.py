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
from seqcast.modeling import evaluation, intervals, plots
from seqcast.modeling.challengers import (
    challenger_forecasts,
    effective_season,
    seasonal_naive_name,
)
from seqcast.modeling.gate import NEAREST, decide, decide_classifier, kind_of_predictor
from seqcast.modeling.nearest import Neighbours, fit_neighbours
from seqcast.modeling.statistical import EtsFit
from seqcast.records import ChallengersRef, EvaluationRef, TrainedRef, WindowsRef
from seqcast.serving import registry
from seqcast.windows import store as window_store
from seqcast.windows.scaling import Scaler
from seqcast.windows.windowing import WindowArrays, WindowLayout, concat_windows
from tasks.challengers import read_fits
from tasks.common import STEP_OPTIONS

if TYPE_CHECKING:  # Keras is imported by the task, not by the flows that import it
    import keras

_EXAMPLES = 3


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


def forecast_examples(
    test: WindowArrays,
    outputs: np.ndarray,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
    baselines: dict[str, np.ndarray],
    worst: list[str],
    per_series_mae: dict[str, dict[str, float]],
    band: np.ndarray | None = None,
    levels: list[float] | None = None,
) -> list[plots.ForecastExample]:
    """The last test window of the worst series the report names (``worst``, worst first;
    at most `_EXAMPLES`), first target, in original units; with the model's ``band``
    (windows, horizon, n_targets, quantiles, scaled units, at ``levels``) its lowest and
    highest quantile."""
    target = layout.target_columns[:1]
    # The strongest naive forecast shown: seasonal naive when a season is set.
    baseline_name = f"seasonal_naive_{season}" if season else "last_value"
    baseline = baselines[baseline_name]
    ids = {str(s): s for s in np.unique(test.series)}  # the report names series as text
    examples = []
    for rank, name in enumerate(worst[:_EXAMPLES], start=1):
        series = ids[name]
        i = int(np.flatnonzero(test.series == series)[-1])
        pick = slice(i, i + 1)

        def original(values: np.ndarray, pick: slice = pick) -> np.ndarray:
            return evaluation.to_original_units(
                values[pick, :, :1], test.series[pick], scaler, target
            )[0, :, 0]

        examples.append(
            plots.ForecastExample(
                series=str(series),
                history=original(test.x),
                actual=original(test.y),
                predicted=original(outputs),
                baseline=original(baseline),
                baseline_name=baseline_name,
                note=f"worst #{rank}, model MAE {per_series_mae[name]['model']:.3f}; "
                "its last test window",
                band=None if band is None else (original(band[..., 0]), original(band[..., -1])),
                band_label=f"q{levels[0]:g}-q{levels[-1]:g}" if band is not None and levels else "",
            )
        )
    return examples


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
            f"of the first {min(_EXAMPLES, len(document['worst_series']))} of them."
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
    """The point forecasts (or class probabilities) of a model."""
    return _score_with_quantiles(model, inputs)[0]


def _score_with_quantiles(
    model: keras.Model, inputs: np.ndarray | dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None]:
    """The point forecasts (or probabilities) and the quantile head's outputs, if any."""
    from seqcast.modeling.networks import split_outputs

    point, quantiles = split_outputs(model.predict(inputs, verbose=0, batch_size=1024))
    return np.asarray(point), None if quantiles is None else np.asarray(quantiles)


def statistical_champion_forecasts(
    champion: registry.LoadedModel,
    baselines: dict[str, np.ndarray],
    windows_uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    fits: dict[str, dict[str, EtsFit]],
) -> np.ndarray:
    """A statistical champion's forecasts of this run's test windows (scaled units).

    Its kind and parameters say what it is: the same forecast as this run's challenger of
    that kind (a seasonal naive of another season is computed for its season; an ETS
    champion is refitted, as batch prediction refits it on recent history).
    """
    if champion.kind == "seasonal_naive":
        season = int(champion.params["season"])
        name = seasonal_naive_name(season)
        if name not in baselines:
            return challenger_forecasts(windows_uri, "test", layout, scaler, season, fits)[name]
        return baselines[name]
    if champion.kind not in baselines:
        raise RegistryError(
            f"champion {champion.version} is a {champion.kind} model, which this run did not "
            "score; it cannot be compared. Promote another version or enable that challenger."
        )
    return baselines[champion.kind]


@dataclasses.dataclass(frozen=True)
class IntervalScores:
    """Interval metrics of the predictors on the test windows and how each got its band."""

    scores: dict[str, dict[str, float]]
    per_step: dict[str, dict[str, list[float]]]
    offsets: dict[str, list[Any]]
    methods: dict[str, str]
    model_band: np.ndarray | None = None
    """The network's quantiles on the test windows as scored (calibrated where configured),
    scaled units, (windows, horizon, n_targets, quantiles); None without a quantile head."""

    def document(self, levels: list[float]) -> dict[str, Any]:
        """What metrics.json keeps (and so each registered version): prediction applies a
        champion's offsets (`seqcast.serving.prediction`)."""
        return {"quantiles": levels, "methods": self.methods, "offsets": self.offsets}


def interval_scores(
    config: PipelineConfig,
    windows_uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    model: keras.Model,
    quantiles: np.ndarray | None,
    levels: list[float],
    naive: dict[str, np.ndarray],
    fits: dict[str, dict[str, EtsFit]],
    test: WindowArrays,
) -> IntervalScores:
    """Coverage and wQL of the network's quantile head and of the challengers' empirical
    intervals (their validation residuals' quantiles), all on the test windows.

    With ``evaluate.calibrate`` the head's quantiles are first shifted by their conformal
    shifts from the validation windows (`seqcast.modeling.intervals.conformal_shifts`).
    """
    season = effective_season(config.evaluate.season, layout)
    val = window_store.read_split(windows_uri, "val", layout)
    columns = layout.target_columns
    bands: dict[str, np.ndarray] = {}  # scaled units, (windows, horizon, n_targets, q)
    offsets: dict[str, list[Any]] = {}
    methods: dict[str, str] = {}
    if quantiles is not None:
        bands["model"], methods["model"] = quantiles, "quantile head (pinball loss)"
        if config.evaluate.calibrate:
            _, val_quantiles = _score_with_quantiles(model, val.model_inputs())
            assert val_quantiles is not None
            shifts = intervals.conformal_shifts(val_quantiles, val.y, levels)
            bands["model"] = intervals.shifted(quantiles, shifts)
            offsets["model"] = shifts.tolist()
            methods["model"] += ", conformally calibrated on the validation windows"
    val_naive = challenger_forecasts(windows_uri, "val", layout, scaler, season, fits)
    for name, forecast in naive.items():
        residual = intervals.residual_offsets(val_naive[name], val.y, levels)
        bands[name] = intervals.with_offsets(forecast, residual)
        offsets[name] = residual.tolist()
        methods[name] = "empirical quantiles of validation residuals per step"
    actual = evaluation.to_original_units(test.y, test.series, scaler, columns)
    scores, per_step = {}, {}
    for name, band in bands.items():
        original = np.stack(
            [
                evaluation.to_original_units(band[..., k], test.series, scaler, columns)
                for k in range(band.shape[-1])
            ],
            axis=-1,
        )
        scores[name] = intervals.quantile_metrics(original, actual, levels)
        per_step[name] = intervals.per_step_quantile_metrics(original, actual, levels)
    return IntervalScores(
        scores=scores,
        per_step=per_step,
        offsets=offsets,
        methods=methods,
        model_band=bands.get("model"),
    )


@task(name="evaluate", **STEP_OPTIONS)
def evaluate(
    config: PipelineConfig, windows: WindowsRef, trained: TrainedRef, challengers: ChallengersRef
) -> EvaluationRef:
    """Score the new model, the statistical challengers and the champion on the test windows."""
    layout = window_store.read_layout(windows.uri)
    scaler = window_store.read_scaler(windows.uri)
    test = window_store.read_split(windows.uri, "test", layout)
    import keras

    # Registers the custom layers saved models use.
    from seqcast.modeling.networks import model_quantiles

    with storage.local_copy(trained.model_uri, ".keras") as path:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    outputs, quantiles = _score_with_quantiles(model, test.model_inputs())
    champion_version, champion = load_comparable_champion(config, layout)
    season = effective_season(config.evaluate.season, layout)
    naive: dict[str, np.ndarray] = {}
    fits, _ = read_fits(challengers)
    if layout.task == "forecast":
        # last value, seasonal naive (history beyond the window) and ETS, in scaled units.
        naive = challenger_forecasts(windows.uri, "test", layout, scaler, season, fits)
    nearest = fit_nearest(config, windows.uri, layout, test)
    champion_outputs = None
    if champion is not None and (champion.model is not None or champion.neighbours is not None):
        inputs = evaluation.rescale_inputs(test, layout.input_columns, scaler, champion.scaler)
        champion_outputs = (
            _score(champion.model, test.model_inputs(inputs))
            if champion.model is not None
            else champion.neighbours.probabilities(inputs)  # type: ignore[union-attr]
        )
    elif champion is not None:
        # This run's scale: `to_original_units` below undoes it with the champion's scaler.
        champion_outputs = evaluation.rescale_forecasts(
            statistical_champion_forecasts(champion, naive, windows.uri, layout, scaler, fits),
            test.series,
            layout.target_columns,
            scaler,
            champion.scaler,
        )
    run_dir = trained.model_uri.rpartition("/")[0]
    history = storage.read_json(storage.join(run_dir, "history.json"))
    images = {"loss curve": plots.loss_curve(history)}
    document: dict[str, Any] = {
        "test_windows": len(test),
        "champion_version": champion_version,
        "window_relative": trained.window_relative,
    }
    run_forecasts_uri: str | None = None
    neighbours_uri: str | None = None
    if layout.task == "forecast":
        scale = evaluation.mase_scales(test, layout, scaler, season)
        report = evaluation.evaluate_forecast(
            outputs, test, layout, scaler, season, scale, baselines=naive
        )
        scores = {s.name: s.metrics for s in report.scored}
        forecasts = dict(report.forecasts)
        assert report.actual is not None
        levels = model_quantiles(model) if quantiles is not None else config.model.quantiles
        model_band: np.ndarray | None = None
        if levels:
            bands = interval_scores(
                config, windows.uri, layout, scaler, model, quantiles, levels, naive, fits, test
            )
            for name, metrics in bands.scores.items():
                scores[name].update(metrics)
            document.update(intervals=bands.document(levels), per_step_intervals=bands.per_step)
            model_band = bands.model_band
        if champion is not None and champion_outputs is not None:
            # The champion's outputs are in its own scale: map them to the challenger's.
            forecasts["champion"] = evaluation.to_original_units(
                champion_outputs, test.series, champion.scaler, layout.target_columns
            )
            scores["champion"] = evaluation.forecast_metrics(
                forecasts["champion"], report.actual, scale
            )
        run_forecasts_uri = storage.join(run_dir, registry.FORECASTS_FILE)
        storage.write_frame(
            evaluation.forecast_table(test, forecasts, report.actual, layout.target_columns),
            run_forecasts_uri,
        )
        document.update(
            per_step_mae=report.per_step_mae,
            per_series_mae=report.per_series_mae,
            worst_series=report.worst_series(),
            kinds={name: kind for name in scores if (kind := _kind(name, champion))},
        )
        images["forecasts of the worst series"] = plots.forecasts(
            forecast_examples(
                test,
                outputs,
                layout,
                scaler,
                season,
                naive,
                document["worst_series"],
                report.per_series_mae,
                model_band,
                levels,
            ),
            layout.target_columns[0],
        )
    else:
        majority = int(window_store.label_counts(windows.uri, "train").argmax())
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
            scores["champion"] = evaluation.evaluate_classify(
                champion_outputs, test, layout, majority
            )[0].metrics
        matrix = evaluation.confusion(np.argmax(outputs, -1), test.y, len(layout.classes))
        document.update(
            per_class=evaluation.per_class_metrics(matrix, layout.classes),
            confusion=matrix.tolist(),
            classes=layout.classes,
            kinds={name: kind for name in scores if (kind := _kind(name, champion))},
        )
        images["confusion matrix"] = plots.confusion_matrix(matrix, layout.classes)
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
