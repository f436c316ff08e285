"""Step 1, ingest: snapshot the source tables.

`ingest` reads the files one after another in one task; `plan_ingest`, `ingest_file`
(mapped, one task per file) and `combine_ingest` write the same snapshot with the files
read in parallel on the configured runner (`flows.sharded.ingest_files`).
`flows.sharded.ingest_source` picks one of the two (`count_source_files` tells it how many
files there are).
"""

from __future__ import annotations

from prefect import get_run_logger, task

from seqcast.config import PipelineConfig
from seqcast.data.ingest import snapshot_source, source_file_count
from seqcast.data.snapshot_parts import abandon_parts, combine_parts, plan_parts, write_part
from seqcast.records import SnapshotPartRef, SnapshotPlanRef, SnapshotRef
from tasks.common import STEP_OPTIONS


@task(name="ingest", **STEP_OPTIONS)
def ingest(config: PipelineConfig, predicting: bool = False) -> SnapshotRef:
    """Read the source (CSV/Parquet, local or fsspec URL) into an immutable raw snapshot."""
    snapshot = snapshot_source(
        config.source, config.pipeline_root, with_test=not predicting, with_future=predicting
    )
    _log_snapshot(snapshot)
    return snapshot


@task(name="ingest-count", **STEP_OPTIONS)
def count_source_files(config: PipelineConfig, predicting: bool = False) -> int:
    """List the source files (none is opened) to choose how to ingest them."""
    return source_file_count(config.source, with_test=not predicting, with_future=predicting)


@task(name="ingest-plan", **STEP_OPTIONS)
def plan_ingest(config: PipelineConfig, predicting: bool = False) -> SnapshotPlanRef:
    """Fingerprint the source files: reuse their snapshot, or plan one part per file."""
    plan = plan_parts(
        config.source, config.pipeline_root, with_test=not predicting, with_future=predicting
    )
    logger = get_run_logger()
    if plan.reused is not None:
        logger.info("Source unchanged: reusing raw snapshot %s", plan.uri)
    else:
        logger.info("Ingesting %d file(s) into %s", len(plan.files), plan.uri)
    return plan


@task(name="ingest-file", **STEP_OPTIONS)
def ingest_file(config: PipelineConfig, plan: SnapshotPlanRef, index: int) -> SnapshotPartRef:
    """Stream one source file into its part of the snapshot."""
    part = write_part(config.source, plan, index)
    get_run_logger().info("%s: %d rows", plan.files[index], part.rows)
    return part


@task(name="ingest-combine", **STEP_OPTIONS)
def combine_ingest(
    config: PipelineConfig, plan: SnapshotPlanRef, parts: list[SnapshotPartRef]
) -> SnapshotRef:
    """Write the parts in file order into the snapshot and commit it."""
    snapshot = combine_parts(config.source, plan, parts)
    _log_snapshot(snapshot)
    return snapshot


@task(name="ingest-abandon")
def abandon_ingest(plan: SnapshotPlanRef) -> None:
    """Remove the work folder of a failed ingest (the next plan would, once this process
    is gone)."""
    abandon_parts(plan)


def _log_snapshot(snapshot: SnapshotRef) -> None:
    get_run_logger().info(
        "Snapshot %s: %d rows from %d file(s)",
        snapshot.fingerprint[:12],
        snapshot.rows,
        len(snapshot.files),
    )
