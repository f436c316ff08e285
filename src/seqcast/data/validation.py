"""Validate a raw snapshot against its contract; split it into clean and quarantined rows.

Order of work, each stage on what the one before left:

1. structure: rows at all, empty files, required and unexpected columns;
2. strict parsing (`seqcast.data.parsing`): types, timestamps to UTC, naive/offset mixing;
3. the Great Expectations suite (`seqcast.data.gx_suite`) on the parsed values: nulls, +-inf,
   ranges, categories, the unique key, the row count;
4. series rules on the rows still kept: order, frequency, gaps, rows per series, freshness.

Every failed rule gets the outcome its severity says: ``fail`` (the run stops), ``quarantine``
(its rows are set aside, the rest go on; above the contract's limit the run fails instead)
or ``warn``. The result is a `ValidationReport`: every rule's outcome with example rows
(file:line), the clean typed table for the window step and the quarantined rows as read.

At prediction time (a `PredictionScope`) only the rows prediction reads are checked, cut
before parsing and GX, and a broken row sets its whole series aside
(`seqcast.data.prediction_scope`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from seqcast.config import SourceSpec, series_column
from seqcast.data.contracts import (
    ROW,
    ROW_RULES,
    Contract,
    contract_step,
    duration_seconds,
    duration_text,
)
from seqcast.data.findings import (
    EXAMPLES,
    FUTURE_RANK,
    NO_ROWS,
    POSITION,
    Examples,
    Failure,
    Findings,
    Outcome,
    RuleResult,
    TimezoneMix,
    format_rows,
)
from seqcast.data.future_rows import FutureSplit, rows_read
from seqcast.data.ingest import SOURCE_FILE
from seqcast.data.parsing import (
    Parsed,
    ParsedTimestamps,
    parse_numbers,
    parse_text,
    parse_timestamps,
)
from seqcast.data.prediction_scope import PredictionScope, per_series_contract, recent_gaps
from seqcast.frequency import TIME_UNIT, Frequency, parse_frequency

logger = logging.getLogger(__name__)

QUARANTINE_RULE = "_quarantine_rule"
QUARANTINE_REASON = "_quarantine_reason"
QUARANTINE_RANK = "_quarantine_rank"
"""A shard's quarantined rows carry their rank, so the merged file keeps one run's order."""


@dataclass
class ValidationReport:
    """What validation found and what it kept.

    clean: the typed table (series, timestamp, value columns), sorted, quarantine removed.
    quarantined: the set-aside rows as read, with the rule(s) and reason(s) of each.
    """

    contract: str
    files: list[str]
    rows: int
    results: list[RuleResult]
    clean: pd.DataFrame
    quarantined: pd.DataFrame
    quarantine_limit: float
    docs_url: str | None = None
    gx_success: bool | None = None
    """Great Expectations' own verdict (its Data Docs show it): False as soon as any
    expectation finds a bad row, whatever the rule's severity, so it says "Failed" for data
    seqcast passes with rows quarantined or warnings. None where GX did not run."""
    time_unit: str | None = None
    """``year``/``step`` when the time column held integers (`parse_integer_time`)."""
    scope: PredictionScope | None = None
    """Prediction: the rows of each series checked (None: the whole table, row by row)."""
    checked_rows: int | None = None
    """Prediction: the rows checked (each series' rows read), of ``rows`` in the snapshot."""
    set_aside: dict[str, list[str]] = field(default_factory=dict)
    """Prediction: each series set aside for the run, with its causes (one per rule)."""
    future_rows: int = 0
    """Prediction: future rows (known-future covariates of the forecast steps) kept."""
    unused_future_rows: int = 0
    """Rows after their series' last observed target that nothing reads: every one in
    training, those beyond the horizon at prediction time (`seqcast.data.future_rows`)."""
    series_limit: float | None = None
    """Prediction: the contract's ``series_quarantine_limit``."""
    kept_rows: int | None = None
    """Merged from shards (`seqcast.data.validation_merge`): the clean rows, written per
    shard and not held here (``clean`` is empty); None: ``clean`` holds them."""
    kept_series: int | None = None
    """Merged from shards: the series of the clean rows."""

    @property
    def clean_rows(self) -> int:
        return self.kept_rows if self.kept_rows is not None else len(self.clean)

    @property
    def outcome(self) -> Outcome:
        """fail > quarantine > warn > pass: the worst outcome of any rule."""
        order: list[Outcome] = ["fail", "quarantine", "warn"]
        outcomes = {r.outcome for r in self.results}
        return next((o for o in order if o in outcomes), "pass")

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.results if r.outcome == "fail"]

    @property
    def warnings(self) -> list[str]:
        return [
            f"{r.rule} on {r.column!r}: {r.failed_rows} row(s) {r.reason}"
            for r in self.results
            if r.outcome in ("warn", "quarantine")
        ]


def _check_structure(findings: Findings, files: list[str]) -> None:
    raw, contract = findings.raw, findings.contract
    findings.check("row_count", "(table)")
    if len(raw) == 0:
        names = ", ".join(f.rsplit("/", 1)[-1] for f in files)
        findings.fail(
            "row_count",
            "(table)",
            NO_ROWS,
            f"no data rows in {names} (empty or header only); each series needs at least "
            f"{contract.min_rows}",
            examples=Examples(),
            count=0,
        )
    elif files:
        present = set(raw[SOURCE_FILE].unique()) if SOURCE_FILE in raw.columns else set()
        check_empty_files(findings, files, present)
    all_rows = np.arange(len(raw), dtype=np.int64)
    if not [c for c in raw.columns if not c.startswith("_source_")]:
        return  # an empty file has no header: the row count says it all
    for column, rule in contract.columns.items():
        if not rule.required:
            continue
        findings.check("required_columns", column)
        if column not in raw.columns:
            found = [c for c in raw.columns if not c.startswith("_source_")]
            findings.fail(
                "required_columns",
                column,
                all_rows,
                f"column missing; the file has {found}",
                examples=Examples(),
                count=len(raw),
            )
    extras = [c for c in raw.columns if c not in contract.columns and not c.startswith("_source_")]
    findings.check("extra_columns", "(table)")
    for column in extras:
        findings.fail(
            "extra_columns",
            column,
            NO_ROWS,
            "column not in the contract (ignored); declare it with `required: false` to "
            "silence this",
            examples=Examples(),
            count=len(raw),
        )


def check_empty_files(findings: Findings, files: list[str], present: set[str]) -> None:
    """The files with no data rows (``present``: the file names rows came from)."""
    empty = [f.rsplit("/", 1)[-1] for f in files if f.rsplit("/", 1)[-1] not in present]
    findings.check("empty_file", "(file)")
    if empty:
        findings.fail(
            "empty_file",
            "(file)",
            NO_ROWS,
            f"{len(empty)} file(s) have no data rows",
            examples=Examples.of((((i,), name) for i, name in enumerate(empty)), ", "),
            count=0,
        )


def _parse_columns(
    findings: Findings, source: SourceSpec
) -> tuple[pd.DataFrame, dict[str, Parsed]]:
    raw, contract = findings.raw, findings.contract
    typed = pd.DataFrame({ROW: np.arange(len(raw), dtype=np.int64)}, index=raw.index)
    parsed: dict[str, Parsed] = {}
    for column, rule in contract.columns.items():
        if column not in raw.columns:
            continue
        if rule.type == "timestamp":
            unit = source.time_unit if column == source.timestamp else None
            result: Parsed = parse_timestamps(raw[column], source.timezone, rule.format, unit)
            parse_rule = "timestamp"
        elif rule.type in ("float", "int"):
            result = parse_numbers(raw[column], integer=rule.type == "int")
            parse_rule = "type"
        else:
            result = parse_text(raw[column])
            parse_rule = ""
        parsed[column] = result
        typed[column] = result.values
        if not parse_rule:
            continue
        findings.check(parse_rule, column)
        bad = np.flatnonzero(result.invalid.to_numpy(bool))
        if len(bad):
            reason = str(result.reasons.iloc[bad[0]])
            findings.fail(parse_rule, column, bad, reason)
        if isinstance(result, ParsedTimestamps):
            _check_timezones(findings, column, result, source)
    return typed, parsed


def _check_timezones(
    findings: Findings, column: str, result: ParsedTimestamps, source: SourceSpec
) -> None:
    findings.check("timezone", column)
    present = result.values.notna().to_numpy(bool)
    offset = result.has_offset.to_numpy(bool) & present
    naive = ~result.has_offset.to_numpy(bool) & present
    mix = TimezoneMix(
        int(offset.sum()),
        int(naive.sum()),
        findings.row_examples(np.flatnonzero(offset), [column]),
        findings.row_examples(np.flatnonzero(naive), [column]),
    )
    findings.timezones[column] = mix
    if mix.mixed:
        minority = naive if mix.naive <= mix.offset else offset
        findings.fail("timezone", column, np.flatnonzero(minority), *mix.failure(source.timezone))


def _apply_gx(
    findings: Findings, typed: pd.DataFrame, parsed: dict[str, Parsed], docs_dir: str | None
) -> tuple[str | None, bool]:
    """Run the GX suite; keep each row rule's rows that no earlier rule already reported.

    Returns the Data Docs page (or None) and GX's own verdict (every expectation but
    the row count met)."""
    from seqcast.data.gx_suite import run_suite  # GX takes seconds to import: only here

    outcomes, docs_url = run_suite(typed, findings.contract, docs_dir)
    finite: dict[str, np.ndarray] = {}
    for outcome in outcomes:
        if outcome.rule in ("row_count", "required_columns"):
            continue  # reported by the structure checks, with file names
        findings.check(outcome.rule, outcome.column)
        if outcome.success:
            continue
        rows = outcome.rows
        column = outcome.column
        if outcome.rule == "not_null" and column in parsed:
            rows = np.setdiff1d(rows, np.flatnonzero(parsed[column].invalid.to_numpy(bool)))
            reason = "null value (empty, NaN or NA)"
        elif outcome.rule == "finite":
            finite[column] = rows
            reason = "infinite value (+-inf)"
        elif outcome.rule == "range":
            rows = np.setdiff1d(rows, finite.get(column, NO_ROWS))
            rule = findings.contract.columns[column]
            reason = f"outside the allowed range [{rule.min}, {rule.max}]"
        elif outcome.rule == "categories":
            allowed = findings.contract.columns[column].categories or []
            reason = f"not one of the allowed values {_short_list(allowed)}"
        elif outcome.rule == "unique_key":
            key = findings.contract.key
            complete = typed[key].notna().all(axis=1)
            repeats = typed[key].duplicated(keep="first") & complete
            rows = np.flatnonzero(repeats.to_numpy(bool))
            reason = f"repeats the ({', '.join(key)}) key of an earlier row"
            findings.fail("unique_key", column, rows, reason, shown=key)
            continue
        else:
            reason = outcome.rule
        if len(rows):
            findings.fail(outcome.rule, column, rows, reason)
    # GX's row count is of the whole table: judged here from the row count itself, so a
    # shard of a few series does not fail it (the merge judges the table's).
    return docs_url, all(o.success for o in outcomes if o.rule != "row_count")


def _short_list(values: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _check_calendar_frequency(
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


def _check_series(
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
        _check_calendar_frequency(findings, ordered, contract_step(contract.frequency), source)
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


def _check_quarantine_share(findings: Findings, quarantined: np.ndarray) -> None:
    total = len(findings.raw)
    if not len(quarantined) or not total:
        return
    findings.check("quarantine_share", "(table)")
    by_rule = [
        (rule, column, len(findings.failed[(rule, column)].rows))
        for rule, column in findings.checked
        if (rule, column) in findings.failed and findings.severity(rule, column) == "quarantine"
    ]
    reason = quarantine_share_reason(
        total, len(quarantined), by_rule, findings.contract.quarantine_limit
    )
    if reason:
        findings.failed[("quarantine_share", "(table)")] = Failure(quarantined, reason, Examples())


def quarantine_share_reason(
    total: int, quarantined: int, by_rule: list[tuple[str, str, int]], limit: float
) -> str | None:
    """Why the run fails for quarantining too much (None: within ``limit``); ``by_rule``:
    each quarantining rule's rows, in the table's order."""
    share = quarantined / total if total else 0.0
    if not quarantined or share <= limit:
        return None
    rules = "; ".join(f"{rule} on {column!r}: {n}" for rule, column, n in by_rule if n)
    return (
        f"{quarantined} of {total} rows ({share:.1%}) would be quarantined, above "
        f"the contract's quarantine_limit of {limit:.0%} ({rules})"
    )


def _series_names(typed: pd.DataFrame, source: SourceSpec) -> pd.Series:
    """Each typed row's series as text (the validated table's names; None where missing)."""
    if not source.series_id:
        return pd.Series("series", index=typed.index, dtype=object)
    if source.series_id not in typed.columns:
        return pd.Series(None, index=typed.index, dtype=object)
    ids = typed[source.series_id]
    return ids.astype(str).where(ids.notna(), None)


def _whole_series(names: pd.Series, positions: np.ndarray) -> np.ndarray:
    """``positions`` and every other row of the series they belong to."""
    if not len(positions):
        return positions
    owners = names.iloc[positions].dropna().unique()
    whole = np.flatnonzero(names.isin(owners).to_numpy(bool))
    return np.union1d(positions, whole).astype(np.int64)


def _series_causes(findings: Findings, names: pd.Series) -> dict[str, list[str]]:
    """Each set-aside series' causes: one line per rule it broke, with its row count."""
    causes: dict[str, list[str]] = {}
    for (rule, column), failure in findings.failed.items():
        if findings.severity(rule, column) != "quarantine" or not len(failure.rows):
            continue
        owners = names.iloc[failure.rows].fillna("(no series id)")
        for name, count in owners.value_counts(sort=False).items():
            causes.setdefault(str(name), []).append(
                f"{rule} on {column!r}: {count} row(s) {failure.reason}"
            )
    return dict(sorted(causes.items()))


def _check_series_share(
    findings: Findings, causes: dict[str, list[str]], names: pd.Series, rows: np.ndarray
) -> None:
    """Prediction: fail the run when more series are set aside than the contract allows."""
    findings.check("quarantine_share", "(series)")
    failure = series_share_failure(
        int(names.dropna().nunique()), causes, findings.contract.series_quarantine_limit
    )
    if failure is not None:
        findings.failed[("quarantine_share", "(series)")] = Failure(rows, *failure)


def series_share_failure(
    total: int, causes: dict[str, list[str]], limit: float
) -> tuple[str, Examples] | None:
    """Why the run fails for setting aside too many of ``total`` series (None: within
    ``limit``), with the first series set aside as examples."""
    if not causes or not total:
        return None
    share = len(causes) / total
    if share <= limit:
        return None
    reason = (
        f"{len(causes)} of {total} series ({share:.1%}) would be set aside, above the "
        f"contract's series_quarantine_limit of {limit:.0%}"
    )
    return reason, Examples.of(((s,), f"series {s!r}: {c[0]}") for s, c in causes.items())


def clean_table(
    typed: pd.DataFrame,
    keep: np.ndarray,
    contract: Contract,
    source: SourceSpec,
    text_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """The typed rows to keep, as the window step reads them: series, UTC time, values
    (and ``text_columns``, e.g. the split column, as text)."""
    rows = typed.iloc[keep]
    out = pd.DataFrame(index=rows.index)
    series = series_column(source)
    out[series] = rows[source.series_id].astype(str) if source.series_id else "series"
    out[source.timestamp] = rows[source.timestamp]
    for column in [*source.value_columns, *source.covariate_columns]:
        rule = contract.columns.get(column)
        if rule is None or column not in rows.columns:
            continue  # a classify label is not needed to predict
        if rule.type == "label":
            # a label given on some rows only (window.per=sequence) stays null elsewhere
            out[column] = rows[column].astype(str).where(rows[column].notna(), None)
        else:
            out[column] = rows[column].astype(np.float64)
    for column in text_columns:
        if column in rows.columns:
            out[column] = rows[column].astype(str).where(rows[column].notna(), None)
    return out.sort_values([series, source.timestamp], kind="stable").reset_index(drop=True)


def table_schema(
    contract: Contract,
    source: SourceSpec,
    present: list[str],
    time_unit: str | None = None,
    text_columns: Sequence[str] = (),
) -> pa.Schema:
    """The validated table's Parquet schema, from the contract: what the window step reads.

    ``present`` are the clean table's columns (an optional label may be absent).
    ``time_unit`` (an integer time column's unit) is kept in the schema's metadata, so the
    window step and prediction report time in the source's integer form.
    """
    fields = [
        pa.field(series_column(source), pa.string()),
        pa.field(source.timestamp, pa.timestamp("us", tz="UTC")),
    ]
    for column in [*source.value_columns, *source.covariate_columns]:
        rule = contract.columns.get(column)
        if rule is not None and column in present:
            kind = pa.string() if rule.type == "label" else pa.float64()
            fields.append(pa.field(column, kind))
    fields.extend(pa.field(c, pa.string()) for c in text_columns if c in present)
    metadata = {TIME_UNIT.encode(): time_unit.encode()} if time_unit else None
    return pa.schema(fields, metadata=metadata)


def _quarantined_rows(
    findings: Findings,
    positions: np.ndarray,
    names: pd.Series | None = None,
    causes: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """The set-aside rows as read, each with the rule(s) and reason(s) that set it aside
    (at prediction time, a row of a set-aside series that broke no rule itself names its
    series' causes: ``names`` and ``causes``)."""
    rules: dict[int, list[str]] = {}
    reasons: dict[int, list[str]] = {}
    for (rule, column), failure in findings.failed.items():
        if findings.severity(rule, column) != "quarantine":
            continue
        for position in failure.rows:
            rules.setdefault(int(position), []).append(f"{rule}:{column}")
            reasons.setdefault(int(position), []).append(failure.reason)
    column = findings.context[0] if findings.context else "(table)"
    for position in positions:
        if int(position) not in rules and names is not None:
            name = str(names.iloc[int(position)])
            why = "; ".join((causes or {}).get(name, []))
            rules[int(position)] = [f"series_set_aside:{column}"]
            reasons[int(position)] = [f"series {name!r} set aside for this run: {why}"]
    positions = positions[np.argsort(findings.rank[positions], kind="stable")]
    out = findings.raw.iloc[positions].drop(columns=[POSITION]).copy()
    out[QUARANTINE_RULE] = ["; ".join(rules[int(p)]) for p in positions]
    out[QUARANTINE_REASON] = ["; ".join(reasons[int(p)]) for p in positions]
    out[QUARANTINE_RANK] = findings.rank[positions]
    return out.reset_index(drop=True)


def validate_table(
    raw: pd.DataFrame,
    contract: Contract,
    source: SourceSpec,
    files: list[str],
    docs_dir: str | None = None,
    now: datetime | None = None,
    text_columns: Sequence[str] = (),
    scope: PredictionScope | None = None,
) -> ValidationReport:
    """Check a raw snapshot (values as read, with file and line) against ``contract``.

    Args:
        raw: the snapshot: one column per source column plus ``_source_file``/``_source_line``.
        contract: the contract to meet.
        source: the config's column roles and the timezone of naive timestamps.
        files: the source files the snapshot came from (named in messages).
        docs_dir: a local directory for GX Data Docs; none = do not build them.
        now: the time freshness is judged at (default: the current time).
        text_columns: other columns the window step reads, kept as text (split.column).
        scope: prediction: check only the rows of each series that prediction reads (cut
            before parsing and GX; older rows are neither checked nor counted), and set a
            series whose rows break a row rule aside whole (`per_series_contract`), or
            whose last ``scope.gap_free`` rows have a gap (`recent_gaps`).

    With ``source.future_features``, the rows after each series' last observed target are
    future rows (`seqcast.data.future_rows`): set aside unchecked in training; at
    prediction the ``scope.future_steps`` after each series' last observation are checked
    (known-future columns not null and typed) and kept in the clean table (target NaN),
    and a missing one fails the run (rule ``future_rows``).

    Returns:
        The report; the caller decides what a ``fail`` outcome stops.
    """
    report, _findings, _series = _check(
        raw, contract, source, files, docs_dir, now, text_columns, scope, whole=True
    )
    report.quarantined = report.quarantined.drop(columns=[QUARANTINE_RANK])
    return report


@dataclass
class ShardCheck:
    """One shard of series checked: its report without the rules of the whole table
    (quarantined rows with their rank), what it found, and its number of series."""

    report: ValidationReport
    findings: Findings
    series: int


def validate_shard(
    raw: pd.DataFrame,
    contract: Contract,
    source: SourceSpec,
    files: list[str],
    docs_dir: str | None = None,
    now: datetime | None = None,
    text_columns: Sequence[str] = (),
    scope: PredictionScope | None = None,
) -> ShardCheck:
    """`validate_table` on whole series of a larger snapshot (``raw`` with its rows'
    `POSITION` in it), leaving the rules of the whole table (quarantine share, mixed
    timezones, empty files: pass ``files=[]``) to `seqcast.data.validation_merge`."""
    return ShardCheck(
        *_check(raw, contract, source, files, docs_dir, now, text_columns, scope, whole=False)
    )


def effective_contract(contract: Contract, scope: PredictionScope | None) -> Contract:
    """The contract as checked: at prediction, per series and needing ``scope.min_rows``."""
    if scope is None:
        return contract
    return per_series_contract(contract).model_copy(
        update={"min_rows": max(contract.min_rows, scope.min_rows)}
    )


def _check(
    raw: pd.DataFrame,
    contract: Contract,
    source: SourceSpec,
    files: list[str],
    docs_dir: str | None,
    now: datetime | None,
    text_columns: Sequence[str],
    scope: PredictionScope | None,
    whole: bool,
) -> tuple[ValidationReport, Findings, int]:
    raw = raw.reset_index(drop=True)
    if POSITION not in raw.columns:
        raw[POSITION] = np.arange(len(raw), dtype=np.int64)
    snapshot_rows = len(raw)
    context: list[str] = []
    contract = effective_contract(contract, scope)
    if scope is not None:
        context = [source.series_id] if source.series_id else []
    rank = raw[POSITION].to_numpy(np.int64)
    findings = Findings(raw=raw, contract=contract, context=context, rank=rank)
    _check_structure(findings, files)  # on every row: a file of old rows only is not empty
    split = None
    if not len(findings.rows_with(("fail",))):
        # (rows failed so far: a missing column, which stops the run; positions kept as they are)
        raw, split = rows_read(raw, contract, source, scope)
        findings.raw = raw
    future = np.arange(len(raw) - (len(split.future) if split else 0), len(raw), dtype=np.int64)
    findings.rank = raw[POSITION].to_numpy(np.int64).copy()
    findings.rank[future] += FUTURE_RANK
    typed, parsed = _parse_columns(findings, source)
    docs_url, gx_success = _apply_gx(findings, typed, parsed, docs_dir)
    if whole:
        gx_success = gx_success and len(typed) >= contract.min_rows
    # a future row has no target (what makes it one) and may leave static columns blank
    _exempt(findings, future, [*source.value_columns, *source.static_features])
    names = _series_names(typed, source)
    set_aside = findings.rows_with(("quarantine", "fail"))
    if scope is not None:
        # a series with a broken row is out: its length etc. are not judged again
        set_aside = _whole_series(names, set_aside)
        if scope.gap_free:
            observed = np.setdiff1d(np.arange(len(raw), dtype=np.int64), set_aside)
            _check_recent_gaps(findings, typed, np.setdiff1d(observed, future), scope, source)
            set_aside = _whole_series(names, findings.rows_with(("quarantine", "fail")))
    kept = np.setdiff1d(np.arange(len(raw), dtype=np.int64), set_aside)
    _check_series(findings, typed, np.setdiff1d(kept, future), source, now or datetime.now(UTC))
    quarantined = findings.rows_with(("quarantine",))
    causes: dict[str, list[str]] = {}
    if scope is not None:
        quarantined = _whole_series(names, quarantined)
        if split is not None and split.missing:
            _check_future_rows(findings, split, names, quarantined, source, scope.future_steps)
        causes = _series_causes(findings, names)
        if whole:
            _check_series_share(findings, causes, names, quarantined)
    elif whole:
        _check_quarantine_share(findings, quarantined)
    results = findings.results()
    if any(r.outcome == "fail" for r in results):
        clean = pd.DataFrame()  # the run stops; nothing goes on
    else:
        keep = np.setdiff1d(np.arange(len(raw), dtype=np.int64), quarantined)
        clean = clean_table(typed, keep, contract, source, text_columns)
    stamps = parsed.get(source.timestamp)
    time_unit = stamps.unit if isinstance(stamps, ParsedTimestamps) else None
    if time_unit:
        clean.attrs[TIME_UNIT] = time_unit  # the window step reports integer time back
    report = ValidationReport(
        contract=contract.name,
        files=files,
        rows=snapshot_rows,
        results=results,
        clean=clean,
        quarantined=_quarantined_rows(
            findings, quarantined, names if scope is not None else None, causes
        ),
        quarantine_limit=contract.quarantine_limit,
        docs_url=docs_url,
        gx_success=gx_success,
        time_unit=time_unit,
        scope=scope,
        checked_rows=len(raw) if scope is not None else None,
        set_aside=causes,
        series_limit=contract.series_quarantine_limit if scope is not None else None,
        future_rows=len(np.setdiff1d(future, quarantined)) if len(clean) else 0,
        unused_future_rows=split.unused if split else 0,
    )
    return report, findings, int(names.dropna().nunique())


def _exempt(findings: Findings, rows: np.ndarray, columns: Sequence[str]) -> None:
    """Drop ``rows`` from the row rules failed on ``columns`` (a future row's blank target
    is what makes it a future row, not a null)."""
    if not len(rows):
        return
    for (rule, column), failure in list(findings.failed.items()):
        if column not in columns or rule not in ROW_RULES:
            continue
        left = np.setdiff1d(failure.rows, rows)
        del findings.failed[(rule, column)]
        if len(left):
            findings.fail(rule, column, left, failure.reason)


def _check_recent_gaps(
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
            "series": _series_names(rows, source).to_numpy(),
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


def _check_future_rows(
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
