"""Prediction flow, before predicting: score the forecasts published on earlier nights
against the actuals that arrived since, and alert when the champion keeps missing.

Publishes two artifacts with stable keys, so the Prefect UI shows their history night over
night: ``{name}-live-accuracy`` (a table: per model version live MAE, test MAE, their
ratio, the seasonal-naive MAE on the same pairs and the 80% band's coverage) and
``{name}-live-accuracy-chart`` (markdown: the last ``monitor.chart_nights`` nights' live
MAE against the test MAE, and per horizon step). After ``monitor.nights`` degraded nights in
a row it emits ``seqcast.accuracy.degraded`` (`tasks.events`), once per streak.
"""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from seqcast.config import PipelineConfig, series_column
from seqcast.data.contracts import contract_for
from seqcast.io import storage
from seqcast.modeling import plots
from seqcast.modeling.challengers import effective_season
from seqcast.monitoring import live_accuracy as live
from seqcast.monitoring import live_history as history
from seqcast.records import LiveAccuracyRef, SnapshotRef
from seqcast.serving import publication, registry
from tasks.common import STEP_OPTIONS, warn_on_failure
from tasks.events import ACCURACY_DEGRADED, emit

RETRAIN_LABEL = "seqcast.retrain"
"""On the degradation event's resource: "true" when ``monitor.retrain_on_degradation``; the
shipped retraining automation matches it."""


def published_files(pipeline_root: str, before: date) -> list[str]:
    """The prediction files published for the days before ``before``, oldest first."""
    folder = storage.join(pipeline_root, "published", "predictions")
    if not storage.exists(folder):
        return []
    files = []
    for name in sorted(storage.listdir(folder)):
        try:
            day = date.fromisoformat(name.removesuffix(".json"))
        except ValueError:
            continue
        if day < before and (ref := publication.published_predictions(pipeline_root, day)):
            files.append(ref.uri)
    return files


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The live-accuracy table: one row per model version scored tonight."""
    return [
        {
            "night": summary["night"],
            "model_version": v["version"],
            "kind": v["kind"],
            "pairs": v["pairs"],
            "live_mae": _fmt(v["live_mae"]),
            "test_mae": _fmt(v["test_mae"]),
            "live/test": _fmt(v["ratio"], 2),
            "seasonal_naive_live_mae": _fmt(v["naive_mae"]),
            "beats_naive": "-" if v["naive_mae"] is None else str(v["live_mae"] < v["naive_mae"]),
            "coverage_80": _fmt(v["coverage"], 3),
        }
        for v in summary["versions"]
    ]


def chart_markdown(
    config: PipelineConfig, summaries: list[dict[str, Any]], steps: list[dict[str, Any]]
) -> str:
    """The chart artifact: live vs test MAE over the last nights, then tonight per step."""
    recent = summaries[-config.monitor.chart_nights :]
    nights = [s["night"] for s in recent]
    png = plots.live_accuracy(
        nights,
        [s.get("live_mae") for s in recent],
        [s.get("test_mae") for s in recent],
        [s.get("naive_mae") for s in recent],
        limit=config.monitor.degradation,
    )
    last = recent[-1]
    lines = [
        f"# Live accuracy of `{config.name}`, night {last['night']}",
        "",
        f"Forecasts published on earlier nights against the actuals that arrived since: "
        f"{last['pairs']} pairs tonight; live MAE {_fmt(last.get('live_mae'))} against "
        f"{_fmt(last.get('test_mae'))} on the test windows (ratio {_fmt(last.get('ratio'), 2)}; "
        f"degraded above {config.monitor.degradation:g}). Degraded nights in a row: "
        f"{last['streak']} (`seqcast.accuracy.degraded` goes out at "
        f"{config.monitor.nights}, once per streak"
        f"{'; sent tonight' if last.get('event_emitted') else ''}).",
        "",
        f"![live vs test MAE](data:image/png;base64,{base64.b64encode(png).decode()})",
        "",
        "| step | pairs | live MAE | seasonal naive MAE |",
        "|---|---|---|---|",
        *(
            f"| {s['step']} | {s['pairs']} | {_fmt(s['live_mae'])} | {_fmt(s['naive_mae'])} |"
            for s in steps
        ),
    ]
    return "\n".join(lines)


@task(name="live-accuracy", **STEP_OPTIONS)
def score_live_accuracy(
    config: PipelineConfig, snapshot: SnapshotRef, night: date
) -> LiveAccuracyRef:
    """Score earlier nights' published forecasts on the actuals in ``snapshot``."""
    logger = get_run_logger()
    root = config.pipeline_root
    earlier = history.read_summaries(root, before=night)
    through = earlier[-1]["scored_through"] if earlier else None
    files = published_files(root, night)
    champion = registry.required_champion_version(root)
    _, layout, _ = registry.read_layout(root, champion)
    forecasts = live.pending_forecasts(
        files, layout, config.source, series_column(config.source), through
    )
    season = effective_season(config.evaluate.season, layout) or 1
    naive_from = live.naive_stamps(forecasts, layout, season)
    since = int(min(naive_from.min(), forecasts.frame[live.STAMP].min())) if len(naive_from) else 0
    actuals = (
        live.read_actuals(
            snapshot.uri,
            config.source,
            contract_for(config, predicting=True),
            layout.target_columns[0],
            since,
        )
        if len(forecasts.frame)
        else None
    )
    scored = (
        live.score(forecasts, actuals, naive_from)
        if actuals is not None
        else live.NightScore(forecasts.frame.iloc[:0], None)
    )
    versions = sorted(set(scored.detail["model_version"])) if len(scored.detail) else []
    scores = (
        live.version_scores(scored.detail, {v: history.test_mae(root, v) for v in versions})
        if versions
        else []
    )
    ratio = live.night_ratio(scores)
    pairs = sum(s.pairs for s in scores)
    summary: dict[str, Any] = {
        "night": night.isoformat(),
        "scored_through": scored.scored_through if pairs else through,
        "pairs": pairs,
        "files": len(files),
        "versions": history.version_dicts(scores),
        "live_mae": _weighted([(s.live_mae, s.pairs) for s in scores]),
        "test_mae": _weighted([(s.test_mae, s.pairs) for s in scores]),
        "naive_mae": _weighted([(s.naive_mae, s.pairs) for s in scores]),
        "ratio": ratio,
        "degraded": ratio is not None and ratio > config.monitor.degradation,
        "event_emitted": False,
    }
    streak = history.degraded_streak([*earlier, summary])
    summary["streak"] = streak
    before = history.read_summary(root, night)
    if history.alerted_in_streak(earlier, streak - 1 if summary["degraded"] else 0, before):
        # One event per streak; a rerun of the same night keeps the flag its run recorded.
        summary["event_emitted"] = bool(before and before.get("event_emitted"))
    elif streak >= config.monitor.nights and summary["degraded"]:
        summary["event_emitted"] = emit(
            config,
            ACCURACY_DEGRADED,
            champion,
            {
                "night": summary["night"],
                "live_mae": summary["live_mae"],
                "test_mae": summary["test_mae"],
                "ratio": ratio,
                "nights": streak,
                "threshold": config.monitor.degradation,
                "scored_versions": versions,
            },
            labels={RETRAIN_LABEL: str(config.monitor.retrain_on_degradation).lower()},
        )
    steps = live.per_step(scored.detail).to_dict("records") if pairs else []
    folder = history.write_night(root, night, scored.detail, summary)
    if pairs:
        create_table_artifact(
            key=f"{config.name}-live-accuracy",
            table=table_rows(summary),
            description=f"Live accuracy of pipeline `{config.name}` on night {night}: published "
            "forecasts against the actuals that arrived since, beside the test-time MAE",
        )
        create_markdown_artifact(
            key=f"{config.name}-live-accuracy-chart",
            markdown=chart_markdown(config, [*earlier, summary], steps),
            description=f"Live vs test MAE of pipeline `{config.name}`, night by night",
        )
        logger.info(
            "Live accuracy: %d pairs from %d published file(s), live MAE %s vs test MAE %s "
            "(ratio %s; %d degraded night(s) in a row)",
            pairs,
            len(files),
            _fmt(summary["live_mae"]),
            _fmt(summary["test_mae"]),
            _fmt(ratio, 2),
            streak,
        )
    else:
        logger.info(
            "Live accuracy: nothing to score yet (%d published file(s); no forecast has an "
            "actual newer than the last night scored)",
            len(files),
        )
    return LiveAccuracyRef(
        uri=folder,
        pairs=pairs,
        live_mae=summary["live_mae"],
        test_mae=summary["test_mae"],
        ratio=ratio,
        degraded_nights=streak,
        event_emitted=summary["event_emitted"],
    )


def _weighted(values: list[tuple[float | None, int]]) -> float | None:
    known = [(v, n) for v, n in values if v is not None]
    total = sum(n for _, n in known)
    return sum(v * n for v, n in known) / total if total else None


def watch_live_accuracy(
    config: PipelineConfig, snapshot: SnapshotRef, night: date
) -> LiveAccuracyRef | None:
    """Run `score_live_accuracy` unless ``monitor.enabled`` is off. Scoring never stops the
    night's predictions: a failure is a warning, and the next night scores what this one
    missed (its boundary is the last night that committed)."""
    logger = get_run_logger()
    if not config.monitor.enabled:
        return None
    if config.task != "forecast":
        # A class has no error to average; classifier accuracy against later labels is
        # not built (said in the README).
        logger.info("Live accuracy: scored for forecasts only; this pipeline classifies")
        return None
    result: LiveAccuracyRef | None = warn_on_failure(
        score_live_accuracy,
        config,
        snapshot,
        night,
        what="Live accuracy",
        consequence="predictions go on, and the next night scores what this one missed",
    )
    return result
