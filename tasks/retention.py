"""The last step of a training run: garbage collection under the pipeline root."""

from __future__ import annotations

from prefect import get_run_logger, task

from seqcast.config import PipelineConfig
from seqcast.records import RetentionRef
from seqcast.serving import retention as gc
from tasks.common import STEP_OPTIONS, warn_on_failure


@task(name="retention", **{**STEP_OPTIONS, "retries": 0})
def retention(config: PipelineConfig) -> RetentionRef:
    """Delete old versions, builds, snapshots and runs that `retention:` does not keep."""
    logger = get_run_logger()
    plan = gc.apply(gc.plan(config.pipeline_root, config.retention))
    for kind, (count, size) in plan.by_kind().items():
        logger.info("Retention: deleted %d %s (%s)", count, kind, gc.human_bytes(size))
    logger.info("Retention: %s; kept %d objects", gc.summary(plan), len(plan.keep))
    return RetentionRef(
        deleted={kind: count for kind, (count, _) in plan.by_kind().items()},
        freed_bytes={kind: size for kind, (_, size) in plan.by_kind().items()},
        kept=len(plan.keep),
    )


def collect_garbage(config: PipelineConfig) -> RetentionRef | None:
    """Run `retention` unless ``retention.enabled`` is off. A failed GC does not fail the
    run: the model is registered and published by then, and the next run's GC picks up
    where this one stopped (deleting is crash-safe), so a warning says what went wrong and
    the run stays Completed. No retries for the same reason."""
    logger = get_run_logger()
    if not config.retention.enabled:
        logger.info("Retention disabled (retention.enabled: false): nothing deleted")
        return None
    result: RetentionRef | None = warn_on_failure(
        retention,
        config,
        what="Retention",
        consequence="the run's model and outputs are unaffected, and the next run's GC (or "
        "`seqcast gc --config ...`) finishes the job",
    )
    return result
