"""Step 1, ingest: snapshot the source tables."""

from __future__ import annotations

from prefect import get_run_logger, task

from seqcast.config import PipelineConfig
from seqcast.data.ingest import snapshot_source
from seqcast.records import SnapshotRef
from tasks.common import STEP_OPTIONS


@task(name="ingest", **STEP_OPTIONS)
def ingest(config: PipelineConfig, predicting: bool = False) -> SnapshotRef:
    """Read the source (CSV/Parquet, local or fsspec URL) into an immutable raw snapshot."""
    snapshot = snapshot_source(
        config.source, config.pipeline_root, with_test=not predicting, with_future=predicting
    )
    get_run_logger().info(
        "Snapshot %s: %d rows from %d file(s)",
        snapshot.fingerprint[:12],
        snapshot.rows,
        len(snapshot.files),
    )
    return snapshot
