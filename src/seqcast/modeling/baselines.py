"""Statistical baselines scored from each series' full history, not only the input window.

`seqcast.modeling.evaluation.naive_forecasts` sees a window's ``lookback`` inputs only,
so a season longer than the lookback (season 365 on daily data, lookback 30) had no
seasonal-naive forecast. Here a forecast reads the series' rows in the window store
(every row of every split, scaled), so one season back is always there when the series
is that long and gap-free over it; where it is not (the first season of a series, or a
gap in between), the window falls back to its last value.
"""

from __future__ import annotations

import numpy as np

from seqcast.windows.store import StoreReader
from seqcast.windows.windowing import SeriesWindows, WindowLayout

NS_PER_SECOND = 1_000_000_000


def seasonal_source_rows(origin: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Rows one season (or whole seasons) before each forecast step: (windows, horizon).

    Step ``h`` (1-based) of a window whose last input is row ``o`` takes row
    ``o + h - season * ceil(h / season)``: the latest observed row in the same phase.
    """
    h = np.arange(1, horizon + 1)
    back = season * -(-h // season)
    return origin[:, None] + h - back


def block_forecasts(
    rows: SeriesWindows, starts: np.ndarray, layout: WindowLayout, season: int | None
) -> dict[str, np.ndarray]:
    """last_value and seasonal_naive_{season} for windows starting at ``starts`` of one
    block, in scaled units, each (windows, horizon, n_targets)."""
    n_targets = len(layout.target_columns)
    targets = rows.inputs[:, :n_targets]  # targets lead the input columns
    origin = np.asarray(starts, np.int64) + layout.lookback - 1
    last = np.repeat(targets[origin][:, None, :], layout.horizon, axis=1)
    out = {"last_value": last}
    if season:
        source = seasonal_source_rows(origin, layout.horizon, season)  # (windows, horizon)
        safe = np.clip(source, 0, max(len(rows) - 1, 0))
        step_ns = int(round(layout.step_seconds * NS_PER_SECOND))
        # Same series and no gap between: the stamps are exactly that many steps apart.
        usable = (
            (source >= 0)
            & (rows.series[safe] == rows.series[origin][:, None])
            & (
                rows.stamps[origin][:, None] - rows.stamps[safe]
                == (origin[:, None] - source) * step_ns
            )
        )
        out[f"seasonal_naive_{season}"] = np.where(usable[:, :, None], targets[safe], last)
    return out


def history_forecasts(
    windows_uri: str, split: str, layout: WindowLayout, season: int | None
) -> dict[str, np.ndarray]:
    """Baseline forecasts of every window of ``split``, aligned with
    `seqcast.windows.store.read_split` (same blocks, same order), in scaled units.

    Returns:
        ``{"last_value": ..., "seasonal_naive_{season}": ...}`` (the second with a season),
        each (windows, horizon, n_targets).
    """
    reader = StoreReader(windows_uri)
    parts: dict[str, list[np.ndarray]] = {}
    try:
        for number in range(reader.n_blocks):
            block = reader.block(number)
            for name, values in block_forecasts(block, block.starts[split], layout, season).items():
                parts.setdefault(name, []).append(values)
    finally:
        reader.close()
    n_targets = len(layout.target_columns)
    empty = np.empty((0, layout.horizon, n_targets), np.float32)
    names = ["last_value", *([f"seasonal_naive_{season}"] if season else [])]
    return {name: np.concatenate(parts[name]) if name in parts else empty for name in names}
