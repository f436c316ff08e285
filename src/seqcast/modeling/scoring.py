"""A forecaster's test scores, accumulated block by block of the window store.

Evaluation once read the whole test split and predicted it in one call, so its memory
followed the test windows: at a million rows it held about 240 MiB above training's peak,
and the nightly flow's peak grew 1.33x from 100,000 to 1,000,000 rows (issue 18). Here each
block of the store is read, cut into its test windows, forecast by every predictor and
scored, and only what the report needs is kept:

- metric sums per predictor (`evaluation.ForecastSums`, `intervals.IntervalSums`);
- each series' MAE: a series lies in one block, so a block's per-series figures (and each
  series' MASE scale) are final when the block is done;
- the forecast rows, written to ``test_forecasts.parquet`` row group by row group;
- which block holds each series, so the plot's worst series are read again afterwards.

Interval offsets come from the validation windows (`validation_sample`): all of them up to
`CALIBRATION_WINDOWS`, an evenly spaced sample of that many beyond, so that memory too
stays bounded. Scores equal those of one pass over arrays of the whole split up to float
rounding (`tests/unit/test_scoring.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from seqcast.io import row_groups
from seqcast.modeling import evaluation, intervals, plots
from seqcast.modeling.challengers import ChallengerFits, block_forecasts, forecast_names
from seqcast.windows.scaling import Scaler
from seqcast.windows.store import StoreReader
from seqcast.windows.windowing import (
    SeriesWindows,
    WindowArrays,
    WindowLayout,
    concat_windows,
    cut_windows,
)

CALIBRATION_WINDOWS = 100_000
"""Validation windows that set the interval offsets at most: empirical quantiles of 100,000
residuals per step are as good as of more, and memory stays bounded."""
EXAMPLES = 3
"""Worst series plotted in the report."""

NetworkForecaster = Callable[[WindowArrays], tuple[np.ndarray, np.ndarray | None]]
"""A network's point forecasts and quantiles (None without a quantile head) of some windows,
in the run's scaled units."""
ChampionForecaster = Callable[[WindowArrays, dict[str, np.ndarray]], np.ndarray]
"""The champion's forecasts of some windows in original units, given the statistical
challengers' (scaled) forecasts of the same windows."""


def _blocks(uri: str, split: str) -> Iterator[tuple[int, SeriesWindows]]:
    """Each block of the store that has windows of ``split``, with its number."""
    reader = StoreReader(uri)
    try:
        for number in range(reader.n_blocks):
            if reader.count(split, number):
                yield number, reader.block(number)
    finally:
        reader.close()


@dataclass(frozen=True)
class ValidationSample:
    """The validation windows intervals are calibrated on (scaled units)."""

    y: np.ndarray
    """(windows, horizon, n_targets) actual values."""
    challengers: dict[str, np.ndarray]
    """The statistical challengers' forecasts of the same windows (`block_forecasts`)."""
    quantiles: np.ndarray | None
    """The network's quantiles of them, when asked for."""
    of: int
    """Validation windows in the store (the sample holds every one up to the cap)."""


def validation_sample(
    uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    seasons: Sequence[int],
    fits: ChallengerFits,
    network: NetworkForecaster | None = None,
    cap: int = CALIBRATION_WINDOWS,
) -> ValidationSample:
    """Every ``k``-th validation window (``k`` = the smallest that keeps at most ``cap``;
    1 for all), with the challengers' and, given ``network``, its quantile forecasts."""
    total = StoreReader(uri).count("val")
    every = max(1, -(-total // cap))
    seen = 0
    ys: list[np.ndarray] = []
    quantiles: list[np.ndarray] = []
    challengers: dict[str, list[np.ndarray]] = {
        name: [] for name in forecast_names(seasons, fits.kinds)
    }
    for _, block in _blocks(uri, "val"):
        starts = block.starts["val"]
        keep = np.flatnonzero((seen + np.arange(len(starts))) % every == 0)
        seen += len(starts)
        if not len(keep):
            continue
        windows = cut_windows(block, starts[keep], layout)
        ys.append(windows.y)
        for name, values in block_forecasts(block, "val", layout, scaler, seasons, fits).items():
            challengers[name].append(values[keep])
        if network is not None:
            band = network(windows)[1]
            if band is not None:
                quantiles.append(band)
    shape = (0, layout.horizon, len(layout.target_columns))
    return ValidationSample(
        y=np.concatenate(ys) if ys else np.empty(shape, np.float32),
        challengers={
            name: np.concatenate(parts) if parts else np.empty(shape, np.float32)
            for name, parts in challengers.items()
        },
        quantiles=np.concatenate(quantiles) if quantiles else None,
        of=total,
    )


@dataclass(frozen=True)
class Bands:
    """How each predictor's interval on a test window is made (scaled units)."""

    levels: list[float]
    offsets: dict[str, np.ndarray]
    """Challenger -> its validation residuals' quantiles, (n_quantiles, horizon, n_targets),
    added to its point forecast (`intervals.with_offsets`)."""
    head: bool
    """Whether the network's quantile head gives it an interval."""
    shifts: np.ndarray | None = None
    """The head's conformal shifts (`intervals.conformal_shifts`), or None: uncalibrated."""

    def of(
        self, point_bands: dict[str, np.ndarray], head: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """Each banded predictor's quantiles, (windows, horizon, n_targets, n_quantiles),
        given the challengers' point forecasts and the head's quantiles of some windows."""
        out = {}
        if self.head and head is not None:
            out["model"] = head if self.shifts is None else intervals.shifted(head, self.shifts)
        for name, offsets in self.offsets.items():
            out[name] = intervals.with_offsets(point_bands[name], offsets)
        return out


@dataclass(frozen=True)
class TestScores:
    """Every predictor's scores on the test windows."""

    windows: int
    scores: dict[str, dict[str, float]]
    """Predictor -> point metrics (and interval metrics where it has a band)."""
    per_step_mae: dict[str, list[float]]
    per_series_mae: dict[str, dict[str, float]]
    """Series (sorted) -> predictor -> MAE; the champion is not broken down."""
    interval_per_step: dict[str, dict[str, list[float]]]
    examples: list[plots.ForecastExample]
    """The last test window of each of the worst series (by the model's MAE), worst first."""

    def worst_series(self, n: int = evaluation.WORST_SERIES_SHOWN) -> list[str]:
        """Series with the highest model MAE, worst first."""
        return evaluation.worst_series(self.per_series_mae, n)


def forecast_schema(target_columns: list[str], predictors: list[str]) -> pa.Schema:
    """The columns of `evaluation.forecast_table`, typed once so every block's rows agree."""
    return pa.schema(
        [
            ("series", pa.string()),
            ("origin", pa.timestamp("ns", tz="UTC")),
            ("step", pa.int32()),
            ("target", pa.string()),
            ("actual", pa.float64()),
            *((name, pa.float64()) for name in predictors),
        ]
    )


def score_test(
    uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
    fits: ChallengerFits,
    network: NetworkForecaster,
    forecasts_uri: str,
    champion: ChampionForecaster | None = None,
    champion_seasons: Sequence[int] = (),
    bands: Bands | None = None,
) -> TestScores:
    """Score the network, the statistical challengers and (given) the champion on every test
    window of the store at ``uri``, one block at a time, writing every forecast to
    ``forecasts_uri`` (`evaluation.forecast_table`'s rows; published when complete).

    Args:
        season: the challengers' season (and MASE's lag), as `effective_season` gives it.
        champion_seasons: seasons a seasonal-naive champion needs beyond ``season``.
        bands: the intervals to score (None: no interval metrics).
    """
    columns = layout.target_columns
    seasons = [season] if season else []
    baselines = forecast_names(seasons, fits.kinds)
    predictors = ["model", *baselines, *(["champion"] if champion is not None else [])]
    sums = {name: evaluation.ForecastSums(layout.horizon) for name in predictors}
    banded: dict[str, intervals.IntervalSums] = {}
    per_series: dict[str, dict[str, float]] = {}
    block_of: dict[str, int] = {}
    windows_seen = 0
    schema = forecast_schema(columns, predictors)
    with row_groups.parquet_writer(forecasts_uri, schema) as rows:
        for number, block in _blocks(uri, "test"):
            windows = cut_windows(block, block.starts["test"], layout)
            windows_seen += len(windows)
            point, head = network(windows)
            scaled = block_forecasts(
                block, "test", layout, scaler, [*seasons, *champion_seasons], fits
            )

            def original(values: np.ndarray, windows: WindowArrays = windows) -> np.ndarray:
                return evaluation.to_original_units(values, windows.series, scaler, columns)

            actual = original(windows.y)
            forecasts = {"model": original(point), **{n: original(scaled[n]) for n in baselines}}
            per_series.update(evaluation.per_series_mae(forecasts, actual, windows.series))
            block_of.update(dict.fromkeys(map(str, np.unique(windows.series)), number))
            if champion is not None:
                forecasts["champion"] = champion(windows, scaled)
            scale = evaluation.mase_scales(windows, layout, scaler, season)
            for name, values in forecasts.items():
                sums[name].add(values, actual, scale)
            if bands is not None:
                for name, band in bands.of(scaled, head).items():
                    quantiles = np.stack(
                        [original(band[..., k]) for k in range(band.shape[-1])], axis=-1
                    )
                    banded.setdefault(
                        name, intervals.IntervalSums(bands.levels, layout.horizon)
                    ).add(quantiles, actual)
            table = evaluation.forecast_table(windows, forecasts, actual, columns)
            rows.write(pa.Table.from_pandas(table, schema=schema, preserve_index=False))
    scores = {name: s.metrics() for name, s in sums.items()}
    for name, interval in banded.items():
        scores[name].update(interval.metrics())
    result = TestScores(
        windows=windows_seen,
        scores=scores,
        per_step_mae={n: s.per_step_mae() for n, s in sums.items() if n != "champion"},
        per_series_mae=dict(sorted(per_series.items())),
        interval_per_step={name: interval.per_step() for name, interval in banded.items()},
        examples=[],
    )
    examples = worst_examples(uri, layout, scaler, season, fits, network, result, block_of, bands)
    return dataclasses.replace(result, examples=examples)


def point_scores(
    uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
    network: NetworkForecaster,
) -> dict[str, dict[str, float]]:
    """The network's and the input-window naive baselines' (`evaluation.naive_forecasts`)
    point metrics on every test window of the store, block by block: what a backtest fold
    scores."""
    columns = layout.target_columns
    sums: dict[str, evaluation.ForecastSums] = {}
    for _, block in _blocks(uri, "test"):
        windows = cut_windows(block, block.starts["test"], layout)
        forecasts = {"model": network(windows)[0]}
        forecasts.update(evaluation.naive_forecasts(windows, layout, season))
        scale = evaluation.mase_scales(windows, layout, scaler, season)
        actual = evaluation.to_original_units(windows.y, windows.series, scaler, columns)
        for name, values in forecasts.items():
            original = evaluation.to_original_units(values, windows.series, scaler, columns)
            sums.setdefault(name, evaluation.ForecastSums(layout.horizon)).add(
                original, actual, scale
            )
    return {name: s.metrics() for name, s in sums.items()}


def worst_examples(
    uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
    fits: ChallengerFits,
    network: NetworkForecaster,
    scores: TestScores,
    block_of: dict[str, int],
    bands: Bands | None,
) -> list[plots.ForecastExample]:
    """`forecast_examples` of the worst series, from the blocks that hold them (read again:
    which series are worst is known only at the end of the pass)."""
    worst = scores.worst_series()[:EXAMPLES]
    wanted = {block_of[name] for name in worst}
    if not wanted:
        return []
    seasons = [season] if season else []
    parts, points, heads = [], [], []
    baselines: dict[str, list[np.ndarray]] = {}
    for number, block in _blocks(uri, "test"):
        if number not in wanted:
            continue
        windows = cut_windows(block, block.starts["test"], layout)
        point, head = network(windows)
        parts.append(windows)
        points.append(point)
        scaled = block_forecasts(block, "test", layout, scaler, seasons, fits)
        for name, values in scaled.items():
            baselines.setdefault(name, []).append(values)
        if bands is not None and "model" in (band := bands.of(scaled, head)):
            heads.append(band["model"])
    return forecast_examples(
        concat_windows(parts),
        np.concatenate(points),
        layout,
        scaler,
        season,
        {name: np.concatenate(values) for name, values in baselines.items()},
        worst,
        scores.per_series_mae,
        np.concatenate(heads) if heads else None,
        bands.levels if bands is not None else None,
    )


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
    at most `EXAMPLES`), first target, in original units; with the model's ``band``
    (windows, horizon, n_targets, quantiles, scaled units, at ``levels``) its lowest and
    highest quantile."""
    target = layout.target_columns[:1]
    # The strongest naive forecast shown: seasonal naive when a season is set.
    baseline_name = f"seasonal_naive_{season}" if season else "last_value"
    baseline = baselines[baseline_name]
    ids = {str(s): s for s in np.unique(test.series)}  # the report names series as text
    examples = []
    for rank, name in enumerate(worst[:EXAMPLES], start=1):
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
