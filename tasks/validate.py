"""Step 2, validate: check the snapshot against its data contract with Great Expectations."""

from __future__ import annotations

import hashlib
import logging

import pyarrow as pa
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from seqcast.config import NOT_DATA, PipelineConfig, series_column
from seqcast.data.contracts import PREDICTION_CONTRACT, Contract, contract_for, contract_from_dict
from seqcast.data.ingest import SOURCE_TEST
from seqcast.data.prediction_scope import PredictionScope
from seqcast.data.validation import table_schema, validate_table
from seqcast.data.validation_report import (
    ReportFiles,
    artifact_rows,
    failure_message,
    save_report,
)
from seqcast.errors import DataContractError, RegistryError
from seqcast.io import storage
from seqcast.records import SnapshotRef, ValidatedRef
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


def publish(config: PipelineConfig, predicting: bool, rows: list[dict], files: ReportFiles) -> None:
    """The rule table and the markdown summary as Prefect artifacts under stable keys."""
    key = artifact_key(config, predicting)
    purpose = "prediction input" if predicting else "training data"
    create_table_artifact(
        key=key,
        table=rows,
        description=f"Data contract checks of the {purpose} of pipeline `{config.name}`",
    )
    create_markdown_artifact(
        key=f"{key}-summary",
        markdown=files.summary,
        description=f"Validation summary of the {purpose} of pipeline `{config.name}`",
    )


@task(name="validate", **STEP_OPTIONS)
def validate(
    config: PipelineConfig, snapshot: SnapshotRef, predicting: bool = False
) -> ValidatedRef:
    """Check the snapshot against its contract: stop, quarantine or warn as its rules say."""
    logger = get_run_logger()
    scope = None
    if predicting:
        # only the rows prediction reads; a series breaking a rule is set aside on its own
        contract, origin = prediction_contract(config)
        scope = champion_scope(config)
    else:
        contract, origin = contract_for(config), contract_origin(config)
    fingerprint = hashlib.sha256(
        f"{snapshot.fingerprint}{contract.model_dump_json()}{scope}"
        f"{config.source.model_dump_json(exclude=NOT_DATA)}".encode()
    ).hexdigest()
    raw = storage.read_parquet(snapshot.uri).to_pandas()
    docs_dir = docs_directory(config)
    if docs_dir is None:
        logger.info(
            "Great Expectations Data Docs are built only under a local data_root; %s is "
            "not local, so the report and summary files are the record of this check",
            config.data_root,
        )
    text = [c for c in (config.split.column, SOURCE_TEST) if c]
    report = validate_table(
        raw,
        contract,
        config.source,
        snapshot.files,
        docs_dir=docs_dir,
        text_columns=text,
        scope=scope,
    )
    files = save_report(report, config.pipeline_root, fingerprint[:16])
    publish(config, predicting, artifact_rows(report), files)
    if report.outcome == "fail":
        message = failure_message(report, files.report_uri, origin)
        raise DataContractError(f"{message}\nRaw snapshot (as read): {snapshot.uri}")
    for warning in report.warnings:
        logger.warning("Contract %s: %s", contract.name, warning)
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
    if predicting and report.clean.empty:
        raise DataContractError(
            f"no series left to predict: every series of {snapshot.uri} was set aside "
            f"({len(report.set_aside)}); see {files.summary_uri}"
        )
    uri = storage.join(config.pipeline_root, "validated", fingerprint[:16], "data.parquet")
    if not storage.exists(uri):
        columns = list(report.clean.columns)
        schema = table_schema(contract, config.source, columns, report.time_unit, text)
        storage.write_parquet(
            pa.Table.from_pandas(report.clean, schema=schema, preserve_index=False), uri
        )
    n_series = int(report.clean[series_column(config.source)].nunique())
    logger.info(
        "Contract %s (%s): %s; %d clean rows of %d series, %d quarantined; report %s",
        contract.name,
        origin,
        report.outcome,
        len(report.clean),
        n_series,
        len(report.quarantined),
        files.report_uri,
    )
    return ValidatedRef(
        uri=uri,
        rows=len(report.clean),
        fingerprint=fingerprint,
        series=n_series,
        warnings=report.warnings,
        outcome=report.outcome,
        quarantined=len(report.quarantined),
        report_uri=files.report_uri,
        series_set_aside=sorted(report.set_aside),
    )
