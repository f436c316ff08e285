"""Small PNG figures for the evaluation report: loss curves, forecasts vs actuals, confusion.

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


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=_DPI)
    _pyplot().close(figure)
    return buffer.getvalue()


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
    """One panel per series: the input window, then actual, model and baseline forecasts."""
    figure, axes = _pyplot().subplots(
        len(examples), 1, figsize=(_SIZE[0], 2.6 * len(examples)), squeeze=False
    )
    for axis, ex in zip(axes[:, 0], examples, strict=True):
        past = np.arange(-len(ex.history) + 1, 1)
        future = np.arange(1, len(ex.actual) + 1)
        axis.plot(past, ex.history, color="0.4", label="input")
        axis.plot(future, ex.actual, color="black", label="actual")
        axis.plot(future, ex.predicted, color="tab:blue", label="model")
        axis.plot(future, ex.baseline, color="tab:orange", linestyle="--", label=ex.baseline_name)
        axis.axvline(0.5, color="0.8")
        note = f" ({ex.note})" if ex.note else ""
        axis.set_title(f"{ex.series}: {target}{note}", fontsize=11)
        axis.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=9, ncols=4)
    axes[-1, 0].set_xlabel("steps from forecast origin")
    return _png(figure)


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
