"""Validation's series rules: each series' rows in time, judged on the rows still kept.

Order, frequency (fixed steps, or a calendar grid), gaps, rows per series and freshness
(`check_series`); at prediction time, gaps in the rows a forecast starts from
(`check_recent_gaps`) and missing future rows (`check_future_rows`). Every rule's examples
are keyed by series (`seqcast.data.findings.Examples`), so shards of whole series merge
into one run's examples.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from seqcast.config import SourceSpec
from seqcast.data.contracts import ROW, contract_step, duration_seconds, duration_text
from seqcast.data.findings import EXAMPLES, NO_ROWS, Examples, Findings, format_rows
from seqcast.data.future_rows import FutureSplit
from seqcast.data.ingest import SOURCE_FILE
from seqcast.data.prediction_scope import PredictionScope, recent_gaps
from seqcast.frequency import Frequency, parse_frequency


def _calendar_frequency(
    findings: Findings, ordered: pd.DataFrame, step: Frequency, source: SourceSpec
) -> None:
    """The frequency rule on a calendar grid, as the window step places rows on it: every
    timestamp on the step's anchor day (month start, ...), at its series' time of day,
    and the usual step one calendar step (a month, whatever its days)."""
    ts = source.timestamp
    findings.check("frequency", ts)
    if ordered.empty:
        return
    ns = pd.DatetimeIndex(ordered["ts"]).as_unit("ns").asi8
    ordinal, time_of_day, on_anchor = step.ordinals(ns, source.timezone)
    frame = pd.DataFrame(
        {"series": ordered["series"].to_numpy(), "ordinal": ordinal, "tod": time_of_day}
    )
    by_series = frame.groupby("series", sort=False)
    units = by_series["ordinal"].diff()
    first_tod = by_series["tod"].transform("first").to_numpy()
    off_grid = ~on_anchor | (time_of_day != first_tod)
    usual = (
        units[units > 0]
        .groupby(frame["series"])
        .agg(lambda s: s.mode().iloc[0] if len(s) else np.nan)
    )
    bad_step = usual[usual.notna() & (usual != step.multiple)]
    off_series = pd.Series(off_grid).groupby(frame["series"]).sum()
    off_series = off_series[off_series > 0]
    bad = sorted({*bad_step.index, *off_series.index})
    if not bad:
        return
    rows = ordered["pos"][ordered["series"].isin(bad)].to_numpy()
    notes = [
        ((str(s), 0), f"series {s!r}: {int(n)} timestamp(s) off the grid")
        for s, n in off_series.items()
    ]
    notes += [
        ((str(s), 1), f"series {s!r} steps by {int(v)} x {step.alias}") for s, v in bad_step.items()
    ]
    findings.fail(
        "frequency",
        ts,
        rows,
        f"timestamps are not on the contract's {step.alias} calendar grid (in "
        f"{source.timezone}); resample the source, or set the frequency the data has",
        Examples.of(notes),
    )


def check_series(
    findings: Findings,
    typed: pd.DataFrame,
    kept: np.ndarray,
    source: SourceSpec,
    now: datetime,
) -> None:
    """Order, frequency, gaps, rows per series and freshness, on the rows still kept."""
    contract, raw = findings.contract, findings.raw
    ts = source.timestamp
    if ts not in typed.columns or (source.series_id and source.series_id not in typed.columns):
        return
    rows = typed.iloc[kept]
    rows = rows[rows[ts].notna()]
    series = rows[source.series_id] if source.series_id else pd.Series("series", index=rows.index)
    if rows.empty:
        return
    positions = rows[ROW].to_numpy()
    frame = pd.DataFrame(
        {
            "series": series.astype(str).to_numpy(),
            "ts": pd.to_datetime(rows[ts], utc=True).reset_index(drop=True),
            "pos": positions,
            "file": raw[SOURCE_FILE].to_numpy()[positions] if SOURCE_FILE in raw.columns else "",
        }
    )
    # order: within each file and series, in the order the rows were read
    findings.check("order", ts)
    earlier = frame.groupby(["file", "series"], sort=False)["ts"].cummax()
    back = frame["ts"] < earlier.groupby([frame["file"], frame["series"]]).shift(1)
    if back.any():
        findings.fail(
            "order",
            ts,
            frame["pos"][back].to_numpy(),
            "earlier than a row before it in the same file and series; rows are sorted by "
            "(series, timestamp)",
        )
    ordered = frame.sort_values(["series", "ts"], kind="stable")
    step = ordered.groupby("series", sort=False)["ts"].diff().dt.total_seconds()
    if contract.frequency is not None and contract_step(contract.frequency).calendar:
        _calendar_frequency(findings, ordered, contract_step(contract.frequency), source)
    elif contract.frequency is not None:
        findings.check("frequency", ts)
        expected = duration_seconds(contract.frequency)
        usual = (
            step[step > 0]
            .groupby(ordered["series"])
            .agg(lambda s: s.mode().iloc[0] if len(s) else np.nan)
        )
        off = usual[usual.notna() & (usual != expected)]
        if len(off):
            bad = ordered["pos"][ordered["series"].isin(off.index)].to_numpy()
            examples = Examples.of(
                ((str(s),), f"series {s!r} steps by {duration_text(v)}") for s, v in off.items()
            )
            findings.fail(
                "frequency",
                ts,
                bad,
                f"the usual step is not the contract's frequency {contract.frequency}",
                examples,
            )
    if contract.max_gap is not None:
        findings.check("gaps", ts)
        limit = duration_seconds(contract.max_gap)
        after = step > limit
        if after.any():
            positions = ordered["pos"][after].to_numpy()
            gaps = step[after].to_numpy()
            names = ordered["series"][after].to_numpy()
            stamps = pd.DatetimeIndex(ordered["ts"][after]).as_unit("ns").asi8
            order = np.lexsort((stamps, names))[:EXAMPLES]  # the first few, as sorted rows
            examples = Examples(
                tuple(
                    (
                        (str(names[i]), int(stamps[i])),
                        f"{format_rows(raw, positions[i : i + 1], [ts])} after a gap of "
                        f"{duration_text(float(gaps[i]))}",
                    )
                    for i in order
                ),
                len(positions),
            )
            findings.fail(
                "gaps",
                ts,
                positions,
                f"follows a gap longer than max_gap {contract.max_gap}",
                examples,
            )
    findings.check("series_length", source.series_id or "(table)")
    counts = frame.groupby("series")["pos"].count()
    short = counts[counts < contract.min_rows]
    if len(short):
        examples = Examples.of(((str(s),), f"series {s!r}: {n} row(s)") for s, n in short.items())
        need = "what one forecast reads" if findings.context else "one window: lookback + horizon"
        findings.fail(
            "series_length",
            source.series_id or "(table)",
            frame["pos"][frame["series"].isin(short.index)].to_numpy(),
            f"series shorter than {contract.min_rows} rows ({need})",
            examples,
        )
    if contract.freshness is not None:
        findings.check("freshness", ts)
        max_age = pd.Timedelta(seconds=duration_seconds(contract.freshness))
        oldest_allowed = pd.Timestamp(now) - max_age
        last = ordered.groupby("series").tail(1)
        stale = last[last["ts"] < oldest_allowed]
        if len(stale):
            examples = Examples.of(
                ((str(r.series),), f"series {r.series!r} ends {r.ts.isoformat()}")
                for r in stale.itertuples()
            )
            findings.fail(
                "freshness",
                ts,
                stale["pos"].to_numpy(),
                f"newest row older than {contract.freshness} (checked at {now:%Y-%m-%dT%H:%MZ})",
                examples,
                count=len(stale),
            )


def series_names(typed: pd.DataFrame, source: SourceSpec) -> pd.Series:
    """Each typed row's series as text (the validated table's names; None where missing)."""
    if not source.series_id:
        return pd.Series("series", index=typed.index, dtype=object)
    if source.series_id not in typed.columns:
        return pd.Series(None, index=typed.index, dtype=object)
    ids = typed[source.series_id]
    return ids.astype(str).where(ids.notna(), None)


def check_recent_gaps(
    findings: Findings,
    typed: pd.DataFrame,
    observed: np.ndarray,
    scope: PredictionScope,
    source: SourceSpec,
) -> None:
    """Prediction: set aside each series with a gap in the last ``scope.gap_free`` rows a
    forecast starts from (`recent_gaps`); the others are still predicted."""
    ts = source.timestamp
    findings.check("recent_gap", ts)
    if ts not in typed.columns or scope.frequency is None:
        return
    rows = typed.iloc[observed]
    rows = rows[rows[ts].notna()]
    frame = pd.DataFrame(
        {
            "series": series_names(rows, source).to_numpy(),
            "ns": pd.DatetimeIndex(rows[ts]).as_unit("ns").asi8,
            "pos": rows[ROW].to_numpy(),
        }
    ).sort_values(["series", "ns", "pos"], kind="stable")
    gaps = recent_gaps(
        frame["series"].to_numpy(),
        frame["ns"].to_numpy(),
        scope.gap_free,
        parse_frequency(scope.frequency),
        scope.timezone,
    )
    if not gaps:
        return
    examples = Examples.of(
        (
            (str(name),),
            f"series {name!r}: no row between {pd.Timestamp(a, tz='UTC').isoformat()} and "
            f"{pd.Timestamp(b, tz='UTC').isoformat()}",
        )
        for name, (a, b) in gaps.items()
    )
    findings.fail(
        "recent_gap",
        ts,
        frame["pos"][frame["series"].isin(list(gaps))].to_numpy(),
        f"gap in the last {scope.gap_free} steps (the rows a forecast starts from); supply "
        "the missing steps",
        examples,
    )


def check_future_rows(
    findings: Findings,
    split: FutureSplit,
    names: pd.Series,
    quarantined: np.ndarray,
    source: SourceSpec,
    steps: int,
) -> None:
    """Prediction: fail the run when a series to be predicted lacks one of its ``steps``
    future rows (a set-aside series is not predicted: its future rows do not matter)."""
    predicted = np.setdiff1d(np.arange(len(names), dtype=np.int64), quarantined)
    wanted = set(names.iloc[predicted].dropna())
    missing = [
        ((name, int(stamp)), pd.Timestamp(stamp, tz="UTC").isoformat())
        for name, stamps in split.missing.items()
        if name in wanted
        for stamp in stamps
    ]
    findings.check("future_rows", source.timestamp)
    if not missing:
        return
    findings.fail(
        "future_rows",
        source.timestamp,
        NO_ROWS,
        f"missing: each series needs a row for each of its {steps} forecast steps right "
        f"after its last observed {', '.join(source.target)}, with the target blank and the "
        f"known-future columns {source.future_features} filled (in source.path or "
        "source.future_path). Add the rows, then run again; nothing was predicted",
        Examples.of(missing, grouped=True),
        count=len(missing),
    )
