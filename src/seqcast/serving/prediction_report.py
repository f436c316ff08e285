"""What the prediction artifact shows: the counts, the model, the file, and the forecasts of
the series the champion fitted worst, after their recent history and with their band.

A planner opening the run wants to know whether the night's forecasts can be used: how many
series got one, which were set aside and why, which model made them, and a look at the
forecasts most likely to be wrong (the worst-fitting series of the champion's evaluation,
not the first ones alphabetically). Prediction files and validated tables can hold millions
of rows: only the plotted series' rows are read (pyarrow filters on the series column, whose
sorted row groups let whole groups be skipped).
"""

from __future__ import annotations

import base64
import logging
import math
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from seqcast.data.validation_report import set_aside_lines
from seqcast.io import storage
from seqcast.modeling import plots
from seqcast.modeling.plots import PredictionPanel
from seqcast.serving import registry
from seqcast.windows.grid import report_time
from seqcast.windows.windowing import WindowLayout

logger = logging.getLogger(__name__)

PLOTTED_SERIES = 4
SET_ASIDE_SHOWN = 5
"""Set-aside series listed with their reasons in the artifact; the quarantine file has all."""


@dataclass(frozen=True)
class Columns:
    """Where a table keeps the series name, the time and the (first) target."""

    series: str
    time: str
    target: str


def file_columns(layout: WindowLayout) -> Columns:
    """The prediction file's columns (`seqcast.serving.prediction.predict_frame` names a
    single-series source's series column ``series``)."""
    series = layout.series_column if not layout.series_column.startswith("__") else "series"
    return Columns(series, layout.timestamp, layout.target_columns[0])


def quantile_columns(columns: Iterable[str], target: str) -> list[tuple[float, str]]:
    """The ``{target}_q{q}`` columns (e.g. ``load_q0.1``) as (q, column), lowest q first."""
    pattern = re.compile(rf"{re.escape(target)}_q(\d*\.?\d+)")
    found = [(float(m.group(1)), c) for c in columns if (m := pattern.fullmatch(c))]
    return sorted(found)


def champion_fit(pipeline_root: str, version: str) -> tuple[str, dict[str, float]]:
    """The version's predictor name and its per-series test MAE from its evaluation.

    A version keeps the metrics of the run that registered it (``metrics.json``, whose
    ``per_series_mae`` maps series -> predictor -> MAE); the version's own predictor is
    ``model`` for a network, else the challenger's name (``ets``, ``seasonal_naive_24``).
    Empty where the evaluation stored none (a classifier, a version from before).
    """
    predictor = str(registry.read_manifest(pipeline_root, version).get("predictor", "model"))
    metrics = storage.read_json(
        storage.join(registry.version_uri(pipeline_root, version), "metrics.json")
    )
    per_series = metrics.get("per_series_mae") or {}
    return predictor, {str(s): float(m[predictor]) for s, m in per_series.items() if predictor in m}


def worst_fitting(mae: dict[str, float], skip: Collection[str], n: int) -> list[str]:
    """Up to ``n`` series with the highest test MAE, worst first, leaving out ``skip``
    (series set aside this run: they have no forecast) and undefined errors."""
    if n < 0:
        raise ValueError(f"`n` must be a non-negative integer. Received: n={n}")
    scored = [(s, e) for s, e in mae.items() if s not in skip and math.isfinite(e)]
    scored.sort(key=lambda item: (-item[1], item[0]))
    return [s for s, _ in scored[:n]]


def read_series(uri: str, column: str, series: list[str], columns: list[str]) -> pd.DataFrame:
    """Only the rows of ``series`` (and only ``columns``) of the Parquet file at ``uri``."""
    if not series:
        return pd.DataFrame(columns=columns)
    return storage.read_parquet(uri, columns, filters=[(column, "in", series)]).to_pandas()


def first_series(uri: str, column: str, n: int) -> list[str]:
    """The first ``n`` series of a Parquet file, read a row group at a time."""
    fs, path = storage.filesystem(uri)
    names: dict[str, None] = {}
    with fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        for group in range(parquet.num_row_groups):
            chunk = parquet.read_row_group(group, columns=[column]).column(0)
            names.update(dict.fromkeys(str(s) for s in chunk.unique().to_pylist()))
            if len(names) >= n:
                break
    return list(names)[:n]


def recent_history(
    validated_uri: str,
    source: Columns,
    series: list[str],
    rows: int,
    layout: WindowLayout,
) -> pd.DataFrame:
    """Each series' last ``rows`` observed values from the validated table, under the
    prediction file's column names and with times as the file reports them."""
    columns = [source.series, source.time, source.target]
    frame = read_series(validated_uri, source.series, series, columns)
    # Known-future rows (target blank, after the origin) are inputs, not observations.
    frame = frame.dropna(subset=[source.target])
    frame = frame.sort_values([source.series, source.time]).groupby(source.series).tail(rows)
    named = file_columns(layout)
    stamps = pd.DatetimeIndex(frame[source.time]).as_unit("ns").asi8
    return pd.DataFrame(
        {
            named.series: frame[source.series].astype(str).to_numpy(),
            named.time: report_time(stamps, layout),
            named.target: frame[source.target].to_numpy(np.float64),
        }
    )


def _plot_time(values: pd.Series | np.ndarray) -> np.ndarray:
    """Times matplotlib plots as they are: UTC datetimes without a zone, or integers."""
    values = pd.Series(values)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    return values.to_numpy()


def panels(
    forecasts: pd.DataFrame,
    history: pd.DataFrame,
    columns: Columns,
    order: list[str],
    notes: dict[str, str] | None = None,
) -> list[PredictionPanel]:
    """One panel per series of ``order`` that has forecasts, in that order.

    The band spans the lowest and the highest quantile column when the file has two or
    more (``{target}_q{q}``); without them the panel has none.
    """
    quantiles = quantile_columns(forecasts.columns, columns.target)
    label = f"q{quantiles[0][0]:g}-q{quantiles[-1][0]:g}" if len(quantiles) > 1 else ""
    result = []
    for name in order:
        rows = forecasts[forecasts[columns.series].astype(str) == name].sort_values(columns.time)
        if rows.empty:
            continue
        past = history[history[columns.series] == name].sort_values(columns.time)
        band = None
        if len(quantiles) > 1:
            low, high = quantiles[0][1], quantiles[-1][1]
            band = (rows[low].to_numpy(np.float64), rows[high].to_numpy(np.float64))
        result.append(
            PredictionPanel(
                series=name,
                history_time=_plot_time(past[columns.time]),
                history=past[columns.target].to_numpy(np.float64),
                time=_plot_time(rows[columns.time]),
                forecast=rows[columns.target].to_numpy(np.float64),
                band=band,
                band_label=label,
                note=(notes or {}).get(name, ""),
            )
        )
    return result


def history_rows(layout: WindowLayout) -> int:
    """Observations shown before the origin: the input window, but at least two horizons and
    at most four, so the forecast stays readable beside a long lookback."""
    return max(2 * layout.horizon, min(layout.lookback, 4 * layout.horizon))


def parquet_columns(uri: str) -> list[str]:
    """A Parquet file's column names, from its footer."""
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        return list(pq.ParquetFile(handle).schema_arrow.names)


def forecast_plot(
    pipeline_root: str,
    version: str,
    layout: WindowLayout,
    predictions_uri: str,
    validated_uri: str,
    source: Columns,
    skip: Collection[str],
    n: int = PLOTTED_SERIES,
) -> tuple[bytes | None, str]:
    """The PNG of up to ``n`` series' forecasts after their recent history, and a sentence
    saying which series it shows and why.

    The series are those ``version`` fitted worst at its evaluation (`champion_fit`,
    `worst_fitting`), leaving out ``skip``; where it stored no per-series error, the
    file's first ``n`` series, said so in the log and the sentence.
    """
    if layout.task != "forecast" or layout.per == "sequence":
        return None, "No plot: a classifier's predictions are classes, not values over time."
    named = file_columns(layout)
    quantiles = quantile_columns(parquet_columns(predictions_uri), named.target)
    wanted = [named.series, named.time, named.target, *(c for _, c in quantiles)]
    predictor, mae = champion_fit(pipeline_root, version)
    # Twice as many as shown: a worst series may be missing from tonight's file.
    candidates = worst_fitting(mae, skip, 2 * n)
    forecasts = read_series(predictions_uri, named.series, candidates, wanted)
    present = set(forecasts[named.series].astype(str))
    chosen = [s for s in candidates if s in present][:n]
    if chosen:
        notes = {s: f"worst #{rank}, test MAE {mae[s]:.4g}" for rank, s in enumerate(chosen, 1)}
        note = (
            f"Below: the {len(chosen)} series the model fitted worst at its evaluation "
            f"(per-series test MAE of `{predictor}`), worst first: "
            + ", ".join(f"`{s}` ({mae[s]:.4g})" for s in chosen)
        )
    else:
        chosen = first_series(predictions_uri, named.series, n)
        forecasts = read_series(predictions_uri, named.series, chosen, wanted)
        notes = {}
        logger.info(
            "Model version %s stored no per-series test error for the series predicted; the "
            "prediction artifact plots the first %d series of %s instead",
            version,
            len(chosen),
            predictions_uri,
        )
        note = (
            f"Below: the first {len(chosen)} series of the file (the model stored no "
            "per-series test error to pick the worst-fitting ones)"
        )
    if not chosen:
        return None, "No plot: the prediction file holds no series."
    note += (
        f". Shaded: between the `{quantiles[0][1]}` and `{quantiles[-1][1]}` forecasts."
        if len(quantiles) > 1
        else ". No band: the file has no quantile columns."
    )
    history = recent_history(validated_uri, source, chosen, history_rows(layout), layout)
    drawn = panels(forecasts, history, named, chosen, notes)
    return plots.predictions(drawn, named.target), note


def set_aside_of(report_uri: str) -> tuple[dict[str, list[str]], str | None]:
    """The series the prediction check set aside, with their causes, and the quarantine
    file holding their rows, from its ``report.json`` (`seqcast.data.validation_report`)."""
    if not report_uri:
        return {}, None
    document = storage.read_json(report_uri)
    return dict(document.get("series_set_aside") or {}), document.get("quarantine_uri")


@dataclass(frozen=True)
class PredictionSummary:
    """What one prediction run wrote, for the artifact."""

    pipeline: str
    day: str
    rows: int
    series: int
    model_version: str
    model_kind: str
    uri: str
    set_aside: dict[str, list[str]]
    quarantine_uri: str | None
    plot_note: str
    """One sentence on which series the plot shows and why (or why there is none)."""
    image: bytes | None = None


def markdown(summary: PredictionSummary) -> str:
    """The artifact's markdown: what was written and by which model, the series set aside
    with their reasons, then the plot (an inline PNG: the UI shows no file links)."""
    s = summary
    lines = [
        f"# {s.pipeline}: predictions of {s.day}",
        "",
        f"- rows written: **{s.rows}**",
        f"- series predicted: **{s.series}**",
        f"- series set aside: **{len(s.set_aside)}**",
        f"- model: version `{s.model_version}`, kind **{s.model_kind}**",
        f"- prediction file: `{s.uri}`",
    ]
    if s.set_aside:
        where = f" Their rows are in `{s.quarantine_uri}`." if s.quarantine_uri else ""
        lines += ["", f"Set aside for this run (not predicted): {len(s.set_aside)}.{where}", ""]
        lines += set_aside_lines(s.set_aside, SET_ASIDE_SHOWN)
    lines += ["", s.plot_note]
    if s.image is not None:
        encoded = base64.b64encode(s.image).decode()
        lines += ["", f"![forecasts](data:image/png;base64,{encoded})"]
    return "\n".join(lines) + "\n"
