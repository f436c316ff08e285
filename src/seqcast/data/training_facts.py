"""What a model's prediction contract takes from its training table, read batch by batch.

`seqcast.data.contracts.derive_prediction_contract` needs only a few facts of the validated
table a model was trained on: each numeric input's finite range, the series seen and, when
the pipeline's contract names no frequency, the usual step. The register step once read the
whole table into pandas for them, which made it the largest step of the nightly flow at ten
million rows (2.6 GiB, issue 18); here the table is streamed one record batch at a time and
only those facts are kept (the frequency's sample holds at most `FREQUENCY_SAMPLE_SERIES`
series, as `usual_frequency` samples them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from seqcast.config import PipelineConfig
from seqcast.data.contracts import (
    FREQUENCY_SAMPLE_SERIES,
    Contract,
    frequency_text,
    usual_frequency,
)
from seqcast.io import row_groups, storage

BATCH_ROWS = 64_000


@dataclass
class TrainingFacts:
    """The facts of a training table a prediction contract is derived from."""

    columns: set[str]
    """The table's columns."""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Numeric value column -> finite (min, max); absent when it has no finite value."""
    series: list[str] = field(default_factory=list)
    """The series seen, sorted (asked for with per-series scaling)."""
    frequency: str | None = None
    """The usual step as a contract writes it (asked for when the base has none)."""

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, config: PipelineConfig, base: Contract) -> TrainingFacts:
        """The facts of a table held in memory."""
        source = config.source
        facts = cls(columns=set(frame.columns))
        for column in _numeric(config, base, facts.columns):
            values = frame[column].astype(np.float64)
            finite = values[np.isfinite(values)]
            if not finite.empty:
                facts.ranges[column] = (float(finite.min()), float(finite.max()))
        if _wants_series(config):
            facts.series = sorted(frame[source.series_id].astype(str).unique().tolist())
        if base.frequency is None and source.timestamp in frame.columns:
            series = (
                frame[source.series_id] if source.series_id else pd.Series(0, index=frame.index)
            )
            facts.frequency = usual_frequency(frame[source.timestamp], series, source.timezone)
        return facts


def _numeric(config: PipelineConfig, base: Contract, columns: set[str]) -> list[str]:
    """The value columns whose range the contract bounds."""
    return [
        column
        for column in config.source.value_columns
        if (rule := base.columns.get(column)) is not None
        and rule.type in ("float", "int")
        and column in columns
    ]


def _wants_series(config: PipelineConfig) -> bool:
    return bool(config.source.series_id) and config.normalize == "series"


class _Steps:
    """The steps between consecutive timestamps of each series, fed in (series, time)
    order batch by batch: how often each step occurs, and the first series' timestamps."""

    def __init__(self) -> None:
        self.counts: Counter[float] = Counter()
        self.sample: dict[object, list[np.ndarray]] = {}
        self._last: tuple[object, int] | None = None

    def feed(self, series: np.ndarray, stamps: np.ndarray) -> None:
        """``series`` (rows,) ids and ``stamps`` (rows,) int64 ns, nulls already dropped."""
        if not len(series):
            return
        frame = pd.DataFrame({"s": series, "t": stamps})
        frame = frame.sort_values(["s", "t"], kind="stable")  # a validated table is sorted
        series, stamps = frame["s"].to_numpy(dtype=object), frame["t"].to_numpy(np.int64)
        same = series[1:] == series[:-1]
        steps = (stamps[1:] - stamps[:-1])[same]
        if self._last is not None and self._last[0] == series[0]:
            steps = np.append(steps, stamps[0] - self._last[1])
        seconds = steps[steps > 0] / 1e9
        values, counts = np.unique(seconds, return_counts=True)
        self.counts.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        self._last = (series[-1], int(stamps[-1]))
        starts = [0, *(np.flatnonzero(~same) + 1).tolist(), len(series)]
        for a, b in zip(starts[:-1], starts[1:], strict=True):
            name = series[a]
            if name in self.sample or len(self.sample) < FREQUENCY_SAMPLE_SERIES:
                self.sample.setdefault(name, []).append(stamps[a:b])

    def usual(self) -> float | None:
        """The most common step in seconds (the smallest of equally common ones, as
        pandas' ``mode`` gives it); None without a positive step."""
        if not self.counts:
            return None
        most = max(self.counts.values())
        return min(step for step, count in self.counts.items() if count == most)


def read_training_facts(uri: str, config: PipelineConfig, base: Contract) -> TrainingFacts:
    """`TrainingFacts.of_frame` of the Parquet table at ``uri``, read batch by batch (the
    table as validation writes it: sorted by series and time)."""
    source = config.source
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        parquet = row_groups.streamed(handle)
        schema = parquet.schema_arrow
        facts = TrainingFacts(columns=set(schema.names))
        numeric = _numeric(config, base, facts.columns)
        wants_series = _wants_series(config)
        wants_frequency = base.frequency is None and source.timestamp in facts.columns
        if wants_frequency and not pa.types.is_timestamp(schema.field(source.timestamp).type):
            # Integer time (years, steps): the frame's way, on the two columns it needs.
            table = parquet.read(columns=[c for c in (source.series_id, source.timestamp) if c])
            frame = table.to_pandas()
            series = (
                frame[source.series_id] if source.series_id else pd.Series(0, index=frame.index)
            )
            facts.frequency = usual_frequency(frame[source.timestamp], series, source.timezone)
            wants_frequency = False
        read = [*numeric]
        if source.series_id and (wants_series or wants_frequency):
            read.append(source.series_id)
        if wants_frequency:
            read.append(source.timestamp)
        lows: dict[str, float] = {}
        highs: dict[str, float] = {}
        names: set[str] = set()
        steps = _Steps()
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=list(dict.fromkeys(read))):
            for column in numeric:
                values = pc.cast(batch.column(column), pa.float64()).to_numpy(zero_copy_only=False)
                finite = values[np.isfinite(values)]
                if len(finite):
                    lows[column] = min(lows.get(column, np.inf), float(finite.min()))
                    highs[column] = max(highs.get(column, -np.inf), float(finite.max()))
            if wants_series:
                unique = pc.unique(batch.column(source.series_id)).to_pandas()
                names.update(unique.astype(str).tolist())
            if wants_frequency:
                stamps = batch.column(source.timestamp)
                ids = (
                    batch.column(source.series_id).to_pandas().to_numpy(dtype=object)
                    if source.series_id
                    else np.zeros(batch.num_rows, dtype=object)
                )
                in_ns = pc.cast(stamps, pa.timestamp("ns", tz=stamps.type.tz))  # pandas: us
                ns = pc.cast(in_ns, pa.int64()).to_numpy(zero_copy_only=False)
                known = stamps.is_valid().to_numpy(zero_copy_only=False) & pd.notna(ids)
                steps.feed(ids[known], ns[known].astype(np.int64))
    facts.ranges = {column: (lows[column], highs[column]) for column in lows}
    facts.series = sorted(names)
    if wants_frequency:
        usual = steps.usual()
        sample = [np.concatenate(parts) for parts in steps.sample.values()]
        facts.frequency = None if usual is None else frequency_text(usual, sample, source.timezone)
    return facts
