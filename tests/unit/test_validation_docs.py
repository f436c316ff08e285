"""Issue 14 #9: the validation summary (the Prefect artifact and `seqcast validate`'s output)
explains GX's "Failed" for data seqcast passes with rows quarantined, and does not link the
Data Docs (a ``file://`` link the UI cannot open)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from seqcast.data.contracts import contract_for
from seqcast.data.ingest import read_source_file, resolve_source_files
from seqcast.data.validation import validate_table
from seqcast.data.validation_report import summary_markdown
from tests.unit.test_contracts import sample_config


def one_file(tmp_path: Path) -> tuple[pd.DataFrame, list[str], object]:
    config = sample_config(tmp_path)
    files = resolve_source_files(config.source.path)[:1]
    return read_source_file(files[0]), files, config


def test_quarantined_rows_pass_and_the_summary_says_why_gx_reads_failed(tmp_path: Path) -> None:
    raw, files, config = one_file(tmp_path)
    raw.loc[5, "load"] = float("nan")  # not_null on load: a quarantine rule
    report = validate_table(raw, contract_for(config), config.source, files, str(tmp_path / "d"))
    assert (report.outcome, report.gx_success) == ("quarantine", False)
    page = Path(report.docs_url.removeprefix("file://"))
    assert "Failed" in page.read_text()  # what the user saw in the Data Docs

    summary = summary_markdown(report, "r.json", "q.parquet", report.docs_url)
    assert "PASSED with rows quarantined" in summary
    assert "its Data Docs) reads **Failed**" in summary
    assert "so the data PASSED with rows quarantined." in summary
    assert "](file://" not in summary and "file://" not in summary  # no dead link in the UI
    assert f"`{page}`" in summary  # the path, for a browser on this machine


def test_clean_data_has_no_note(tmp_path: Path) -> None:
    raw, files, config = one_file(tmp_path)
    report = validate_table(raw, contract_for(config), config.source, files, None)
    assert (report.outcome, report.gx_success, report.docs_url) == ("pass", True, None)
    summary = summary_markdown(report, "r.json", None, None)
    assert "Failed" not in summary
    assert "Data Docs: not built" in summary
