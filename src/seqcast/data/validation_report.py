"""How a validation report reads: the error a failed run raises, the markdown summary, the
table rows of the Prefect artifact and the JSON kept beside the data.

Kept apart from `seqcast.data.validation` so the checks stay short and the wording is in one
place: every message names the file(s), the column, the rule, how many rows and up to
five example rows with their lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from seqcast.data.validation import RuleResult, ValidationReport
from seqcast.io import storage

_ARTIFACT_EXAMPLES = 400
_SET_ASIDE_SHOWN = 20
_LABELS = {
    "pass": "PASSED",
    "warn": "PASSED with warnings",
    "quarantine": "PASSED with rows quarantined",
    "fail": "FAILED",
}


def file_names(files: list[str]) -> str:
    names = [f.rsplit("/", 1)[-1] for f in files]
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _line(result: RuleResult) -> str:
    head = (
        f"  - rule {result.rule} on column {result.column!r} ({result.severity}): "
        f"{result.failed_rows} row(s) {result.reason}"
    )
    return head + (f"\n      e.g. {result.examples}" if result.examples else "")


def failure_message(report: ValidationReport, report_uri: str, contract_origin: str) -> str:
    """The `DataContractError` text of a failed validation: every failed rule with rows.

    ``contract_origin`` says where the contract came from, e.g. ``the contract
    schemas/x.yaml``; the message tells the user to fix the rows or that.
    """
    failures = report.failures
    lines = [
        f"data contract {report.contract!r} failed on {file_names(report.files)} "
        f"({report.rows} rows): {len(failures)} rule(s) failed"
    ]
    lines += [_line(r) for r in failures]
    others = [r for r in report.results if r.outcome in ("quarantine", "warn")]
    if others:
        lines.append("  also (not fatal on their own):")
        lines += [_line(r) for r in others]
    lines.append(
        f"Fix the source rows (or {contract_origin}) and run again; the source files were "
        "not changed."
    )
    lines.append(f"Report: {report_uri}")
    return "\n".join(lines)


def artifact_rows(report: ValidationReport) -> list[dict[str, Any]]:
    """One row per rule for the Prefect table artifact (examples shortened)."""
    rows = []
    for r in report.results:
        examples = r.examples
        if len(examples) > _ARTIFACT_EXAMPLES:
            examples = examples[: _ARTIFACT_EXAMPLES - 1] + "…"
        rows.append(
            {
                "rule": r.rule,
                "column": r.column,
                "severity": r.severity,
                "failed_rows": r.failed_rows,
                "outcome": r.outcome,
                "reason": r.reason,
                "examples": examples,
            }
        )
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_markdown(
    report: ValidationReport,
    report_uri: str,
    quarantine_uri: str | None,
    docs_url: str | None,
) -> str:
    """A short markdown summary: outcome, counts, where things are, the rules that did not pass."""
    quarantined = len(report.quarantined)
    share = quarantined / report.rows if report.rows else 0.0
    passed = sum(1 for r in report.results if r.outcome == "pass")
    where = f" in `{quarantine_uri}`" if quarantine_uri else ""
    lines = [
        f"## Data contract `{report.contract}`: {_LABELS[report.outcome]}",
        "",
        f"- source: {len(report.files)} file(s) ({file_names(report.files)}), {report.rows} rows",
        f"- rules: {passed} of {len(report.results)} passed",
        f"- clean rows passed on: {report.clean_rows}",
    ]
    if report.scope is None:
        lines.append(
            f"- quarantined rows: {quarantined} ({share:.1%}; limit "
            f"{report.quarantine_limit:.0%}){where}"
        )
    else:
        lines += _scope_lines(report, where)
    lines += [f"- report: `{report_uri}`", _docs_line(docs_url)]
    if report.gx_success is False and report.outcome != "fail":
        # Data Docs say "Failed" here: say why, so the two verdicts do not contradict.
        lines += [
            "",
            f"Great Expectations' own result (its Data Docs) reads **Failed** for this "
            f"check: GX fails an expectation on any bad row, whatever its severity. The "
            f"contract decides by severity: rows that break a `quarantine` rule are set aside "
            f"(within the limit) and `warn` rules only warn, so the data "
            f"{_LABELS[report.outcome]}.",
        ]
    flagged = [r for r in report.results if r.outcome != "pass"]
    if flagged:
        lines += [
            "",
            "| rule | column | severity | failed rows | outcome | reason | examples |",
            "|---|---|---|---:|---|---|---|",
        ]
        lines += [
            f"| {r.rule} | {_cell(r.column)} | {r.severity} | {r.failed_rows} | {r.outcome} "
            f"| {_cell(r.reason)} | {_cell(r.examples[:300])} |"
            for r in flagged
        ]
    else:
        lines += ["", "Every rule passed."]
    return "\n".join(lines) + "\n"


def _scope_lines(report: ValidationReport, where: str) -> list[str]:
    """Prediction: which rows were checked and each series set aside, with its causes."""
    assert report.scope is not None
    read = (
        f"each series' last {report.scope.rows} rows, what prediction reads"
        if report.scope.rows is not None
        else "every row: prediction reads each series whole"
    )
    limit = report.series_limit or 0.0
    lines = [
        f"- rows checked: {report.checked_rows} ({read})",
        f"- series set aside for this run: {len(report.set_aside)} (limit {limit:.0%} of "
        f"series){where}",
    ]
    return lines + set_aside_lines(report.set_aside, _SET_ASIDE_SHOWN, indent="  ")


def set_aside_lines(set_aside: dict[str, list[str]], shown: int, indent: str = "") -> list[str]:
    """A markdown list of the first ``shown`` set-aside series with their causes, then how
    many more (the validation report's and the prediction artifact's lists)."""
    lines = [
        f"{indent}- `{series}`: {_cell('; '.join(causes))}"
        for series, causes in list(set_aside.items())[:shown]
    ]
    more = len(set_aside) - shown
    if more > 0:
        lines.append(f"{indent}- and {more} more (the quarantine file lists them all)")
    return lines


def _docs_line(docs_url: str | None) -> str:
    """Where GX's Data Docs are, as a plain path and not a link: the Prefect UI cannot open a
    ``file://`` link, and the pages load their styles from the internet."""
    if not docs_url:
        return "- Great Expectations Data Docs: not built (data_root is not a local path)"
    path = docs_url.removeprefix("file://")
    return (
        f"- Great Expectations Data Docs (the same checks as HTML, on the machine that ran "
        f"them; open the file in a browser there, online for their styles): `{path}`"
    )


def report_document(report: ValidationReport, **locations: str | None) -> dict[str, Any]:
    """The JSON kept beside the data: outcome, counts, locations and every rule's result."""
    return {
        "contract": report.contract,
        "outcome": report.outcome,
        "files": report.files,
        "rows": report.rows,
        "clean_rows": report.clean_rows,
        "quarantined_rows": len(report.quarantined),
        "quarantine_limit": report.quarantine_limit,
        **(
            {
                "checked_rows": report.checked_rows,
                "rows_read_per_series": report.scope.rows,
                "series_set_aside": report.set_aside,
                "series_quarantine_limit": report.series_limit,
            }
            if report.scope is not None
            else {}
        ),
        **locations,
        "results": artifact_rows(report),
    }


@dataclass(frozen=True)
class ReportFiles:
    """Where one validation's outputs were written."""

    report_uri: str
    summary_uri: str
    quarantine_uri: str | None
    summary: str


def _quarantine_table(report: ValidationReport) -> pa.Table:
    frame = report.quarantined
    text = {c: frame[c].astype("str") for c in frame.columns if frame[c].dtype != "int64"}
    return pa.Table.from_pandas(frame.assign(**text), preserve_index=False)


def save_report(report: ValidationReport, pipeline_root: str, run_key: str) -> ReportFiles:
    """Write the report JSON, the markdown summary and any quarantined rows.

    Quarantined rows go to ``{pipeline_root}/quarantine/{run_key}.parquet`` (as read, with
    the rule and reason of each row); the report and summary to
    ``{pipeline_root}/validation/{run_key}/``. Every write is atomic.
    """
    folder = storage.join(pipeline_root, "validation", run_key)
    report_uri = storage.join(folder, "report.json")
    summary_uri = storage.join(folder, "summary.md")
    quarantine_uri = None
    if len(report.quarantined):
        quarantine_uri = storage.join(pipeline_root, "quarantine", f"{run_key}.parquet")
        storage.write_parquet(_quarantine_table(report), quarantine_uri)
    summary = summary_markdown(report, report_uri, quarantine_uri, report.docs_url)
    document = report_document(
        report, quarantine_uri=quarantine_uri, docs_url=report.docs_url, summary_uri=summary_uri
    )
    storage.write_json(report_uri, document)
    storage.write_bytes(summary_uri, summary.encode("utf-8"))
    return ReportFiles(report_uri, summary_uri, quarantine_uri, summary)
