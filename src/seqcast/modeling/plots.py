"""Small PNG figures for the evaluation report (loss curves, forecasts vs actuals, confusion)
and the prediction artifact (forecasts after their recent history, with their band).

Rendered with matplotlib's Agg backend (no display needed). The report embeds them in a
Prefect artifact, which the UI shows at their pixel size: about 900 pixels wide with
10-11 point text reads at a glance there, and each image stays well under 100 kB.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, imported on first use (0.4-1 s), not when
    the flows import the evaluate task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


_SIZE = (8.0, 3.0)
_DPI = 110

BAND_COLOR = "#9ecae1"
"""Opaque light blue: the band stays readable under the lines (and a test can find it)."""


@dataclass(frozen=True)
class ForecastExample:
    """One test window of one series, in original units."""

    series: str
    history: np.ndarray  # (lookback,)
    actual: np.ndarray  # (horizon,)
    predicted: np.ndarray  # (horizon,)
    baseline: np.ndarray  # (horizon,)
    baseline_name: str
    note: str = ""
    """Why this window is shown (e.g. ``worst #1, model MAE 3.2``): part of its title."""
    band: tuple[np.ndarray, np.ndarray] | None = None
    """The model's lowest and highest quantile forecasts, each (horizon,); None without a
    quantile head."""
    band_label: str = ""


def _png(figure: plt.Figure, colors: int | None = None) -> bytes:
    """The figure as PNG; with ``colors``, a palette PNG of that many colours (line plots
    need few: a third of the size, inline in an artifact as base64)."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=_DPI)
    _pyplot().close(figure)
    if colors is None:
        return buffer.getvalue()
    from PIL import Image  # matplotlib's own dependency

    buffer.seek(0)
    palette = Image.open(buffer).convert("RGB").quantize(colors=colors)
    out = io.BytesIO()
    palette.save(out, format="png", optimize=True)
    return out.getvalue()


def loss_curve(history: dict[str, list[float]]) -> bytes:
    """Training and validation loss per epoch."""
    figure, axis = _pyplot().subplots(figsize=_SIZE)
    for key in ("loss", "val_loss"):
        if key in history:
            axis.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=key)
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss (scaled units)")
    axis.legend()
    axis.grid(alpha=0.3)
    return _png(figure)


def forecasts(examples: list[ForecastExample], target: str) -> bytes:
    """One panel per series: the input window, then actual, model and baseline forecasts, and
    the model's band between its lowest and highest quantile where it has one."""
    figure, axes = _pyplot().subplots(
        len(examples), 1, figsize=(_SIZE[0], 2.6 * len(examples)), squeeze=False
    )
    for axis, ex in zip(axes[:, 0], examples, strict=True):
        past = np.arange(-len(ex.history) + 1, 1)
        future = np.arange(1, len(ex.actual) + 1)
        axis.plot(past, ex.history, color="0.4", label="input")
        if ex.band is not None:
            axis.fill_between(
                future, *ex.band, color=BAND_COLOR, linewidth=0, label=f"model {ex.band_label}"
            )
        axis.plot(future, ex.actual, color="black", label="actual")
        axis.plot(future, ex.predicted, color="tab:blue", label="model")
        axis.plot(future, ex.baseline, color="tab:orange", linestyle="--", label=ex.baseline_name)
        axis.axvline(0.5, color="0.8")
        note = f" ({ex.note})" if ex.note else ""
        axis.set_title(f"{ex.series}: {target}{note}", fontsize=11)
        axis.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=9, ncols=5)
    axes[-1, 0].set_xlabel("steps from forecast origin")
    return _png(figure)


@dataclass(frozen=True)
class PredictionPanel:
    """One series of a prediction file: its recent history, then the forecast.

    Times are numpy datetime64 (UTC) or integers (a source with integer years or steps),
    the same kind for history and forecast.
    """

    series: str
    history_time: np.ndarray  # (history,)
    history: np.ndarray  # (history,)
    time: np.ndarray  # (horizon,)
    forecast: np.ndarray  # (horizon,)
    band: tuple[np.ndarray, np.ndarray] | None = None
    """Lowest and highest quantile forecasts, each (horizon,); None: the file has none."""
    band_label: str = ""
    note: str = ""
    """Why this series is shown (e.g. ``test MAE 3.2``): part of its title."""


def predictions(panels: list[PredictionPanel], target: str) -> bytes:
    """One panel per series: recent history, the forecast and, where given, its band."""
    figure, axes = _pyplot().subplots(
        len(panels), 1, figsize=(_SIZE[0], 2.3 * len(panels)), squeeze=False
    )
    for axis, panel in zip(axes[:, 0], panels, strict=True):
        # Forecast and band start at the last observation, so they read as its continuation.
        last_time, last = panel.history_time[-1:], panel.history[-1:]
        joined_time = np.concatenate([last_time, panel.time])
        if panel.band is not None:
            low, high = (np.concatenate([last, b]) for b in panel.band)
            axis.fill_between(
                joined_time, low, high, color=BAND_COLOR, linewidth=0, label=panel.band_label
            )
        axis.plot(panel.history_time, panel.history, color="0.35", label="history")
        joined = np.concatenate([last, panel.forecast])
        axis.plot(joined_time, joined, color="tab:blue", label="forecast")
        if len(panel.history_time):
            axis.axvline(panel.history_time[-1], color="0.75", linewidth=1)
        note = f" ({panel.note})" if panel.note else ""
        axis.set_title(f"{panel.series}: {target}{note}", fontsize=11, loc="left")
        axis.grid(alpha=0.3)
        if np.issubdtype(panel.time.dtype, np.datetime64):
            from matplotlib import dates  # loaded with pyplot above

            locator = dates.AutoDateLocator()
            axis.xaxis.set_major_locator(locator)
            axis.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    # Above the first panel, right of its left-aligned title: never over a curve.
    axes[0, 0].legend(
        fontsize=9, ncols=3, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False
    )
    if np.issubdtype(panels[-1].time.dtype, np.datetime64):
        axes[-1, 0].set_xlabel("time (UTC)")
    return _png(figure, colors=64)


def confusion_matrix(matrix: np.ndarray, classes: list[str]) -> bytes:
    """Counts of actual (rows) vs predicted (columns) classes."""
    figure, axis = _pyplot().subplots(figsize=(1.2 * len(classes) + 2, 1.0 * len(classes) + 1.5))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(classes)), classes, rotation=30)
    axis.set_yticks(range(len(classes)), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("actual")
    for (row, col), count in np.ndenumerate(matrix):
        axis.text(col, row, str(count), ha="center", va="center", fontsize=8)
    return _png(figure)


def live_accuracy(
    nights: list[str],
    live: list[float | None],
    test: list[float | None],
    naive: list[float | None],
    limit: float | None = None,
) -> bytes:
    """Live MAE night by night beside the test-time MAE the champion promised, the
    seasonal-naive forecast's live MAE on the same pairs and, with ``limit``, the MAE above
    which a night counts as degraded (test MAE times ``monitor.degradation``)."""

    def values(series: list[float | None]) -> np.ndarray:
        return np.asarray([np.nan if v is None else v for v in series], np.float64)

    x = np.arange(len(nights))
    figure, axis = _pyplot().subplots(figsize=_SIZE)
    axis.plot(x, values(live), color="tab:blue", marker="o", label="live MAE")
    axis.plot(
        x,
        values(naive),
        color="tab:orange",
        linestyle="--",
        marker=".",
        label="seasonal naive, live",
    )
    axis.step(x, values(test), where="mid", color="black", label="test MAE at registration")
    if limit is not None:
        axis.step(
            x,
            values(test) * limit,
            where="mid",
            color="tab:red",
            linestyle=":",
            label=f"degraded above {limit:g}x test",
        )
    shown = np.concatenate([values(live), values(test), values(naive)])
    shown = shown[np.isfinite(shown) & (shown > 0)]
    if len(shown) and shown.max() > 20 * shown.min():
        axis.set_yscale("log")  # a breakdown 100x the test error must not flatten the rest
    step = max(1, len(nights) // 10)
    axis.set_xticks(x[::step], [n[5:] for n in nights[::step]])
    axis.set_xlabel("night")
    axis.set_ylabel("MAE")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=9, ncols=2)
    return _png(figure, colors=64)
