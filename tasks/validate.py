"""Step 2, validate: check the snapshot against its data contract with Great Expectations."""

from __future__ import annotations

import hashlib
import logging

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from seqcast import storage
from seqcast.config import PipelineConfig
from seqcast.contracts import contract_for
from seqcast.records import SnapshotRef, ValidatedRef
from seqcast.validation import (
    RuleResult,
    raise_on_failures,
    run_suite,
    series_column,
    typed_table,
)
from tasks.common import STEP_OPTIONS

# GX announces every ephemeral context's temporary docs directory at INFO (its module sets
# that logger's level itself); keep run logs to what the user needs.
for _name in ("great_expectations", "great_expectations.data_context.types.base"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def publish_results(config: PipelineConfig, results: list[RuleResult]) -> None:
    """A table artifact under a stable key, so the UI shows its history run over run."""
    create_table_artifact(
        key=f"{config.name}-validation",
        table=[
            {
                "rule": r.rule,
                "column": r.column,
                "failed_rows": r.failed_rows,
                "outcome": "pass" if r.success else "fail",
                "examples": r.examples,
            }
            for r in results
        ],
        description=f"Data contract checks of pipeline `{config.name}`",
    )


@task(name="validate", **STEP_OPTIONS)
def validate(
    config: PipelineConfig, snapshot: SnapshotRef, predicting: bool = False
) -> ValidatedRef:
    """Run the contract's GX suite; stop the run on a failed rule, else write the typed table."""
    contract = contract_for(config, predicting)
    fingerprint = hashlib.sha256(
        f"{snapshot.fingerprint}{contract.model_dump_json()}{config.source.model_dump_json()}".encode()
    ).hexdigest()
    uri = storage.join(config.pipeline_root, "validated", fingerprint[:16], "data.parquet")
    frame = storage.read_parquet(snapshot.uri).to_pandas()
    results = run_suite(frame, contract)
    publish_results(config, results)
    raise_on_failures(results, snapshot.files)
    typed = typed_table(frame, contract, config.source)
    if not storage.exists(uri):
        storage.write_frame(typed, uri)
    n_series = int(typed[series_column(config.source)].nunique())
    get_run_logger().info(
        "Contract %s: %d checks passed on %d rows of %d series",
        contract.name,
        len(results),
        len(typed),
        n_series,
    )
    return ValidatedRef(uri=uri, rows=len(typed), fingerprint=fingerprint, series=n_series)
