"""Batch classification of whole sequences (a ``window.per: sequence`` champion).

Each sequence of the input gets one row: its id, the predicted class, one probability
column per class, the steps read, and ``out_of_range``: whether any of its values lies
outside the range the champion's prediction contract allows. Such a value is flagged
here, per sequence, rather than refusing the whole batch: the prediction contract of a
sequence classifier warns on ranges (`seqcast.data.contracts.derive_prediction_contract`),
so validation reports the cause once and every sequence is still classified.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from seqcast.serving.registry import LoadedModel
from seqcast.windows.sequences import padded_inputs

logger = logging.getLogger(__name__)

Ranges = Mapping[str, tuple[float | None, float | None]]
"""Column -> (min, max) allowed at prediction time (None: unbounded)."""


def contract_ranges(contract: Mapping | None, columns: list[str]) -> dict[str, tuple]:
    """The (min, max) of ``columns`` in a stored prediction contract (a JSON mapping)."""
    rules = (contract or {}).get("columns", {})
    return {
        c: (rules[c].get("min"), rules[c].get("max"))
        for c in columns
        if c in rules and (rules[c].get("min") is not None or rules[c].get("max") is not None)
    }


def out_of_range(values: pd.DataFrame, ranges: Ranges) -> list[str]:
    """The columns of one sequence's ``values`` with a value outside ``ranges``."""
    bad = []
    for column, (low, high) in ranges.items():
        if column not in values.columns:
            continue
        series = values[column]
        if (low is not None and (series < low).any()) or (
            high is not None and (series > high).any()
        ):
            bad.append(column)
    return bad


def classify_sequences(
    frame: pd.DataFrame,
    champion: LoadedModel,
    outputs_of: Callable[[np.ndarray], np.ndarray],
    series_name: str,
    ranges: Ranges | None = None,
) -> pd.DataFrame:
    """One row per sequence of ``frame`` (validated rows, sorted by series and time).

    A sequence longer than the champion's padded length keeps its last steps, as in
    training; ``outputs_of`` maps (sequences, steps, features + 1) inputs to class
    probabilities. The inputs hold every step: a network trained with ``layout.pool`` > 1
    averages blocks of that many steps itself (`seqcast.modeling.networks.StepPool`, a
    layer of the saved model), and a 1-NN champion resamples them as in its fit.
    """
    layout, scaler = champion.layout, champion.scaler
    features = layout.input_columns[:-1]  # the last input column marks real steps
    inputs, ids, lengths, flagged = [], [], [], []
    for series, rows in frame.groupby(layout.series_column, sort=True):
        tail = rows.tail(layout.lookback)
        scaled = scaler.transform(tail[features].to_numpy(np.float32), str(series))
        inputs.append(padded_inputs(scaled, layout.lookback))  # (lookback, features + 1)
        ids.append(str(series))
        lengths.append(len(rows))
        flagged.append(out_of_range(rows, ranges or {}))
    probabilities = outputs_of(np.stack(inputs))  # (sequences, classes)
    best = np.argmax(probabilities, axis=-1)
    result = pd.DataFrame(
        {
            series_name: ids,
            layout.target_columns[0]: [layout.classes[i] for i in best],
            "probability": probabilities[np.arange(len(best)), best].astype(np.float64),
        }
    )
    for k, name in enumerate(layout.classes):
        result[f"probability_{name}"] = probabilities[:, k].astype(np.float64)
    result["steps"] = np.asarray(lengths, np.int64)
    result["out_of_range"] = [bool(columns) for columns in flagged]
    n_flagged = int(result["out_of_range"].sum())
    if n_flagged:
        examples = ", ".join(
            f"{s} ({', '.join(c)})" for s, c in zip(ids, flagged, strict=True) if c
        )
        logger.warning(
            "%d sequence(s) hold values outside the training range (classified, flagged in "
            "column out_of_range): %s",
            n_flagged,
            examples[:300],
        )
    return result
