"""One validation report from shards of whole series, as one whole-table run would give.

Each shard (`seqcast.data.validation.validate_shard`) leaves a summary: the rules it
checked in order, each failure's row counts, reason and keyed examples, its timezone mix,
its set-aside series. `merge` combines them:

- rules: checked in the order the shards checked them; counts summed; the reason of the
  shard whose failing row comes first in the snapshot; examples merged by key;
- rules of the whole table, judged on the sums: empty files, mixed timezones (a table
  whose offsets and naive timestamps sit in different shards mixes them too), GX's row
  count, the quarantine share (training) and the series share (prediction).

A table mixing timezones fails either way; its series rules may then count rows a
whole-table run had already set aside for the mix (the run fails before anything is
written, so nothing downstream sees the difference).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from seqcast.data.contracts import Contract
from seqcast.data.findings import Examples, Failure, Findings, RuleResult, TimezoneMix
from seqcast.data.prediction_scope import PredictionScope
from seqcast.data.validation import (
    QUARANTINE_RANK,
    ShardCheck,
    ValidationReport,
    check_empty_files,
    quarantine_share_reason,
    series_share_failure,
)

_TABLE_RULES = {("quarantine_share", "(table)"), ("quarantine_share", "(series)")}


def _failure_dict(rule: str, column: str, failure: Failure) -> dict[str, Any]:
    return {
        "rule": rule,
        "column": column,
        "rows": len(failure.rows),
        "failed": failure.count if failure.count is not None else len(failure.rows),
        "reason": failure.reason,
        "first": failure.first,
        "examples": failure.examples.to_dict(),
    }


def summary(check: ShardCheck, series_column: str) -> dict[str, Any]:
    """What the merge needs of one shard, as JSON (its rows stay in its part files)."""
    report, findings = check.report, check.findings
    return {
        "rows": report.rows,
        "frame_rows": len(findings.raw),
        "checked": [list(c) for c in findings.checked],
        "failures": [_failure_dict(r, c, f) for (r, c), f in findings.failed.items()],
        "timezones": {
            column: {
                "offset": mix.offset,
                "naive": mix.naive,
                "offset_examples": mix.offset_examples.to_dict(),
                "naive_examples": mix.naive_examples.to_dict(),
            }
            for column, mix in findings.timezones.items()
        },
        "quarantined": len(report.quarantined),
        "clean_rows": len(report.clean),
        "clean_series": int(report.clean[series_column].nunique()) if len(report.clean) else 0,
        "series": check.series,
        "set_aside": report.set_aside,
        "future_rows": report.future_rows,
        "unused_future_rows": report.unused_future_rows,
        "checked_rows": report.checked_rows,
        "gx_success": report.gx_success,
        "docs_url": report.docs_url,
        "time_unit": report.time_unit,
    }


def _checked_order(lists: list[list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """The rules in the order the shards checked them (a rule some shard skipped, e.g.
    series rules where every row failed parsing, after the one it follows elsewhere)."""
    merged: list[tuple[str, str]] = []
    for checked in lists:
        after = -1
        for item in checked:
            if item in merged:
                after = merged.index(item)
            else:
                merged.insert(after + 1, item)
                after += 1
    return merged


def _insert_after(order: list[tuple[str, str]], item: tuple[str, str], anchor: str) -> None:
    if item in order:
        return
    at = next((i for i, (rule, _c) in enumerate(order) if rule == anchor), -1)
    order.insert(at + 1, item)


def merge(
    summaries: list[dict[str, Any]],
    contract: Contract,
    files: list[str],
    files_with_rows: set[str] | None,
    scope: PredictionScope | None,
    quarantined: pd.DataFrame,
    timezone: str,
) -> ValidationReport:
    """The report of several shards: ``contract`` as checked (`effective_contract`),
    ``quarantined`` the shards' quarantined rows (with their rank, any order),
    ``files_with_rows`` the file names rows came from (None: one shard, which judged the
    empty files itself)."""
    order = _checked_order([[(r, c) for r, c in s["checked"]] for s in summaries])
    parts: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in summaries:
        for f in s["failures"]:
            parts.setdefault((f["rule"], f["column"]), []).append(f)
    failures: dict[tuple[str, str], tuple[int, int, str, Examples]] = {}
    for key, found in parts.items():
        if key[0] == "timezone" or key in _TABLE_RULES:
            continue
        first = min(found, key=lambda f: f["first"])
        examples = Examples.merge([Examples.from_dict(f["examples"]) for f in found])
        failures[key] = (
            sum(f["rows"] for f in found),
            sum(f["failed"] for f in found),
            first["reason"],
            examples,
        )
    rows = sum(s["rows"] for s in summaries)
    frame_rows = sum(s["frame_rows"] for s in summaries)  # the rows checked
    if files_with_rows is not None and files and rows:
        _insert_after(order, ("empty_file", "(file)"), "row_count")
        findings = Findings(raw=pd.DataFrame(), contract=contract)
        check_empty_files(findings, files, files_with_rows)
        if ("empty_file", "(file)") in findings.failed:
            failure = findings.failed[("empty_file", "(file)")]
            failures[("empty_file", "(file)")] = (0, 0, failure.reason, failure.examples)
    for column in {c for s in summaries for c in s["timezones"]}:
        mix = TimezoneMix.merge(
            [_mix(s["timezones"][column]) for s in summaries if column in s["timezones"]]
        )
        if mix.mixed:
            reason, examples = mix.failure(timezone)
            minority = mix.naive if mix.naive <= mix.offset else mix.offset
            failures[("timezone", column)] = (minority, minority, reason, examples)
    n_quarantined = sum(s["quarantined"] for s in summaries)
    set_aside = dict(sorted(item for s in summaries for item in s["set_aside"].items()))
    if scope is not None:
        order.append(("quarantine_share", "(series)"))
        share = series_share_failure(
            sum(s["series"] for s in summaries), set_aside, contract.series_quarantine_limit
        )
        if share is not None:
            failures[("quarantine_share", "(series)")] = (n_quarantined, n_quarantined, *share)
    elif n_quarantined and rows:
        order.append(("quarantine_share", "(table)"))
        by_rule = [
            (rule, column, failures[(rule, column)][0])
            for rule, column in order
            if (rule, column) in failures and _severity(contract, rule, column) == "quarantine"
        ]
        too_many = quarantine_share_reason(
            frame_rows, n_quarantined, by_rule, contract.quarantine_limit
        )
        if too_many:
            failures[("quarantine_share", "(table)")] = (
                n_quarantined,
                n_quarantined,
                too_many,
                Examples(),
            )
    results = [
        _result(contract, rule, column, failures.get((rule, column))) for rule, column in order
    ]
    failed = any(r.outcome == "fail" for r in results)
    gx = [s["gx_success"] for s in summaries]
    return ValidationReport(
        contract=contract.name,
        files=files,
        rows=rows,
        results=results,
        clean=pd.DataFrame(),
        quarantined=quarantined.sort_values(QUARANTINE_RANK, kind="stable")
        .drop(columns=[QUARANTINE_RANK])
        .reset_index(drop=True),
        quarantine_limit=contract.quarantine_limit,
        docs_url=next((s["docs_url"] for s in summaries if s["docs_url"]), None),
        gx_success=None if None in gx else all(gx) and frame_rows >= contract.min_rows,
        time_unit=next((s["time_unit"] for s in summaries if s["time_unit"]), None),
        scope=scope,
        checked_rows=sum(s["checked_rows"] or 0 for s in summaries) if scope else None,
        set_aside=set_aside,
        series_limit=contract.series_quarantine_limit if scope is not None else None,
        future_rows=0 if failed else sum(s["future_rows"] for s in summaries),
        unused_future_rows=sum(s["unused_future_rows"] for s in summaries),
        kept_rows=0 if failed else sum(s["clean_rows"] for s in summaries),
        kept_series=0 if failed else sum(s["clean_series"] for s in summaries),
    )


def _mix(data: dict[str, Any]) -> TimezoneMix:
    return TimezoneMix(
        int(data["offset"]),
        int(data["naive"]),
        Examples.from_dict(data["offset_examples"]),
        Examples.from_dict(data["naive_examples"]),
    )


def _severity(contract: Contract, rule: str, column: str) -> str:
    return contract.severity_of(rule, column if column in contract.columns else None)


def _result(
    contract: Contract,
    rule: str,
    column: str,
    failure: tuple[int, int, str, Examples] | None,
) -> RuleResult:
    severity = _severity(contract, rule, column)
    if failure is None:
        return RuleResult(rule, column, severity, 0, "pass")
    _rows, failed, reason, examples = failure
    return RuleResult(rule, column, severity, failed, severity, reason, examples.text())  # type: ignore[arg-type]
