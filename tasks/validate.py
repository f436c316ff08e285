"""Step 2, validate: check the snapshot against its data contract with Great Expectations.

Shard by shard, like the window step (`flows.sharded.validate_shards` maps them on the
configured runner): `plan_validation` cuts the snapshot into shards of whole series
(`seqcast.data.validation_shards`), `check_shard` runs the contract's checks on one shard
and writes its clean and quarantined rows and a summary to the run's work folder
(`seqcast.data.shard_check`; a snapshot of one shard in the command's side process,
`seqcast.side_process`), and
`validate` merges the summaries into one report (`seqcast.data.validation_merge`),
publishes it, and writes the validated table from the clean parts in one atomic write:
the step's one commit point. A run killed midway leaves its work folder, which the next
run removes; the validated tables already published are never touched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import sys
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import get_run_logger, task
from prefect.artifacts import MarkdownArtifact, TableArtifact

from seqcast import side_process
from seqcast.config import NOT_DATA, PipelineConfig
from seqcast.data.contracts import PREDICTION_CONTRACT, Contract, contract_for, contract_from_dict
from seqcast.data.ingest import SOURCE_TEST
from seqcast.data.prediction_scope import PredictionScope
from seqcast.data.shard_check import check_shard_parts, part_uri, read_checks
from seqcast.data.validation import (
    QUARANTINE_RANK,
    ValidationReport,
    effective_contract,
)
from seqcast.data.validation_merge import merge
from seqcast.data.validation_report import (
    ReportFiles,
    artifact_rows,
    failure_message,
    save_report,
)
from seqcast.data.validation_shards import plan_shards, write_shards
from seqcast.errors import DataContractError, RegistryError
from seqcast.io import row_groups, storage, work_dirs
from seqcast.records import SnapshotRef, ValidatedRef, ValidationPlanRef, ValidationShardRef
from tasks.common import STEP_OPTIONS

# GX announces every ephemeral context's temporary docs directory at INFO (its module sets
# that logger's level itself); keep run logs to what the user needs.
for _name in ("great_expectations", "great_expectations.data_context.types.base"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def artifact_key(config: PipelineConfig, predicting: bool) -> str:
    """Stable per pipeline and purpose, so the UI shows the history run over run."""
    return f"{config.name}-{'prediction-' if predicting else ''}validation"


def prediction_contract(config: PipelineConfig) -> tuple[Contract, str]:
    """The champion's stored prediction contract, read without loading the model."""
    from seqcast.serving import registry  # imports Keras: only the prediction flow needs it

    version = registry.champion_version(config.pipeline_root)
    if version is None:
        raise RegistryError(
            f"no champion model under {registry.registry_root(config.pipeline_root)}: run "
            "`seqcast train` first (its first run always makes a champion: the best network "
            "or statistical predictor)"
        )
    stored = registry.read_manifest(config.pipeline_root, version).get(PREDICTION_CONTRACT)
    if stored is None:
        get_run_logger().warning(
            "Champion %s has no stored prediction contract (registered before contracts were "
            "stored); checking the input against the pipeline's contract instead",
            version,
        )
        return contract_for(config, predicting=True), contract_origin(config)
    origin = f"the prediction contract of model version {version} (derived from its training data)"
    return contract_from_dict(stored, origin), origin


def champion_scope(config: PipelineConfig) -> PredictionScope:
    """The rows of each series the champion reads to predict (`prediction_scope`)."""
    from seqcast.serving import registry
    from seqcast.serving.prediction import prediction_scope

    version = registry.required_champion_version(config.pipeline_root)
    return prediction_scope(*registry.read_layout(config.pipeline_root, version))


def contract_origin(config: PipelineConfig) -> str:
    if config.contract is None:
        return "the contract derived from the config (write one: `seqcast contract init`)"
    return f"the contract {config.contract}"


def docs_directory(config: PipelineConfig) -> str | None:
    """GX Data Docs need a local directory: ``{pipeline_root}/data_docs`` when local."""
    fs, path = storage.filesystem(storage.join(config.pipeline_root, "data_docs"))
    return path if storage.is_local(fs) else None


def publish(
    config: PipelineConfig,
    predicting: bool,
    rows: list[dict],
    files: ReportFiles,
    flow_run_id: str | None = None,
) -> None:
    """The rule table and the markdown summary as Prefect artifacts under stable keys, on
    ``flow_run_id``'s run (the training or prediction run the validate subflow serves, so
    they show on that run's page; None: this task's run)."""
    key = artifact_key(config, predicting)
    purpose = "prediction input" if predicting else "training data"
    owner = UUID(flow_run_id) if flow_run_id else None
    TableArtifact(
        key=key,
        table=rows,
        description=f"Data contract checks of the {purpose} of pipeline `{config.name}`",
        flow_run_id=owner,
    ).create()
    MarkdownArtifact(
        key=f"{key}-summary",
        markdown=files.summary,
        description=f"Validation summary of the {purpose} of pipeline `{config.name}`",
        flow_run_id=owner,
    ).create()


WORK = "validation-work"
"""Under the pipeline root: one folder per validation in progress (`seqcast.io.work_dirs`)."""


def checked_against(
    config: PipelineConfig, predicting: bool
) -> tuple[Contract, str, PredictionScope | None]:
    """The contract, where it comes from, and (prediction) the rows each series is read."""
    if predicting:
        # only the rows prediction reads; a series breaking a rule is set aside on its own
        contract, origin = prediction_contract(config)
        return contract, origin, champion_scope(config)
    return contract_for(config), contract_origin(config), None


def text_columns(config: PipelineConfig) -> list[str]:
    """Columns the window step reads as text: the split column, the test-file flag."""
    return [c for c in (config.split.column, SOURCE_TEST) if c]


def shard_rows(config: PipelineConfig, contract: Contract) -> int:
    """Rows per shard: ``runner.validation_rows``, unless the contract's unique key leaves
    out the series id, so that a repeat could lie in two shards: then one shard."""
    series_id = config.source.series_id
    if series_id and contract.key and series_id not in contract.key:
        get_run_logger().info(
            "The contract's key %s does not hold the series id %r: validating in one shard "
            "so that every repeat of a key is found",
            contract.key,
            series_id,
        )
        return sys.maxsize
    return config.runner.validation_rows


@task(name="validate-plan", **STEP_OPTIONS)
def plan_validation(
    config: PipelineConfig, snapshot: SnapshotRef, predicting: bool = False
) -> ValidationPlanRef:
    """Cut the snapshot into shards of whole series in a fresh work folder; what every
    shard checks against (contract, scope, the time freshness is judged at) goes there."""
    contract, origin, scope = checked_against(config, predicting)
    fingerprint = hashlib.sha256(
        f"{snapshot.fingerprint}{contract.model_dump_json()}{scope}"
        f"{config.source.model_dump_json(exclude=NOT_DATA)}".encode()
    ).hexdigest()
    parent = storage.join(config.pipeline_root, WORK)
    work_dirs.clean(parent)
    work = work_dirs.begin(parent, fingerprint[:16])
    try:
        storage.write_json(
            storage.join(work, "checks.json"),
            {
                "contract": contract.model_dump(mode="json"),
                "origin": origin,
                "scope": dataclasses.asdict(scope) if scope is not None else None,
                "now": datetime.now(UTC).isoformat(),
            },
        )
        plan = plan_shards(snapshot.uri, config.source.series_id, shard_rows(config, contract))
        shards, present = write_shards(snapshot.uri, config.source.series_id, plan, work)
    except BaseException:
        work_dirs.remove(work)
        raise
    get_run_logger().info(
        "Validating %d rows in %d shard(s) of whole series", snapshot.rows, len(shards)
    )
    if len(shards) > 1:
        side_process.stop()  # the runner checks them; free its memory first
    return ValidationPlanRef(
        fingerprint=fingerprint, work=work, shards=shards, files_with_rows=sorted(present)
    )


@task(name="validate-shard", **STEP_OPTIONS)
def check_shard(
    config: PipelineConfig,
    snapshot: SnapshotRef,
    plan: ValidationPlanRef,
    shard: ValidationShardRef,
) -> str:
    """Check one shard of series; write its clean rows, its quarantined rows and its
    summary to the work folder. Returns the summary's URI.

    A snapshot of one shard is checked in the command's side process when it started one
    (`seqcast.side_process`: GX imported there, while this process imports what the next
    steps need); otherwise here.
    """
    docs_dir = docs_directory(config) if shard.number == 0 else None
    work = (config, snapshot, plan, shard, docs_dir, text_columns(config))
    if len(plan.shards) == 1:
        return side_process.run(check_shard_parts, *work)
    return check_shard_parts(*work)


def _merged(
    config: PipelineConfig,
    snapshot: SnapshotRef,
    plan: ValidationPlanRef,
    found: list[dict[str, Any]],
) -> tuple[ValidationReport, str, PredictionScope | None]:
    contract, origin, scope, _now = read_checks(plan)
    parts = [
        storage.read_parquet(part_uri(plan, "quarantine", s.number)).to_pandas()
        for s, summary_ in zip(plan.shards, found, strict=True)
        if summary_["quarantined"]
    ]
    quarantined = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[QUARANTINE_RANK])
    )
    report = merge(
        found,
        effective_contract(contract, scope),
        snapshot.files,
        None if len(plan.shards) == 1 else set(plan.files_with_rows),
        scope,
        quarantined,
        config.source.timezone,
    )
    return report, origin, scope


def _write_table(plan: ValidationPlanRef, found: list[dict[str, Any]], uri: str) -> None:
    """The clean parts, in shard order (series order), as one file, written atomically."""
    parts = [
        part_uri(plan, "clean", s.number)
        for s, summary_ in zip(plan.shards, found, strict=True)
        if summary_["clean_rows"]
    ]
    if not parts:
        return
    fs, path = storage.filesystem(parts[0])
    with fs.open(path, "rb") as handle:
        schema = pq.ParquetFile(handle).schema_arrow
    with row_groups.parquet_writer(uri, schema) as writer:
        for part in parts:
            fs, path = storage.filesystem(part)
            with fs.open(path, "rb") as handle:
                for batch in row_groups.streamed(handle).iter_batches(row_groups.ROW_GROUP_ROWS):
                    writer.write(pa.Table.from_batches([batch], schema=schema))


@task(name="validate-publish", **STEP_OPTIONS)
def publish_validation(
    config: PipelineConfig,
    snapshot: SnapshotRef,
    plan: ValidationPlanRef,
    summaries: list[str],
    predicting: bool = False,
    flow_run_id: str | None = None,
) -> ValidatedRef:
    """Merge the shards' checks into one report; stop, quarantine or warn as its rules
    say; publish the validated table (the step's commit point) and drop the work folder."""
    logger = get_run_logger()
    found = [storage.read_json(uri) for uri in summaries]  # each shard's, read once
    report, origin, _scope = _merged(config, snapshot, plan, found)
    if report.docs_url is None and docs_directory(config) is None:
        logger.info(
            "Great Expectations Data Docs are built only under a local data_root; %s is "
            "not local, so the report and summary files are the record of this check",
            config.data_root,
        )
    files = save_report(report, config.pipeline_root, plan.fingerprint[:16])
    publish(config, predicting, artifact_rows(report), files, flow_run_id)
    if report.outcome == "fail":
        message = failure_message(report, files.report_uri, origin)
        raise DataContractError(f"{message}\nRaw snapshot (as read): {snapshot.uri}")
    for warning in report.warnings:
        logger.warning("Contract %s: %s", report.contract, warning)
    if report.set_aside:
        logger.warning(
            "%d series set aside for this run (not predicted; rows in %s): %s",
            len(report.set_aside),
            files.quarantine_uri,
            "; ".join(f"{s!r}: {', '.join(c)}" for s, c in list(report.set_aside.items())[:5]),
        )
    if report.unused_future_rows:
        logger.info(
            "%d row(s) after their series' last observed target are not read (%s)",
            report.unused_future_rows,
            "beyond the forecast steps, or none read"
            if predicting
            else "future rows: known-future covariates for prediction, no target to train on",
        )
    if report.future_rows:
        logger.info("%d future row(s) give the forecast steps' covariates", report.future_rows)
    if predicting and not report.clean_rows:
        raise DataContractError(
            f"no series left to predict: every series of {snapshot.uri} was set aside "
            f"({len(report.set_aside)}); see {files.summary_uri}"
        )
    uri = storage.join(config.pipeline_root, "validated", plan.fingerprint[:16], "data.parquet")
    if not storage.exists(uri):
        _write_table(plan, found, uri)
    work_dirs.remove(plan.work)
    logger.info(
        "Contract %s (%s): %s; %d clean rows of %d series, %d quarantined; report %s",
        report.contract,
        origin,
        report.outcome,
        report.clean_rows,
        report.kept_series or 0,
        len(report.quarantined),
        files.report_uri,
    )
    return ValidatedRef(
        uri=uri,
        rows=report.clean_rows,
        fingerprint=plan.fingerprint,
        series=report.kept_series or 0,
        warnings=report.warnings,
        outcome=report.outcome,
        quarantined=len(report.quarantined),
        report_uri=files.report_uri,
        series_set_aside=sorted(report.set_aside),
    )


@task(name="validate-abandon")
def abandon_validation(plan: ValidationPlanRef) -> None:
    """Remove the work folder of a validation that failed or was stopped."""
    work_dirs.remove(plan.work)
