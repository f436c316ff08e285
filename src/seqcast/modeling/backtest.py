"""Rolling-origin backtest: k successive test periods, each scored by a model trained only
on the data before it, so the spread of the metrics says how much one night's test score
can be trusted.

Periods are ``backtest_steps`` grid steps long and aligned to multiples of that length
since the Unix epoch (hourly data with 24 steps: UTC days). A fold's result is keyed by a
fingerprint of the rows it reads (those before its end) plus every setting that shapes
it, and stored under ``{pipeline_root}/backtest/folds/``: when tomorrow's data adds one
period, the older folds' rows are unchanged, their results are read back, and only the
new fold trains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from seqcast.config import PipelineConfig
from seqcast.errors import DataContractError
from seqcast.io import row_groups, storage
from seqcast.modeling import evaluation, scoring
from seqcast.modeling.sizing import size_training
from seqcast.windows import store as window_store
from seqcast.windows.grid import GridStep, fixed_step
from seqcast.windows.publish import code_version
from seqcast.windows.step import build_or_reuse

logger = logging.getLogger(__name__)

_TRAINING = threading.Lock()
"""One fold trains at a time per process: Keras seeds are process-global, so folds on a
thread runner would otherwise perturb each other's random streams (TensorFlow uses every
core for one fit anyway). Dask workers are processes: folds there run side by side."""


@dataclass(frozen=True)
class Fold:
    """One test period: the model sees rows before ``test_from``; it is scored on windows
    whose targets lie in [test_from, until)."""

    number: int
    test_from: datetime
    until: datetime
    rows: str = ""
    """Fingerprint of the rows the fold reads (those before ``until``): `fingerprint_folds`."""


def fold_steps(config: PipelineConfig) -> int:
    return config.evaluate.backtest_steps or max(config.window.horizon, 1)


def plan_folds(last_stamp_ns: int, step: int | GridStep, folds: int, steps: int) -> list[Fold]:
    """The ``folds`` latest whole periods of ``steps`` steps ending by the last row, oldest
    first (fold 1).

    ``step``: the grid step (nanoseconds for a fixed one). On a calendar grid periods are
    whole calendar units counted from the epoch (monthly data with 12 steps: calendar
    years), and each bound is the local midnight of its period's anchor day.
    """
    if isinstance(step, int):
        step = fixed_step(step)
    frequency = step.frequency
    if frequency.nanos is not None:
        period = steps * frequency.nanos
        end = (last_stamp_ns + frequency.nanos) // period * period
        at = [end - (folds - i) * period for i in range(folds + 1)]
    else:
        units = steps * frequency.multiple
        last, _, _ = frequency.ordinals(np.asarray([last_stamp_ns]), step.timezone)
        end_unit = (int(last[0]) + frequency.multiple) // units * units
        ordinals = np.asarray([end_unit - (folds - i) * units for i in range(folds + 1)])
        at = [int(ns) for ns in frequency.stamps(ordinals, 0, step.timezone)]

    def stamp(ns: int) -> datetime:
        return pd.Timestamp(ns, tz="UTC").to_pydatetime()

    return [Fold(i + 1, stamp(at[i]), stamp(at[i + 1])) for i in range(folds)]


def last_stamp_ns(validated_uri: str, timestamp: str) -> int:
    """The latest timestamp of the validated table (from row-group statistics when present)."""
    fs, path = storage.filesystem(validated_uri)
    with fs.open(path, "rb") as handle:
        meta = pq.ParquetFile(handle).metadata
        column = meta.schema.to_arrow_schema().get_field_index(timestamp)
        stats = [meta.row_group(i).column(column).statistics for i in range(meta.num_row_groups)]
    if stats and all(s is not None and s.has_min_max for s in stats):
        return max(pd.Timestamp(s.max).as_unit("ns").value for s in stats)
    table = storage.read_parquet(validated_uri, columns=[timestamp])
    return pd.Timestamp(pc.max(table[timestamp]).as_py()).as_unit("ns").value


def rows_fingerprints(validated_uri: str, timestamp: str, untils: list[datetime]) -> list[str]:
    """sha256 of the rows stamped before each of ``untils``, from one pass over the table.

    Each row is hashed once (a per-row hash, so the result does not depend on how rows are
    batched) and fed, in table order, to the digest of every end it precedes. The table is
    sorted by series and time, so appended days do not reorder earlier rows.
    """
    digests = [hashlib.sha256() for _ in untils]
    bounds = [pd.Timestamp(until) for until in untils]
    fs, path = storage.filesystem(validated_uri)
    with fs.open(path, "rb") as handle:
        for batch in row_groups.streamed(handle).iter_batches(batch_size=65_536):
            hashes = pd.util.hash_pandas_object(batch.to_pandas(), index=False).to_numpy()
            stamps = batch.column(timestamp)
            for digest, bound in zip(digests, bounds, strict=True):
                keep = pc.less(stamps, bound).to_numpy(zero_copy_only=False)
                if keep.any():
                    digest.update(hashes[keep].tobytes())
    return [digest.hexdigest() for digest in digests]


def fingerprint_folds(validated_uri: str, timestamp: str, folds: list[Fold]) -> list[Fold]:
    """``folds`` with the fingerprint of the rows each reads (one pass for all of them)."""
    found = rows_fingerprints(validated_uri, timestamp, [fold.until for fold in folds])
    return [dataclasses.replace(fold, rows=rows) for fold, rows in zip(folds, found, strict=True)]


def fold_config(config: PipelineConfig, fold: Fold) -> PipelineConfig:
    split = config.split.model_copy(
        update={"by": "time", "test_from": fold.test_from, "until": fold.until}
    )
    return config.model_copy(update={"split": split})


def fold_key(config: PipelineConfig, fold: Fold, window_relative: bool) -> str:
    payload: dict[str, Any] = {
        "rows": fold.rows,
        "fold": [fold.test_from.isoformat(), fold.until.isoformat()],
        "config": fold_config(config, fold).model_dump(
            mode="json", include={"task", "source", "window", "split", "model", "evaluate"}
        ),
        "window_relative": window_relative,
        "code": code_version(),
    }
    # The fold count does not change what one fold computes.
    payload["config"]["evaluate"].pop("backtest_folds", None)
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def fold_result_uri(config: PipelineConfig, key: str) -> str:
    return storage.join(config.pipeline_root, "backtest", "folds", f"{key[:24]}.json")


def _scores(config: PipelineConfig, windows_uri: str, model: Any) -> dict[str, dict[str, float]]:
    layout = window_store.read_layout(windows_uri)
    scaler = window_store.read_scaler(windows_uri)
    from seqcast.modeling.forward import window_forecaster  # TensorFlow

    network = window_forecaster(model)

    season = config.evaluate.season_steps
    if layout.task == "forecast":  # streamed block by block, like evaluate (issue 18)
        return scoring.point_scores(windows_uri, layout, scaler, season, network)
    test = window_store.read_split(windows_uri, "test", layout)
    outputs = network(test)[0]
    majority = int(window_store.label_counts(windows_uri, "train").argmax())
    return {
        s.name: s.metrics for s in evaluation.evaluate_classify(outputs, test, layout, majority)
    }


def run_fold(
    config: PipelineConfig,
    validated_uri: str,
    series_column: str,
    fold: Fold,
    window_relative: bool = False,
) -> dict[str, Any]:
    """Train on the rows before the fold and score its test period; cached by content.

    Returns the fold's result document (also stored at its ``result_uri``), with
    ``cached`` telling whether it was read back instead of computed.
    """
    if not fold.rows:
        raise ValueError(
            f"fold {fold.number} has no rows fingerprint: pass it through fingerprint_folds"
        )
    key = fold_key(config, fold, window_relative)
    uri = fold_result_uri(config, key)
    if storage.exists(uri):
        return {**storage.read_json(uri), "cached": True}
    # TensorFlow here, not at import: the training flow imports this module before it runs.
    from seqcast.modeling.training import train
    from seqcast.windows.input_pipeline import stream_windows

    settings = fold_config(config, fold)
    try:
        built = build_or_reuse(
            settings,
            validated_uri,
            fold.rows,
            series_column,
            store_uri=storage.join(config.pipeline_root, "backtest", "windows"),
        )
    except DataContractError as exc:
        raise DataContractError(
            f"backtest fold {fold.number} ({fold.test_from:%Y-%m-%d %H:%M} to "
            f"{fold.until:%Y-%m-%d %H:%M} UTC): {exc} Lower evaluate.backtest_folds or "
            "evaluate.backtest_steps, or use more history."
        ) from exc
    plan = size_training(config.model, max(1, built.counts["train"]))
    spec, batch = plan.apply(config.model), plan.batch_size
    with _TRAINING:
        fitted = train(
            stream_windows(built.uri, "train", batch, spec.shuffle_buffer, spec.seed),
            stream_windows(built.uri, "val", batch),
            window_store.read_layout(built.uri),
            spec,
            window_relative=window_relative,
            season=config.evaluate.season_steps,
        )
        scores = _scores(config, built.uri, fitted.model)
    document = {
        "fold": fold.number,
        "test_from": fold.test_from.isoformat(),
        "until": fold.until.isoformat(),
        "windows": built.counts,
        "epochs_run": fitted.epochs_run,
        "scores": scores,
        "computed_at": datetime.now(UTC).isoformat(),
        "result_uri": uri,
    }
    storage.write_json(uri, document)
    logger.info(
        "backtest fold %d (%s to %s): %s",
        fold.number,
        document["test_from"],
        document["until"],
        {k: round(v[next(iter(v))], 4) for k, v in scores.items()},
    )
    return {**document, "cached": False}


def summarise(results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per predictor and metric: mean, standard deviation, min and max over the folds."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for predictor in results[0]["scores"]:
        summary[predictor] = {}
        for metric in results[0]["scores"][predictor]:
            values = np.array([r["scores"][predictor][metric] for r in results], dtype=float)
            summary[predictor][metric] = {
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "min": float(values.min()),
                "max": float(values.max()),
            }
    return summary
