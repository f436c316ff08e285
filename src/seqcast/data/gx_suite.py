"""The Great Expectations side of validation: a suite derived from a contract, run in memory.

The suite is built from the contract on an ephemeral context, so nothing but the contract
file lives in git. It runs over the *parsed* table (typed values plus a ``_row`` position)
and reports, per rule, the row positions that failed; `seqcast.data.validation` turns those
into outcomes. When asked, the run also builds GX Data Docs into a local directory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
from great_expectations.checkpoint import ValidationAction
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations.metadata_types import FailureSeverity

from seqcast.data.contracts import ROW, Contract, Severity

logger = logging.getLogger(__name__)

DOCS_SITE = "seqcast"
_LARGEST_FLOAT = float(np.finfo(np.float64).max)
_GX_SEVERITY = {
    "fail": FailureSeverity.CRITICAL,
    "quarantine": FailureSeverity.WARNING,
    "warn": FailureSeverity.INFO,
}


@dataclass(frozen=True)
class GxOutcome:
    """One expectation's result: the rule it implements and the failing row positions."""

    rule: str
    column: str
    success: bool
    rows: np.ndarray
    observed: int | None = None


def _expect(suite: gx.ExpectationSuite, expectation: gxe.Expectation) -> None:
    suite.add_expectation(expectation)


def build_suite(contract: Contract, frame: pd.DataFrame) -> gx.ExpectationSuite:
    """The GX suite for ``contract``; per-column rules only for columns that exist.

    Each expectation carries ``meta.rule`` (the contract rule it implements) and a GX
    severity mapped from the contract's (fail -> critical, quarantine -> warning,
    warn -> info), so Data Docs show the same severities as the seqcast report.
    """

    def sev(rule: str, column: str | None = None) -> FailureSeverity:
        severity: Severity = contract.severity_of(rule, column)
        return _GX_SEVERITY[severity]

    suite = gx.ExpectationSuite(name=contract.name)
    _expect(
        suite,
        gxe.ExpectTableRowCountToBeBetween(
            min_value=contract.min_rows, meta={"rule": "row_count"}, severity=sev("row_count")
        ),
    )
    for column, rule in contract.columns.items():
        if rule.required:
            _expect(
                suite,
                gxe.ExpectColumnToExist(
                    column=column,
                    meta={"rule": "required_columns"},
                    severity=sev("required_columns"),
                ),
            )
        if column not in frame.columns:
            continue
        if not rule.nullable:
            _expect(
                suite,
                gxe.ExpectColumnValuesToNotBeNull(
                    column=column, meta={"rule": "not_null"}, severity=sev("not_null", column)
                ),
            )
        if rule.type in ("float", "int"):
            _expect(
                suite,
                gxe.ExpectColumnValuesToBeBetween(
                    column=column,
                    min_value=-_LARGEST_FLOAT,
                    max_value=_LARGEST_FLOAT,
                    meta={"rule": "finite"},
                    severity=sev("finite", column),
                ),
            )
            if rule.min is not None or rule.max is not None:
                _expect(
                    suite,
                    gxe.ExpectColumnValuesToBeBetween(
                        column=column,
                        min_value=rule.min,
                        max_value=rule.max,
                        meta={"rule": "range"},
                        severity=sev("range", column),
                    ),
                )
        if rule.categories is not None:
            _expect(
                suite,
                gxe.ExpectColumnValuesToBeInSet(
                    column=column,
                    value_set=list(rule.categories),
                    meta={"rule": "categories"},
                    severity=sev("categories", column),
                ),
            )
    key = contract.key
    if key and all(c in frame.columns for c in key):
        meta = {"rule": "unique_key"}
        if len(key) > 1:
            _expect(
                suite,
                gxe.ExpectCompoundColumnsToBeUnique(
                    column_list=list(key), meta=meta, severity=sev("unique_key")
                ),
            )
        else:
            _expect(
                suite,
                gxe.ExpectColumnValuesToBeUnique(
                    column=key[0], meta=meta, severity=sev("unique_key")
                ),
            )
    return suite


def run_suite(
    frame: pd.DataFrame, contract: Contract, docs_dir: str | None = None
) -> tuple[list[GxOutcome], str | None]:
    """Run the contract's suite over a parsed ``frame`` that has a ``_row`` column.

    Args:
        frame: typed values, one column per contract column present, plus ``_row``.
        contract: the contract the suite is derived from.
        docs_dir: a local directory for GX Data Docs; none = do not build them.

    Returns:
        One outcome per expectation, and the Data Docs page of this run (or None).
    """
    # In-memory stores and no default docs site (GX's default names a temp directory per run).
    sites: dict = {}
    actions: list[ValidationAction] = []
    if docs_dir is not None:
        Path(docs_dir).mkdir(parents=True, exist_ok=True)
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(Path(docs_dir).resolve()),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        actions.append(gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=[DOCS_SITE]))
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("seqcast").add_dataframe_asset("snapshot")
    batch = asset.add_batch_definition_whole_dataframe("all-rows")
    suite = context.suites.add(build_suite(contract, frame))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=contract.name, data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=contract.name,
            validation_definitions=[definition],
            actions=actions,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]},
        )
    )
    run = checkpoint.run(batch_parameters={"dataframe": frame})
    identifier, result = next(iter(run.run_results.items()))
    docs_url = None
    if docs_dir is not None:
        urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE)
        docs_url = urls[0]["site_url"] if urls else None
    outcomes = []
    for item in result.results:
        expectation = item.expectation_config
        assert expectation is not None  # a checkpoint's results each carry their expectation
        column = expectation.kwargs.get("column") or ",".join(
            expectation.kwargs.get("column_list") or []
        )
        index_list = item.result.get("unexpected_index_list") or []
        rows = np.asarray([int(entry[ROW]) for entry in index_list], dtype=np.int64)
        observed = item.result.get("observed_value")
        outcomes.append(
            GxOutcome(
                rule=str(expectation.meta["rule"]),
                column=column or "(table)",
                success=bool(item.success),
                rows=rows,
                observed=int(observed) if isinstance(observed, int | np.integer) else None,
            )
        )
    return outcomes, docs_url
