"""Statistical challengers on a window store: last value, seasonal naive, ETS and AR per series.

Each forecast is aligned with `seqcast.windows.store.read_split` (same windows, same
order) and in the same scaled units as the model's predictions and
`seqcast.modeling.evaluation.naive_forecasts`, so evaluation scores all of them alike.

The store keeps every row of each series (not just the input windows), so these read a
series' whole history: seasonal naive works with a season longer than the lookback, and
ETS and AR are fitted on the series' training rows and run through every later row. A
series is read one block (row group) at a time, so memory holds one block plus the
forecasts.

Which rows are training rows: for a series with training windows, every row up to the
last target of its last training window (nothing a validation or test target holds); for
a series without (split by series, or too short), the rows up to its first window's
forecast origin, the history any forecast of it may read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from seqcast.frequency import default_season
from seqcast.modeling.autoregressive import ArFit, ar_forecasts, fit_ar
from seqcast.modeling.statistical import EtsFit, ets_forecasts, fit_ets
from seqcast.windows.grid import layout_step
from seqcast.windows.scaling import Scaler
from seqcast.windows.store import StoreReader
from seqcast.windows.windowing import SPLITS, SeriesWindows, WindowLayout

LAST_VALUE, ETS, AR = "last_value", "ets", "ar"
FITTED_KINDS = (ETS, AR)
"""The challengers fitted per series (`evaluate.challengers`), in the order they are named."""


@dataclass(frozen=True)
class ChallengerFits:
    """The fitted statistical challengers of a store: per series and target column, its
    ETS fit (`seqcast.modeling.statistical`) and its AR fit
    (`seqcast.modeling.autoregressive`); None for a kind the run does not fit."""

    ets: dict[str, dict[str, EtsFit]] | None = None
    ar: dict[str, dict[str, ArFit]] | None = None

    @property
    def kinds(self) -> list[str]:
        """The fitted kinds these hold, in `FITTED_KINDS` order."""
        return [kind for kind, fits in ((ETS, self.ets), (AR, self.ar)) if fits is not None]


def effective_season(configured: int | None, layout: WindowLayout) -> int | None:
    """The season of the statistical challengers: ``evaluate.season`` when set, else the one
    the grid's frequency implies (12 for months, 4 for quarters, 24 for hours, 7 for days;
    none for years), so a config that names no season still gets seasonal ETS and a
    seasonal-naive baseline on calendar data."""
    if configured is not None:
        return configured or None  # 0: no season, said explicitly
    return default_season(layout.frequency)


def seasonal_naive_name(season: int) -> str:
    """The key of the seasonal-naive forecast (as `naive_forecasts` names it)."""
    return f"seasonal_naive_{season}"


@dataclass
class _SeriesRows:
    """One series' rows in a block.

    targets: (rows, n_targets) float32 scaled target values, as stored.
    position: (rows,) int64 grid step of each row (0 = the series' first row).
    starts: split -> (windows,) window start rows, relative to this series' rows.
    slots: split -> (windows,) each window's index among its block's windows of that split.
    """

    name: str
    targets: np.ndarray
    position: np.ndarray
    starts: dict[str, np.ndarray]
    slots: dict[str, np.ndarray]

    @property
    def n_steps(self) -> int:
        return int(self.position[-1]) + 1

    def on_grid(self, values: np.ndarray) -> np.ndarray:
        """``values`` (rows, k) on the series' grid, (n_steps, k) float64, NaN at gaps."""
        grid = np.full((self.n_steps, values.shape[1]), np.nan)
        grid[self.position] = values
        return grid


def _require_forecast(layout: WindowLayout) -> None:
    if layout.task != "forecast":
        raise ValueError(
            f"statistical challengers forecast values; this store's task is {layout.task!r}. "
            "Use them with task: forecast only."
        )


def _blocks(
    uri: str, layout: WindowLayout, numbers: Sequence[int] | None = None
) -> Iterator[tuple[int, list[_SeriesRows]]]:
    """Each block's number and its series' rows, read one block at a time (all, or ``numbers``)."""
    reader = StoreReader(uri)
    try:
        for number in range(reader.n_blocks) if numbers is None else numbers:
            yield number, _series_rows(reader.block(number), layout)
    finally:
        reader.close()


def _series_rows(block: SeriesWindows, layout: WindowLayout) -> list[_SeriesRows]:
    """The rows of each series of one block, in block order."""
    if not len(block):
        return []
    n_targets = len(layout.target_columns)
    step = layout_step(layout)  # a calendar grid's steps are months, not a mean duration
    # A block holds whole series one after another: cut it where the code changes.
    bounds = [0, *(np.flatnonzero(np.diff(block.series)) + 1).tolist(), len(block)]
    series: list[_SeriesRows] = []
    for r0, r1 in zip(bounds[:-1], bounds[1:], strict=True):
        stamps = block.stamps[r0:r1].astype(np.int64)
        starts, slots = {}, {}
        for split in SPLITS:
            all_starts = block.starts[split]
            mine = np.flatnonzero((all_starts >= r0) & (all_starts < r1))
            starts[split], slots[split] = all_starts[mine] - r0, mine
        series.append(
            _SeriesRows(
                name=block.names[int(block.series[r0])],
                targets=block.inputs[r0:r1, :n_targets],  # targets lead the inputs
                position=step.offsets(stamps)[0],
                starts=starts,
                slots=slots,
            )
        )
    return series


def _target_stats(scaler: Scaler, name: str, layout: WindowLayout) -> tuple[np.ndarray, ...]:
    """(mean, std) of the target columns of one series, float64 (n_targets,)."""
    mean, std = scaler.stats_for(name)
    idx = [scaler.columns.index(c) for c in layout.target_columns]
    return mean[idx].astype(np.float64), std[idx].astype(np.float64)


def _original(rows: _SeriesRows, scaler: Scaler, layout: WindowLayout) -> np.ndarray:
    """The series' targets in original units on its grid, (n_steps, n_targets), NaN at gaps."""
    mean, std = _target_stats(scaler, rows.name, layout)
    return rows.on_grid(rows.targets.astype(np.float64) * std + mean)


def _train_steps(rows: _SeriesRows, layout: WindowLayout) -> int:
    """How many grid steps from the series' start are its training rows (see module doc)."""
    train = rows.starts["train"]
    if len(train):
        last_row = int(train.max()) + layout.span - 1
    else:
        first = min(int(rows.starts[s].min()) for s in SPLITS if len(rows.starts[s]))
        last_row = first + layout.lookback - 1
    return int(rows.position[last_row]) + 1


def fit_challengers(
    windows_uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
    kinds: Sequence[str] = FITTED_KINDS,
) -> ChallengerFits:
    """Per series and target column: ETS and AR fitted on that series' training rows.

    Args:
        windows_uri: the build directory of the windows (`WindowsRef.uri`).
        layout: the store's layout (``read_layout``); forecast only.
        scaler: the store's scaler (``read_scaler``): its statistics undo the scaling, so
            ETS and AR see original units.
        season: the seasonal period in grid steps (ETS's), or None.
        kinds: which of `FITTED_KINDS` to fit (``evaluate.challengers``).

    Returns:
        The fits of every series with windows in the store.
    """
    return fit_challenger_blocks(windows_uri, layout, scaler, season, None, kinds)


def fit_challenger_blocks(
    windows_uri: str,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
    blocks: Sequence[int] | None,
    kinds: Sequence[str] = FITTED_KINDS,
) -> ChallengerFits:
    """`fit_challengers` for some blocks of the store only (None: all of them).

    An ETS fit costs about half a second per series and target on one core (AR a few
    milliseconds), so a task may fit shards of blocks in parallel
    (``range(index, n_blocks, count)``) and merge the dicts: each series lies in exactly
    one block.
    """
    _require_forecast(layout)
    unknown = sorted(set(kinds) - set(FITTED_KINDS))
    if unknown:
        raise ValueError(f"`kinds` must be among {FITTED_KINDS}. Received: {unknown}")
    ets: dict[str, dict[str, EtsFit]] | None = {} if ETS in kinds else None
    ar: dict[str, dict[str, ArFit]] | None = {} if AR in kinds else None
    for _, block in _blocks(windows_uri, layout, blocks):
        for rows in block:
            if not any(len(rows.starts[s]) for s in SPLITS):
                continue
            original = _original(rows, scaler, layout)[: _train_steps(rows, layout)]
            columns = list(enumerate(layout.target_columns))
            if ets is not None:
                ets[rows.name] = {c: fit_ets(original[:, j], season) for j, c in columns}
            if ar is not None:
                ar[rows.name] = {c: fit_ar(original[:, j]) for j, c in columns}
    return ChallengerFits(ets, ar)


def _seasonal_naive(grid: np.ndarray, origins: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """(windows, horizon, n_targets): each target step's value one or more seasons earlier.

    ``grid`` is the series' scaled targets on its grid with gaps interpolated; the value
    read is the latest one a whole number of seasons before the step and at or before
    the origin. Where that lies before the series' first row, the last value stands in.
    """
    steps = np.arange(1, horizon + 1)
    back = steps - season * (-(-steps // season))  # in (-season, 0]
    source = origins[:, None] + back[None, :]  # (windows, horizon) grid steps
    known = source >= 0
    source = np.where(known, source, origins[:, None])
    return grid[source]


def _interpolated(grid: np.ndarray) -> np.ndarray:
    """Each column of ``grid`` (n_steps, k) with NaN gaps linearly interpolated."""
    out = grid.copy()
    index = np.arange(len(grid))
    for j in range(grid.shape[1]):
        missing = np.isnan(grid[:, j])
        if missing.any():
            out[missing, j] = np.interp(index[missing], index[~missing], grid[~missing, j])
    return out


def challenger_forecasts(
    windows_uri: str,
    split: str,
    layout: WindowLayout,
    scaler: Scaler,
    season: int | None,
    fits: ChallengerFits,
) -> dict[str, np.ndarray]:
    """The challengers' forecasts for every window of ``split``, in scaled units.

    Keys: ``"last_value"``, ``f"seasonal_naive_{season}"`` (when ``season``), then
    ``"ets"`` and ``"ar"`` where ``fits`` holds them; each (windows, horizon, n_targets)
    float32, in `read_split`'s window order.
    Last value and seasonal naive read the stored scaled rows directly (so they equal
    `naive_forecasts` where it applies); seasonal naive reads the series' history beyond
    the input window, so a season longer than the lookback works, and a gap in that
    history is linearly interpolated. ETS and AR forecasts are made in original units with
    each series' fits (parameters fixed; ETS's state updated by every row up to the origin,
    AR's inputs the rows up to it) and scaled back with the series' statistics.

    Args:
        windows_uri: the build directory of the windows.
        split: "train", "val" or "test".
        layout, scaler: the store's (``read_layout``, ``read_scaler``).
        season: the seasonal period in grid steps, or None.
        fits: `fit_challengers`' result for this store.

    Raises:
        ValueError: on a classify store or an unknown split.
        KeyError: if ``fits`` lacks a series or target of the store.
    """
    _require_forecast(layout)
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    seasons = [season] if season is not None else []
    shape = (0, layout.horizon, len(layout.target_columns))
    names = forecast_names(seasons, fits.kinds)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    reader = StoreReader(windows_uri)
    try:
        for number in range(reader.n_blocks):
            for name, values in block_forecasts(
                reader.block(number), split, layout, scaler, seasons, fits
            ).items():
                parts[name].append(values)
    finally:
        reader.close()
    return {
        name: np.concatenate(arrays) if arrays else np.empty(shape, np.float32)
        for name, arrays in parts.items()
    }


def forecast_names(seasons: Sequence[int], kinds: Sequence[str]) -> list[str]:
    """The keys of `block_forecasts`' result, in its order (``kinds``: the fitted ones,
    `ChallengerFits.kinds`)."""
    fitted = [kind for kind in FITTED_KINDS if kind in kinds]
    return [LAST_VALUE, *(seasonal_naive_name(s) for s in dict.fromkeys(seasons)), *fitted]


def block_forecasts(
    block: SeriesWindows,
    split: str,
    layout: WindowLayout,
    scaler: Scaler,
    seasons: Sequence[int],
    fits: ChallengerFits,
) -> dict[str, np.ndarray]:
    """`challenger_forecasts` of one block's windows of ``split`` (aligned with
    ``cut_windows(block, block.starts[split], layout)``), with a seasonal naive forecast per
    season in ``seasons`` (a champion's season may differ from this run's).

    Evaluation scores the test split block by block with it, so its memory holds one block's
    forecasts, not the split's (issue 18).
    """
    _require_forecast(layout)
    if any(s <= 0 for s in seasons):
        raise ValueError(f"`season` must be a positive integer or None. Received: {seasons}")
    n_targets, horizon = len(layout.target_columns), layout.horizon
    n_windows = len(block.starts[split]) if len(block) else 0
    out = {
        name: np.empty((n_windows, horizon, n_targets), np.float32)
        for name in forecast_names(seasons, fits.kinds)
    }
    for rows in _series_rows(block, layout):
        starts, slots = rows.starts[split], rows.slots[split]
        if not len(starts):
            continue
        origin_rows = starts + layout.lookback - 1
        origins = rows.position[origin_rows]  # (windows,) grid steps
        out[LAST_VALUE][slots] = np.repeat(rows.targets[origin_rows][:, None, :], horizon, 1)
        if seasons:
            grid = _interpolated(rows.on_grid(rows.targets.astype(np.float64)))
            for season in dict.fromkeys(seasons):
                out[seasonal_naive_name(season)][slots] = _seasonal_naive(
                    grid, origins, season, horizon
                )
        if fits.kinds:
            original = _original(rows, scaler, layout)
        if fits.ets is not None:
            out[ETS][slots] = _fitted_scaled(rows, original, origins, layout, scaler, ETS, fits.ets)
        if fits.ar is not None:
            out[AR][slots] = _fitted_scaled(rows, original, origins, layout, scaler, AR, fits.ar)
    return out


def _fitted_scaled(
    rows: _SeriesRows,
    original: np.ndarray,
    origins: np.ndarray,
    layout: WindowLayout,
    scaler: Scaler,
    kind: str,
    fits: dict[str, dict[str, EtsFit]] | dict[str, dict[str, ArFit]],
) -> np.ndarray:
    """(windows, horizon, n_targets) one fitted kind's forecasts of one series (its targets
    ``original`` on its grid), in scaled units."""
    if rows.name not in fits:
        raise KeyError(
            f"no {kind.upper()} fit for series {rows.name!r}: fit the challengers on this "
            "window store (fit_challengers) before forecasting its windows"
        )
    mean, std = _target_stats(scaler, rows.name, layout)
    out = np.empty((len(origins), layout.horizon, len(layout.target_columns)))
    for j, column in enumerate(layout.target_columns):
        fit = fits[rows.name][column]
        if isinstance(fit, EtsFit):
            out[:, :, j] = ets_forecasts(original[:, j], fit, origins, layout.horizon)
        else:
            out[:, :, j] = ar_forecasts(original[:, j], fit, origins, layout.horizon)
    return ((out - mean) / std).astype(np.float32)
