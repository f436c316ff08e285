"""Whole-sequence windows (``window.per: sequence``): one window per series, one label each.

A sequence classifier reads each series whole. Sequences of unequal length are stored
padded on the right to one length (the longest training sequence, or ``window.max_length``;
longer ones keep their last steps) with one extra input column, `VALID_COLUMN`: 1 on the
sequence's own steps, 0 on padding. The network turns that column into a Keras mask
(`seqcast.modeling.networks.StepMask`), so padding never reaches the recurrence, whatever
its values, and the scaler's statistics are measured on the sequences' own rows only.

Why an indicator column rather than ``keras.layers.Masking(mask_value=0)``: a real step
whose scaled inputs are all exactly the mask value would be masked too.

Long sequences are stored whole; the network bounds its own cost (``window.max_steps``):
when the padded length exceeds it, the layout's ``pool`` (`pool_size`) makes the network
average blocks of that many steps before its recurrence (`seqcast.modeling.networks.StepPool`).
Pooling there rather than here keeps the stored windows at full resolution for the 1-NN
challenger, which resamples them to its own bounded length, and makes the saved model
apply the same pooling wherever it predicts.

Series are assigned to splits whole: from a split column (``split.by: column``) or by a
seeded random draw, stratified by class (``split.by: series``), never by id order: an
archive file sorted by class would otherwise send one class to validation and test only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from seqcast.errors import DataContractError
from seqcast.windows.grid import SeriesRows, select_rows

logger = logging.getLogger(__name__)

VALID_COLUMN = "_valid"
"""The input column that marks a sequence's own steps (1) against padding (0)."""
SPLIT_VALUES = ("train", "val", "test")


def _stamp_text(stamps: np.ndarray) -> list[str]:
    return [t.isoformat() for t in pd.DatetimeIndex(stamps.astype("datetime64[ns]"), tz="UTC")]


def sequence_label(rows: SeriesRows) -> object | None:
    """The one label of a sequence: its label column's non-null value (constant, or given on
    some rows only); None when no row gives one.

    Raises:
        DataContractError: the sequence holds several different labels, naming the
            sequence, the labels and the first rows of each.
    """
    if rows.labels is None or len(rows.labels) == 0:
        return None
    labels = pd.Series(rows.labels)
    given = labels[labels.notna()]
    values = pd.unique(given)
    if len(values) == 0:
        return None
    if len(values) > 1:
        stamps = _stamp_text(rows.stamps)
        examples = "; ".join(
            f"{value!r} at row(s) {', '.join(stamps[i] for i in given.index[given == value][:3])}"
            for value in values[:4]
        )
        raise DataContractError(
            f"sequence {rows.series!r} has {len(values)} different labels, but "
            f"window.per=sequence reads one label per sequence: {examples}. Give each "
            "sequence one label (on every row or on some rows only), or use window.per=step."
        )
    return values[0]


def split_value(rows: SeriesRows, column: str) -> str:
    """The split a sequence's split column names (``train``, ``val`` or ``test``).

    Raises:
        DataContractError: a value is not one of those, or the sequence names several.
    """
    values = pd.unique(pd.Series(rows.split).dropna().astype(str).str.strip().str.lower())
    bad = [v for v in values if v not in SPLIT_VALUES]
    if bad or len(values) != 1:
        found = sorted(str(v) for v in pd.unique(pd.Series(rows.split)))
        problem = f"the value(s) {bad}" if bad else f"{len(values)} splits {found}"
        raise DataContractError(
            f"split column {column!r} of series {rows.series!r} holds {problem}; each series "
            f"needs one of {list(SPLIT_VALUES)} on all its rows."
        )
    return str(values[0])


def _draw(
    ids: list[str], share: float, rng: np.random.Generator, strata: Mapping[str, object] | None
) -> set[str]:
    """A seeded random ``share`` of ``ids``, taken within each stratum (class) so every class
    keeps at least one member out of the draw; at least one id when ``share`` > 0."""
    if share <= 0 or not ids:
        return set()
    groups: dict[str, list[str]] = {}
    for series in sorted(ids):
        key = str(strata.get(series)) if strata is not None else ""
        groups.setdefault(key, []).append(series)
    drawn: list[str] = []
    for key in sorted(groups):
        members = list(rng.permutation(groups[key]))
        take = int(round(len(members) * share))
        drawn.extend(members[: min(take, len(members) - 1)])
    if not drawn:
        pool = [s for m in groups.values() if len(m) > 1 for s in m] or sorted(ids)
        drawn.append(str(rng.choice(pool)))
    return set(drawn)


def assign_splits(
    series_ids: list[str],
    val: float,
    test: float,
    seed: int,
    strata: Mapping[str, object] | None = None,
    fixed: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Whole series to train/val/test by a seeded random draw, stratified by ``strata``.

    Args:
        series_ids: every series.
        val, test: shares of the series for validation and test.
        seed: the draw's seed: the same seed and series give the same splits.
        strata: the class of each series (classify), drawn within; None: one group.
        fixed: splits already given (a split column, a test file): kept as they are; with
            no ``val`` among them, validation is drawn from their train series.

    Raises:
        DataContractError: a split would be empty, or no series is left for training.
    """
    rng = np.random.default_rng(seed)
    if fixed is not None:
        splits = dict(fixed)
        if "test" not in splits.values():
            raise DataContractError(
                "the split column names no test series: mark the test series `test`"
            )
    else:
        test_ids = _draw(list(series_ids), test, rng, strata)
        splits = {s: "test" if s in test_ids else "train" for s in series_ids}
    if "val" not in splits.values():
        train = [s for s, split in splits.items() if split == "train"]
        for series in _draw(train, val, rng, strata):
            splits[series] = "val"
    counts = {name: list(splits.values()).count(name) for name in SPLIT_VALUES}
    if counts["train"] < 1 or (val > 0 and counts["val"] < 1):
        raise DataContractError(
            f"{len(series_ids)} series cannot fill train, val ({val}) and test ({test}): "
            f"{counts}. Add series or lower split.val / split.test."
        )
    return splits


def pool_size(length: int, max_steps: int | None) -> int:
    """Steps the network averages into one for sequences padded to ``length``:
    ceil(length / max_steps), 1 when ``length`` fits (or ``max_steps`` is None).

    Raises:
        ValueError: ``length`` or ``max_steps`` is not positive.
    """
    if length <= 0:
        raise ValueError(f"`length` must be a positive integer. Received: length={length}")
    if max_steps is None:
        return 1
    if max_steps <= 0:
        raise ValueError(
            f"`max_steps` must be a positive integer or None. Received: max_steps={max_steps}"
        )
    return max(1, math.ceil(length / max_steps))


def log_pooling(length: int, max_steps: int | None) -> None:
    """Say once, at the window step, how many steps the network averages into one."""
    k = pool_size(length, max_steps)
    if k > 1:
        logger.info(
            "sequences are padded to %d steps, more than window.max_steps=%s: the network "
            "averages each block of %d steps into one and reads at most %d steps",
            length,
            max_steps,
            k,
            math.ceil(length / k),
        )


def truncated(rows: SeriesRows, length: int) -> SeriesRows:
    """The last ``length`` rows of a sequence (all of it when shorter)."""
    if len(rows) <= length:
        return rows
    return select_rows(rows, slice(len(rows) - length, None))


def padded_inputs(scaled: np.ndarray, length: int) -> np.ndarray:
    """A sequence's scaled inputs padded on the right to ``length`` steps, with the
    `VALID_COLUMN` last: (rows, n) -> (length, n + 1), padding all zeros."""
    out = np.zeros((length, scaled.shape[1] + 1), np.float32)
    out[: len(scaled), :-1] = scaled
    out[: len(scaled), -1] = 1.0
    return out


def warn_truncated(lengths: list[int], length: int, configured: bool) -> None:
    """One warning for all sequences longer than ``length`` (they keep their last steps);
    ``configured``: ``length`` is window.max_length, else the longest training sequence."""
    longer = [n for n in lengths if n > length]
    if longer:
        what = "window.max_length" if configured else "the longest training sequence"
        logger.warning(
            "%d sequence(s) longer than %s (%d steps; up to %d) keep only their last %d steps",
            len(longer),
            what,
            length,
            max(longer),
            length,
        )
