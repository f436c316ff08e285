"""Live accuracy: how the forecasts published on earlier nights fared against the actuals
that have arrived since.

A night's score takes every published forecast (every prediction file whose day's marker
is earlier than the night) whose target timestamp is newer than what the previous night
scored and for which an actual now exists, and records per model version, series and
horizon step the absolute errors, the errors the seasonal-naive forecast made from the
same origin (so the table always says whether the champion still beats the baseline live)
and, where the file has the 10% and 90% quantile columns, how often the actual fell inside
them. Each pair is scored once, on the first night its actual is there: a night's error is
the error of what came true since the night before.

Actuals are read from the night's raw snapshot, parsed strictly as validation parses them;
a value that is null, does not parse, is not finite or is outside the contract's range for
the target is not scored (it would score the sensor, not the model). Only the rows at or
after the oldest stamp a pending forecast (or its seasonal-naive origin) needs are kept, so
memory follows the new rows, not the history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from seqcast.config import SourceSpec
from seqcast.data.contracts import Contract
from seqcast.data.parsing import as_text, parse_numbers, parse_timestamps
from seqcast.data.prediction_scope import row_places
from seqcast.frequency import steps_after
from seqcast.io import storage
from seqcast.modeling.intervals import quantile_column
from seqcast.windows.grid import layout_step
from seqcast.windows.windowing import WindowLayout

SERIES = "series"
STAMP = "stamp_ns"
BAND = (0.1, 0.9)
"""The interval whose coverage is scored (the 80% band every quantile champion writes)."""

PAIR_COLUMNS = (
    "model_version",
    "model_kind",
    SERIES,
    "step",
    "pairs",
    "abs_error",
    "naive_pairs",
    "naive_abs_error",
    "band_pairs",
    "covered",
)
"""A night's detail: one row per version, series and step; sums, so nights add up."""


@dataclass(frozen=True)
class Forecasts:
    """The pending forecasts: one row per (file, series, step), first target's columns
    renamed to ``forecast``, ``low`` and ``high`` (NaN where the file has no band)."""

    frame: (
        pd.DataFrame
    )  # SERIES, origin_ns, STAMP, step, forecast, low, high, model_version, model_kind


def _stamps_ns(values: pd.Series, source: SourceSpec) -> np.ndarray:
    """A prediction file's time column (UTC datetimes, or years/steps for an integer time
    column) as UTC int64 ns, parsed the way validation parses the source's."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return pd.DatetimeIndex(values).tz_convert("UTC").as_unit("ns").asi8
    parsed = parse_timestamps(as_text(values), source.timezone, None, source.time_unit)
    return pd.DatetimeIndex(parsed.values).as_unit("ns").asi8


def newest_stamp(uri: str, timestamp: str) -> int | None:
    """The newest target stamp a prediction file holds, from its footer's statistics (None
    when they are missing): files wholly scored earlier are skipped without reading them."""
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        meta = pq.ParquetFile(handle).metadata
        column = meta.schema.to_arrow_schema().get_field_index(timestamp)
        newest = None
        for group in range(meta.num_row_groups):
            stats = meta.row_group(group).column(column).statistics
            if stats is None or not stats.has_min_max:
                return None
            value = pd.Timestamp(stats.max) if not isinstance(stats.max, int) else None
            if value is None:
                return None  # an integer time column: no cheap conversion, read the file
            value = value.tz_localize("UTC") if value.tzinfo is None else value
            newest = max(newest or value.value, value.value)
        return newest


def pending_forecasts(
    files: list[str],
    layout: WindowLayout,
    source: SourceSpec,
    series_name: str,
    scored_through: int | None,
) -> Forecasts:
    """The forecasts of ``files`` whose target stamp is after ``scored_through`` (UTC ns;
    None: every forecast), first target only."""
    target = layout.target_columns[0]
    low, high = (quantile_column(target, level) for level in BAND)
    parts = []
    for uri in files:
        if scored_through is not None:
            newest = newest_stamp(uri, layout.timestamp)
            if newest is not None and newest <= scored_through:
                continue
        frame = storage.read_parquet(uri).to_pandas()
        stamps = _stamps_ns(frame[layout.timestamp], source)
        keep = np.ones(len(frame), bool) if scored_through is None else stamps > scored_through
        if not keep.any():
            continue
        part = pd.DataFrame(
            {
                SERIES: frame[series_name].astype(str).to_numpy(object),
                "origin_ns": _stamps_ns(frame["origin"], source),
                STAMP: stamps,
                "step": frame["step"].to_numpy(np.int64),
                "forecast": frame[target].to_numpy(np.float64),
                "low": frame[low].to_numpy(np.float64) if low in frame else np.nan,
                "high": frame[high].to_numpy(np.float64) if high in frame else np.nan,
                "model_version": frame["model_version"].astype(str).to_numpy(object),
                "model_kind": frame["model_kind"].astype(str).to_numpy(object),
            }
        )[keep]
        parts.append(part)
    columns = [SERIES, "origin_ns", STAMP, "step", "forecast", "low", "high"]
    if not parts:
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in columns + ["model_version"]})
        return Forecasts(empty.assign(model_kind=pd.Series(dtype=object)))
    frame = pd.concat(parts, ignore_index=True)
    # A forecast published twice (the same origin in two nights' files) counts once.
    return Forecasts(frame.drop_duplicates([SERIES, "origin_ns", "step"], keep="last"))


def naive_stamps(forecasts: Forecasts, layout: WindowLayout, season: int) -> np.ndarray:
    """Where the seasonal-naive forecast of each pending forecast comes from: the step
    ``h - season * ceil(h / season)`` (at or before the origin) of the same origin."""
    frame = forecasts.frame
    if frame.empty:
        return np.zeros(0, np.int64)
    season = max(season, 1)
    steps = frame["step"].to_numpy(np.int64)
    back = steps - season * np.ceil(steps / season).astype(np.int64)  # in (-season, 0]
    grid = layout_step(layout)
    origins = frame["origin_ns"].to_numpy(np.int64)
    out = np.empty(len(frame), np.int64)
    for offset in np.unique(back):
        rows = back == offset
        out[rows] = steps_after(origins[rows], np.asarray([offset]), grid.frequency, grid.timezone)[
            :, 0
        ]
    return out


def read_actuals(
    snapshot_uri: str, source: SourceSpec, contract: Contract, target: str, since_ns: int
) -> pd.DataFrame:
    """The target's actuals at or after ``since_ns`` (UTC ns) from the raw snapshot, row
    group by row group: SERIES, STAMP, ``actual``. Values validation would reject are left
    out (see the module docstring); a repeated (series, stamp) keeps its first row."""
    columns = [source.timestamp, target] + ([source.series_id] if source.series_id else [])
    fs, path = storage.filesystem(snapshot_uri)
    rule = contract.columns.get(target)
    kept = []
    with fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        for group in range(parquet.num_row_groups):
            raw = parquet.read_row_group(group, columns=columns).to_pandas()
            stamps, series = row_places(raw, contract, source)
            stamp_ns = pd.DatetimeIndex(stamps).as_unit("ns").asi8
            values = parse_numbers(raw[target]).values.to_numpy(np.float64)
            good = stamps.notna().to_numpy(bool) & series.notna().to_numpy(bool)
            good &= np.isfinite(values) & (stamp_ns >= since_ns)
            if rule is not None and rule.min is not None:
                good &= values >= rule.min
            if rule is not None and rule.max is not None:
                good &= values <= rule.max
            kept.append(
                pd.DataFrame(
                    {
                        SERIES: series.to_numpy(object)[good].astype(str),
                        STAMP: stamp_ns[good],
                        "actual": values[good],
                    }
                )
            )
    frame = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=[SERIES, STAMP])
    return frame.drop_duplicates([SERIES, STAMP], keep="first")


@dataclass(frozen=True)
class NightScore:
    """One night's live score: the detail (rows of `PAIR_COLUMNS`) and the newest actual
    stamp it saw, which bounds what the next night scores."""

    detail: pd.DataFrame
    scored_through: int | None


def score(forecasts: Forecasts, actuals: pd.DataFrame, naive_from: np.ndarray) -> NightScore:
    """Join the pending forecasts with their actuals (and their seasonal-naive values) and
    sum the errors per version, series and step. Forecasts with no actual yet wait."""
    frame = forecasts.frame.assign(naive_stamp=naive_from)
    lookup = actuals.set_index([SERIES, STAMP])["actual"]
    joined = frame.join(lookup, on=[SERIES, STAMP], how="inner")
    naive = lookup.rename("naive")
    joined = joined.join(naive, on=[SERIES, "naive_stamp"], how="left")
    newest = int(actuals[STAMP].max()) if len(actuals) else None
    if joined.empty:
        return NightScore(pd.DataFrame(columns=list(PAIR_COLUMNS)), newest)
    error = (joined["forecast"] - joined["actual"]).abs()
    naive_error = (joined["naive"] - joined["actual"]).abs()
    banded = joined["low"].notna() & joined["high"].notna()
    inside = banded & (joined["low"] <= joined["actual"]) & (joined["actual"] <= joined["high"])
    parts = joined.assign(
        pairs=1,
        abs_error=error,
        naive_pairs=naive_error.notna().astype(np.int64),
        naive_abs_error=naive_error.fillna(0.0),
        band_pairs=banded.astype(np.int64),
        covered=inside.astype(np.int64),
    )
    keys = ["model_version", "model_kind", SERIES, "step"]
    sums = ["pairs", "abs_error", "naive_pairs", "naive_abs_error", "band_pairs", "covered"]
    detail = parts.groupby(keys, sort=True)[sums].sum().reset_index()
    return NightScore(detail[list(PAIR_COLUMNS)], newest)


@dataclass(frozen=True)
class VersionScore:
    """A version's live figures on one night, beside its test-time MAE."""

    version: str
    kind: str
    pairs: int
    live_mae: float
    naive_mae: float | None
    coverage: float | None
    test_mae: float | None

    @property
    def ratio(self) -> float | None:
        """Live MAE over test MAE: above ``monitor.degradation`` the night is degraded."""
        if self.test_mae is None or not self.test_mae > 0:
            return None
        return self.live_mae / self.test_mae


def _mean(total: float, count: int) -> float | None:
    return total / count if count else None


def version_scores(detail: pd.DataFrame, test_mae: dict[str, float | None]) -> list[VersionScore]:
    """Per model version: live MAE, seasonal-naive MAE on the same pairs, 80% coverage."""
    out = []
    for (version, kind), rows in detail.groupby(["model_version", "model_kind"], sort=True):
        pairs = int(rows["pairs"].sum())
        out.append(
            VersionScore(
                version=str(version),
                kind=str(kind),
                pairs=pairs,
                live_mae=float(rows["abs_error"].sum()) / pairs,
                naive_mae=_mean(
                    float(rows["naive_abs_error"].sum()), int(rows["naive_pairs"].sum())
                ),
                coverage=_mean(float(rows["covered"].sum()), int(rows["band_pairs"].sum())),
                test_mae=test_mae.get(str(version)),
            )
        )
    return out


def night_ratio(scores: list[VersionScore]) -> float | None:
    """The night's live MAE over the test MAE the scored versions promised, each version
    weighted by its pairs; None when no scored version has a test MAE."""
    known = [s for s in scores if s.ratio is not None]
    if not known:
        return None
    live = sum(s.live_mae * s.pairs for s in known)
    promised = sum((s.test_mae or 0.0) * s.pairs for s in known)
    return live / promised if promised > 0 else None


def per_step(detail: pd.DataFrame) -> pd.DataFrame:
    """Live and seasonal-naive MAE per horizon step, over every version scored."""
    sums = detail.groupby("step", sort=True)[
        ["pairs", "abs_error", "naive_pairs", "naive_abs_error"]
    ].sum()
    return pd.DataFrame(
        {
            "step": sums.index.to_numpy(np.int64),
            "pairs": sums["pairs"].to_numpy(np.int64),
            "live_mae": (sums["abs_error"] / sums["pairs"]).to_numpy(np.float64),
            "naive_mae": (
                sums["naive_abs_error"] / sums["naive_pairs"].replace(0, np.nan)
            ).to_numpy(np.float64),
        }
    )
