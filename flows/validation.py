"""The validation flow: ingest -> validate, for checking a source without training."""

from __future__ import annotations

from prefect import flow

from flows.names import run_name
from flows.runners import run_sharded
from flows.sharded import ingest_source, validate_shards
from flows.tls import share_tls_contexts
from seqcast.config import PipelineConfig
from seqcast.records import ValidatedRef
from tasks.common import current_run_id

share_tls_contexts()  # Prefect's API clients: one TLS context each kind (flows.tls)


@flow(name="validation", flow_run_name=run_name("validate"), validate_parameters=True)
def validate_source(config: PipelineConfig) -> ValidatedRef:
    """Snapshot the source and check it against its data contract; nothing is trained."""
    snapshot = ingest_source(config)
    return run_sharded(validate_shards, config, snapshot, False, current_run_id())
