"""Predict: the champion's forecast (or class) from the latest ``lookback`` steps of each series
(a network), or from as much of each series' history as its kind needs (a statistical
champion: last value, seasonal naive one season back, however long the season).

Batch prediction runs per shard of series (`predict_part`: one row range of the sorted
validated table, one staged Parquet part); `combine_parts` then streams the parts, in
shard order, into the one output file, so the output does not depend on how many tasks
ran or where.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from seqcast.data.prediction_scope import PredictionScope
from seqcast.errors import DataContractError
from seqcast.frequency import NS_PER_SECOND, duration_alias
from seqcast.io import storage
from seqcast.modeling import autoregressive
from seqcast.modeling.forward import batched_forecasts, forward_function
from seqcast.modeling.gate import STATISTICAL_KINDS
from seqcast.modeling.intervals import predictor_of, quantile_column, shifted
from seqcast.modeling.statistical import EtsFit, fit_history, forecast_latest
from seqcast.records import PredictionPartRef, ShardRef
from seqcast.serving.future_inputs import covariate_inputs, given_columns, split_future
from seqcast.serving.registry import LoadedModel
from seqcast.serving.sequence_prediction import Ranges, classify_sequences
from seqcast.windows.grid import future_stamps, layout_step, report_time
from seqcast.windows.series_source import read_rows
from seqcast.windows.windowing import WindowLayout, segment_ids

logger = logging.getLogger(__name__)


def prediction_scope(kind: str, layout: WindowLayout, params: dict[str, Any]) -> PredictionScope:
    """The rows of each series a champion reads to predict, so the prediction check covers
    those and no older ones (`seqcast.data.prediction_scope`).

    A network reads its last ``lookback`` steps, gap-free, and, trained with
    ``source.future_features``, the ``horizon`` future rows after them; last value and
    seasonal naive at most one season (and the contract asks one lookback of every series;
    seasonal naive its season gap-free); ETS refits on up to max(10 seasons, 1000) recent
    values (`seqcast.modeling.statistical.fit_history`), gaps interpolated; AR its order's
    latest values (at least one lookback), gaps interpolated; a whole-sequence classifier
    reads each sequence whole.
    """
    if layout.per == "sequence":
        return PredictionScope(rows=None, min_rows=1)
    alias, timezone = grid_alias(layout), layout.timezone
    if kind == "seasonal_naive":
        needed = max(layout.lookback, int(params.get("season") or 0))
        return PredictionScope(needed, needed, gap_free=needed, frequency=alias, timezone=timezone)
    if kind == "ets":
        seasons = [
            EtsFit.from_json(fit).season or 0
            for columns in params.get("fits", {}).values()
            for fit in columns.values()
        ]
        rows = max(layout.lookback, fit_history(max(seasons, default=0) or None))
        return PredictionScope(rows=rows, min_rows=layout.lookback)  # gaps interpolated
    if kind == "ar":
        orders = [
            autoregressive.ArFit.from_json(fit).order
            for columns in params.get("fits", {}).values()
            for fit in columns.values()
        ]
        rows = max(layout.lookback, max(orders, default=0))
        return PredictionScope(rows=rows, min_rows=layout.lookback)  # gaps interpolated
    if kind in STATISTICAL_KINDS:  # last value: one row
        return PredictionScope(rows=layout.lookback, min_rows=layout.lookback)
    future = layout.horizon if given_columns(layout) and layout.task == "forecast" else 0
    return PredictionScope(
        rows=layout.lookback,
        min_rows=layout.lookback,
        gap_free=layout.lookback,
        future_steps=future,
        frequency=alias,
        timezone=timezone,
    )


def grid_alias(layout: WindowLayout) -> str:
    """The alias of the grid a layout's windows were cut on (old layouts: fixed seconds)."""
    if layout.frequency is not None:
        return layout.frequency
    return duration_alias(int(round(layout.step_seconds * NS_PER_SECOND)))


def latest_windows(frame: pd.DataFrame, champion: LoadedModel) -> tuple[np.ndarray, pd.DataFrame]:
    """The last ``lookback`` rows of each series, scaled: (series, lookback, n_inputs).

    Returns the stacked inputs and one row per series with its id and last timestamp.
    Raises `DataContractError` for a series that is too short or ends in a gap.
    """
    layout, scaler = champion.layout, champion.scaler
    blocks, index = [], []
    for series, rows in frame.groupby(layout.series_column, sort=True):
        tail = rows.tail(layout.lookback)
        segments = segment_ids(tail[layout.timestamp], layout)
        if len(tail) < layout.lookback or segments[0] != segments[-1]:
            raise DataContractError(
                f"series {series!r} has no gap-free run of the last {layout.lookback} steps "
                f"(lookback) to predict from; it has {len(rows)} row(s) ending at "
                f"{rows[layout.timestamp].iloc[-1]}. Supply the full lookback period."
            )
        values = tail[layout.input_columns].to_numpy(np.float32)
        blocks.append(scaler.transform(values, str(series)))
        index.append({"series": str(series), "origin": tail[layout.timestamp].iloc[-1]})
    return np.stack(blocks), pd.DataFrame(index)  # (series, lookback, features)


def statistical_forecasts(
    frame: pd.DataFrame, champion: LoadedModel
) -> tuple[np.ndarray, pd.DataFrame]:
    """A statistical champion's forecasts, in original units: (series * horizon, n_targets).

    last_value repeats each series' last observation; seasonal_naive repeats the values
    one season back, read from the series' rows however far back that is (it needs the
    last ``season`` steps, gap-free). Returns the values (series-major, then step) and one
    row per series with its id and last timestamp.

    Raises:
        DataContractError: a series has fewer gap-free recent rows than the kind needs.
    """
    layout = champion.layout
    if champion.kind in ("ets", "ar"):
        return fitted_forecasts(frame, champion)
    season = int(champion.params.get("season", 0)) if champion.kind == "seasonal_naive" else 0
    if champion.kind not in ("last_value", "seasonal_naive"):
        raise DataContractError(
            f"champion {champion.version} is a {champion.kind!r} model, which batch prediction "
            "cannot serve; promote another version (`seqcast models list`)."
        )
    needed = max(season, 1)
    h = np.arange(1, layout.horizon + 1)
    # Position from the end of the series' rows: step h repeats the row one season back.
    back = needed - (h - 1) % needed if season else np.ones_like(h)
    blocks, index = [], []
    for series, rows in frame.groupby(layout.series_column, sort=True):
        tail = rows.tail(needed)
        segments = segment_ids(tail[layout.timestamp], layout)
        if len(tail) < needed or segments[0] != segments[-1]:
            raise DataContractError(
                f"series {series!r} has no gap-free run of the last {needed} steps (the "
                f"{champion.kind} champion's season) to forecast from; it has {len(rows)} "
                f"row(s) ending at {rows[layout.timestamp].iloc[-1]}. Supply that history."
            )
        values = tail[layout.target_columns].to_numpy(np.float64)  # (needed, n_targets)
        blocks.append(values[len(values) - back])  # (horizon, n_targets)
        index.append({"series": str(series), "origin": tail[layout.timestamp].iloc[-1]})
    return np.concatenate(blocks), pd.DataFrame(index)


def fitted_forecasts(frame: pd.DataFrame, champion: LoadedModel) -> tuple[np.ndarray, pd.DataFrame]:
    """An ETS or AR champion's forecasts, (series * horizon, n_targets) in original units.

    ETS: each series' training fit picks its variant, refitted on the series' rows here
    (`seqcast.modeling.statistical.forecast_latest`). AR: each series' training
    coefficients applied to its latest values
    (`seqcast.modeling.autoregressive.forecast_latest`). Gaps on the grid are interpolated.
    A series the champion never saw has no fit: it gets its last value, with a warning.
    """
    layout = champion.layout
    fits = champion.params.get("fits", {})
    step = layout_step(layout)
    blocks, index, unseen = [], [], []
    for series, rows in frame.groupby(layout.series_column, sort=True):
        stamps = pd.DatetimeIndex(pd.to_datetime(rows[layout.timestamp], utc=True)).as_unit("ns")
        position, _ = step.offsets(stamps.asi8)
        values = rows[layout.target_columns].to_numpy(np.float64)  # (rows, n_targets)
        grid = np.full((int(position[-1]) + 1, values.shape[1]), np.nan)
        grid[position] = values
        out = np.repeat(values[-1:], layout.horizon, axis=0)  # (horizon, n_targets)
        if str(series) in fits:
            for k, column in enumerate(layout.target_columns):
                stored = fits[str(series)][column]
                if champion.kind == "ar":
                    ar = autoregressive.ArFit.from_json(stored)
                    out[:, k] = autoregressive.forecast_latest(grid[:, k], ar, layout.horizon)
                else:
                    fit = EtsFit.from_json(stored)
                    out[:, k] = forecast_latest(grid[:, k], fit, layout.horizon)
        else:
            unseen.append(str(series))
        blocks.append(out)
        index.append({"series": str(series), "origin": rows[layout.timestamp].iloc[-1]})
    if unseen:
        logger.warning(
            "%s champion %s has no fit for %d series (%s): they get their last value",
            champion.kind.upper(),
            champion.version,
            len(unseen),
            ", ".join(unseen[:5]),
        )
    return np.concatenate(blocks), pd.DataFrame(index)


_compiling = threading.Lock()


def predict_function(champion: LoadedModel) -> Callable[..., Any]:
    """`forward_function` of a champion's network, made once per loaded model and kept on
    ``champion``: shards of one run share one loaded model (`tasks.predict`)."""
    model = champion.model
    if model is None:
        raise ValueError(f"champion {champion.version} is a {champion.kind!r} model: no network")
    with _compiling:
        cached = getattr(champion, "_forward", None)
        if cached is None:
            cached = forward_function(model)
            object.__setattr__(champion, "_forward", cached)  # frozen: a cache, not state
    return cast(Callable[..., Any], cached)


def network_forecasts(
    champion: LoadedModel, model_input: Any
) -> tuple[np.ndarray, np.ndarray | None]:
    """`batched_forecasts` of ``champion.model`` through its cached forward pass."""
    forward = predict_function(champion)
    return batched_forecasts(champion.model, forward, model_input)


def network_outputs(champion: LoadedModel, model_input: Any) -> np.ndarray:
    """The point forecasts (or class probabilities) of `network_forecasts`."""
    return network_forecasts(champion, model_input)[0]


def interval_levels(champion: LoadedModel) -> list[float]:
    """The quantile levels of a champion's intervals (recorded by its evaluation; [] for
    a version evaluated without them)."""
    return [float(q) for q in champion.metrics.get("intervals", {}).get("quantiles", [])]


def _offsets(champion: LoadedModel, levels: list[float]) -> np.ndarray | None:
    """The champion's stored interval offsets (n_quantiles, horizon, n_targets) in scaled
    units: residual quantiles of a statistical kind, calibration shifts of a network."""
    stored = champion.metrics.get("intervals", {}).get("offsets", {})
    values = stored.get(predictor_of(champion.kind, champion.params))
    if values is None or not levels:
        return None
    return np.asarray(values, dtype=np.float64)


def _series_spread(champion: LoadedModel, index: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each series' target (mean, std) from the champion's scaler, (series, 1, n_targets)."""
    columns = [champion.scaler.columns.index(c) for c in champion.layout.target_columns]
    stats = [champion.scaler.stats_for(s) for s in index["series"]]
    mean = np.stack([m[columns] for m, _ in stats])[:, None, :]
    std = np.stack([d[columns] for _, d in stats])[:, None, :]
    return mean, std


def predict_frame(
    frame: pd.DataFrame, champion: LoadedModel, ranges: Ranges | None = None
) -> pd.DataFrame:
    """Predictions for every series of a validated frame, in original units.

    Forecast: one row per series and horizon step. Classify: one row per series, with the
    class and its probability at ``horizon`` steps after the last observed step; a whole
    sequence classifier: one row per sequence with every class's probability, flagged
    where a value lies outside ``ranges`` (`classify_sequences`).
    """
    layout = champion.layout
    series_name = layout.series_column if not layout.series_column.startswith("__") else "series"
    if layout.per == "sequence":
        neighbours = champion.neighbours  # a nearest_neighbour champion: 1-NN, no network
        outputs_of = (
            neighbours.probabilities
            if neighbours is not None
            else lambda x: network_outputs(champion, x)
        )
        return classify_sequences(frame, champion, outputs_of, series_name, ranges)
    frame, future = split_future(frame, layout)  # future rows: known-future covariates
    if champion.model is None:
        values, index = statistical_forecasts(frame, champion)
        levels = interval_levels(champion)
        offsets = _offsets(champion, levels)
        bands = None
        if offsets is not None:
            # Residual quantiles are in scaled units: each series' spread widens its band.
            _, spread = _series_spread(champion, index)
            point = values.reshape(len(index), layout.horizon, -1)
            bands = np.sort(
                point[..., None] + np.moveaxis(offsets, 0, -1)[None] * spread[..., None], axis=-1
            )  # (series, horizon, n_targets, n_quantiles)
        return forecast_rows(values, index, layout, series_name, bands, levels)
    inputs, index = latest_windows(frame, champion)
    covariates = covariate_inputs(frame, future, index, layout)
    model_input = {"window": inputs, **covariates} if covariates else inputs
    outputs, quantiles = network_forecasts(champion, model_input)
    origin_ns = pd.DatetimeIndex(index["origin"]).as_unit("ns").asi8
    unit = pd.DatetimeIndex(index["origin"]).unit
    if layout.task == "classify":
        best = np.argmax(outputs, axis=-1)
        return pd.DataFrame(
            {
                series_name: index["series"],
                "origin": report_time(origin_ns, layout, unit),
                layout.timestamp: report_time(
                    future_stamps(origin_ns, np.asarray([layout.horizon]), layout)[:, 0],
                    layout,
                    unit,
                ),
                layout.target_columns[0]: [layout.classes[i] for i in best],
                "probability": outputs[np.arange(len(best)), best].astype(np.float64),
            }
        )
    # outputs: (series, horizon, n_targets), each row in its series' scale; undone at once.
    mean, std = _series_spread(champion, index)
    values = (outputs * std + mean).astype(np.float64).reshape(-1, len(layout.target_columns))
    bands, levels = None, []
    if quantiles is not None:
        levels = interval_levels(champion) or _head_levels(champion)
        shifts = _offsets(champion, levels)  # conformal calibration, when the run made one
        if shifts is not None:
            quantiles = shifted(quantiles, shifts)
        bands = quantiles * std[..., None] + mean[..., None]  # (series, horizon, t, q)
    return forecast_rows(values, index, layout, series_name, bands, levels)


def _head_levels(champion: LoadedModel) -> list[float]:
    from seqcast.modeling.networks import model_quantiles  # Keras: loaded with the model

    assert champion.model is not None
    return model_quantiles(champion.model)


def forecast_rows(
    values: np.ndarray,
    index: pd.DataFrame,
    layout: WindowLayout,
    series_name: str,
    quantiles: np.ndarray | None = None,
    levels: list[float] | None = None,
) -> pd.DataFrame:
    """One row per series and horizon step from ``values`` (series * horizon, n_targets),
    in original units, series-major; with ``quantiles`` (series, horizon, n_targets,
    len(levels)) one more column per target and level, ``{target}_q{level}``."""
    origin_ns = pd.DatetimeIndex(index["origin"]).as_unit("ns").asi8
    unit = pd.DatetimeIndex(index["origin"]).unit
    n, horizon = len(index), layout.horizon
    steps = np.tile(np.arange(1, horizon + 1, dtype=np.int32), n)
    ahead = future_stamps(origin_ns, np.arange(1, horizon + 1), layout)  # (series, horizon)
    result = pd.DataFrame(
        {
            series_name: np.repeat(index["series"].to_numpy(object), horizon),
            "origin": report_time(np.repeat(origin_ns, horizon), layout, unit),
            layout.timestamp: report_time(ahead.reshape(-1), layout, unit),
            "step": steps,
        }
    )
    for k, column in enumerate(layout.target_columns):
        result[column] = values[:, k]
        if quantiles is not None:
            for j, level in enumerate(levels or []):
                result[quantile_column(column, level)] = (
                    quantiles[:, :, k, j].reshape(-1).astype(np.float64)
                )
    return result


def predict_part(
    validated_uri: str,
    shard: ShardRef,
    champion: LoadedModel,
    out_uri: str,
    flow_run_id: str,
    ranges: Ranges | None = None,
) -> PredictionPartRef:
    """Predict the series of one shard of the validated table; write them to ``out_uri``
    (``ranges``: the prediction contract's, to flag sequences outside them)."""
    frame = read_rows(validated_uri, shard.first_row, shard.rows).to_pandas()
    predictions = predict_frame(frame, champion, ranges)
    predictions["model_version"] = champion.version
    predictions["model_kind"] = champion.kind
    predictions["flow_run_id"] = flow_run_id
    storage.write_frame(predictions, out_uri)
    observed, _ = split_future(frame, champion.layout)
    origin = pd.Timestamp(observed[champion.layout.timestamp].max())
    return PredictionPartRef(
        uri=out_uri, rows=len(predictions), series=shard.series, origin=origin.isoformat()
    )


def combine_parts(parts: list[PredictionPartRef], uri: str) -> int:
    """Stream the parts' row groups, in order, into one Parquet file written atomically.

    Returns:
        The rows written.
    """
    if not parts:
        raise ValueError("`parts` must name at least one staged prediction file")
    rows = 0
    with storage.atomic_writer(uri) as handle:
        writer = None
        for part in parts:
            part_fs, path = storage.filesystem(part.uri)
            with part_fs.open(path, "rb") as source:
                table = pq.ParquetFile(source)
                if writer is None:
                    writer = pq.ParquetWriter(handle, table.schema_arrow, compression="zstd")
                for group in range(table.num_row_groups):
                    chunk = table.read_row_group(group)
                    writer.write_table(chunk)
                    rows += chunk.num_rows
        assert writer is not None
        writer.close()
    return rows


STALE_STAGING_SECONDS = 6 * 3600
"""Staged prediction parts older than this belong to a run that died: removed."""


def remove_stale_staging(predictions_uri: str) -> list[str]:
    """Remove ``.staging-*`` folders of crashed runs under ``predictions_uri``.

    A folder goes when its newest file is older than `STALE_STAGING_SECONDS` (or it holds
    none), so a run still predicting beside this one keeps its parts. Returns the removed
    folders' names.
    """
    fs, _ = storage.filesystem(predictions_uri)
    now = datetime.now(UTC)
    removed = []
    for name in storage.listdir(predictions_uri):
        if not name.startswith(".staging-"):
            continue
        _, folder = storage.filesystem(storage.join(predictions_uri, name))
        ages = [(now - fs.modified(f)).total_seconds() for f in fs.find(folder)]
        if not ages or min(ages) > STALE_STAGING_SECONDS:
            fs.rm(folder, recursive=True)
            removed.append(name)
    return removed
