"""Where live accuracy is kept night over night, and when a run of bad nights is an alert.

Each night is a folder ``{pipeline_root}/monitor/live/{night}/``: ``detail.parquet`` (the
sums per version, series and step, `seqcast.monitoring.live_accuracy.PAIR_COLUMNS`) and
``summary.json``, written last: a night without its summary does not exist, so a run killed
midway leaves the history as it was, and a rerun of the same night replaces it whole.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

import pandas as pd

from seqcast.io import storage
from seqcast.monitoring.live_accuracy import VersionScore
from seqcast.serving import registry

FOLDER = ("monitor", "live")
SUMMARY = "summary.json"
DETAIL = "detail.parquet"


def history_uri(pipeline_root: str) -> str:
    return storage.join(pipeline_root, *FOLDER)


def night_uri(pipeline_root: str, night: date) -> str:
    return storage.join(history_uri(pipeline_root), night.isoformat())


def read_summaries(pipeline_root: str, before: date | None = None) -> list[dict[str, Any]]:
    """Every committed night's summary, oldest first; with ``before``, only earlier nights."""
    root = history_uri(pipeline_root)
    if not storage.exists(root):
        return []
    summaries = []
    for name in sorted(storage.listdir(root)):
        try:
            night = date.fromisoformat(name)
        except ValueError:
            continue  # a temporary name or a stray file
        if before is not None and night >= before:
            continue
        uri = storage.join(root, name, SUMMARY)
        if storage.exists(uri):
            summaries.append(storage.read_json(uri))
    return summaries


def read_summary(pipeline_root: str, night: date) -> dict[str, Any] | None:
    uri = storage.join(night_uri(pipeline_root, night), SUMMARY)
    return storage.read_json(uri) if storage.exists(uri) else None


def write_night(
    pipeline_root: str, night: date, detail: pd.DataFrame, summary: dict[str, Any]
) -> str:
    """Write one night: the detail, then the summary (the commit). Returns the folder."""
    folder = night_uri(pipeline_root, night)
    storage.write_frame(detail.reset_index(drop=True), storage.join(folder, DETAIL))
    storage.write_json(storage.join(folder, SUMMARY), summary)
    return folder


def test_mae(pipeline_root: str, version: str) -> float | None:
    """The MAE the version scored on its test windows when it was registered (original
    units: the figure live MAE is held against); None for a version without one."""
    if not registry.exists_version(pipeline_root, version):
        return None  # deleted by retention, or another pipeline's file
    predictor = str(registry.read_manifest(pipeline_root, version).get("predictor", "model"))
    metrics = storage.read_json(
        storage.join(registry.version_uri(pipeline_root, version), "metrics.json")
    )
    value = (metrics.get("scores") or {}).get(predictor, {}).get("mae")
    return float(value) if value is not None else None


def version_dicts(scores: list[VersionScore]) -> list[dict[str, Any]]:
    return [{**asdict(s), "ratio": s.ratio} for s in scores]


def degraded_streak(summaries: list[dict[str, Any]]) -> int:
    """Degraded nights in a row at the end of ``summaries`` (nights that scored nothing
    neither break nor extend a streak)."""
    streak = 0
    for summary in reversed(summaries):
        if summary.get("ratio") is None:
            continue
        if not summary.get("degraded"):
            break
        streak += 1
    return streak


def alerted_in_streak(
    summaries: list[dict[str, Any]], streak: int, rerun_of: dict[str, Any] | None = None
) -> bool:
    """Whether an event already went out for the current streak of ``streak`` degraded
    nights: one alert per streak, so a model that stays bad does not retrain every night.

    ``rerun_of`` is the night's own summary from an earlier run of it, if any: a rerun of
    the same night keeps the alert that run sent instead of sending another."""
    if rerun_of is not None and rerun_of.get("event_emitted"):
        return True
    scored = [s for s in summaries if s.get("ratio") is not None]
    return any(s.get("event_emitted") for s in scored[len(scored) - streak :]) if streak else False
