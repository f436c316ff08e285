"""One validation shard checked against its contract, its parts written to the work folder.

What the `validate-shard` task does (`tasks.validate.check_shard`), here without Prefect so
that the command's side process (`seqcast.side_process`) can run it too.

The work folder holds what every shard checks against (``checks.json``, written by the
plan) and each shard's parts: its clean rows, its quarantined rows and its summary, which
the publish task merges.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from seqcast.config import PipelineConfig, series_column
from seqcast.data.contracts import Contract, contract_from_dict
from seqcast.data.prediction_scope import PredictionScope
from seqcast.data.validation import effective_contract, table_schema, validate_shard
from seqcast.data.validation_merge import summary
from seqcast.data.validation_shards import read_shard
from seqcast.io import storage
from seqcast.io.memory import release_freed_memory
from seqcast.records import SnapshotRef, ValidationPlanRef, ValidationShardRef


def read_checks(plan: ValidationPlanRef) -> tuple[Contract, str, PredictionScope | None, datetime]:
    """The contract, where it comes from, the prediction scope and the time freshness is
    judged at, as the plan stored them."""
    stored = storage.read_json(storage.join(plan.work, "checks.json"))
    scope = PredictionScope(**stored["scope"]) if stored["scope"] is not None else None
    contract = contract_from_dict(stored["contract"], stored["origin"])
    return contract, stored["origin"], scope, datetime.fromisoformat(stored["now"])


def part_uri(plan: ValidationPlanRef, kind: str, number: int, suffix: str = "parquet") -> str:
    """Shard ``number``'s ``kind`` part (clean, quarantine, summary) in the work folder."""
    return storage.join(plan.work, f"{kind}-{number:05d}.{suffix}")


def check_shard_parts(
    config: PipelineConfig,
    snapshot: SnapshotRef,
    plan: ValidationPlanRef,
    shard: ValidationShardRef,
    docs_dir: str | None,
    text_columns: list[str],
) -> str:
    """Check one shard of series; write its clean rows, its quarantined rows and its
    summary to the work folder. Returns the summary's URI.

    ``docs_dir``: where GX writes Data Docs (one shard does); ``text_columns``: columns
    read as text (`tasks.validate.text_columns`).
    """
    contract, _origin, scope, now = read_checks(plan)
    raw = read_shard(shard)
    alone = len(plan.shards) == 1
    check = validate_shard(
        raw,
        contract,
        config.source,
        snapshot.files if alone else [],  # several shards: the merge finds empty files
        docs_dir=docs_dir,
        now=now,
        text_columns=text_columns,
        scope=scope,
    )
    del raw
    report = check.report
    if len(report.clean):
        columns = list(report.clean.columns)
        schema = table_schema(
            effective_contract(contract, scope),
            config.source,
            columns,
            report.time_unit,
            text_columns,
        )
        table = pa.Table.from_pandas(report.clean, schema=schema, preserve_index=False)
        storage.write_parquet(table, part_uri(plan, "clean", shard.number))
        del table
    if len(report.quarantined):
        storage.write_frame(report.quarantined, part_uri(plan, "quarantine", shard.number))
    uri = part_uri(plan, "summary", shard.number, "json")
    storage.write_json(uri, summary(check, series_column(config.source)))
    del check, report
    release_freed_memory()  # else the heap keeps each shard's frames (`seqcast.io.memory`)
    return uri
