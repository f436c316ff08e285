"""The Prefect events seqcast emits about a pipeline's models, for automations to act on.

Every event's primary resource is the pipeline (``seqcast.pipeline.{name}``, labelled with
its name), so one automation can watch every pipeline or match one by name; the model
version concerned is a related resource. Labels the automations match on (such as
``seqcast.retrain``) go on the primary resource, since a trigger matches resource labels,
not payloads. The figures behind the event are its payload, which notification templates
can print (``{{ event.payload.live_mae }}``).
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.events import emit_event

from seqcast.config import PipelineConfig

ACCURACY_DEGRADED = "seqcast.accuracy.degraded"
INPUT_DRIFTED = "seqcast.input.drifted"


def pipeline_resource(
    config: PipelineConfig, labels: dict[str, str] | None = None
) -> dict[str, str]:
    """The resource an event about ``config``'s pipeline names."""
    return {
        "prefect.resource.id": f"seqcast.pipeline.{config.name}",
        "prefect.resource.name": config.name,
        **(labels or {}),
    }


def event_fields(
    config: PipelineConfig,
    event: str,
    version: str,
    payload: dict[str, Any],
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of `prefect.events.emit_event` for ``event`` about
    ``config``'s pipeline and model ``version`` (apart, so a test can match the shipped
    automations against exactly what is sent)."""
    return {
        "event": event,
        "resource": pipeline_resource(config, labels),
        "related": [
            {
                "prefect.resource.id": f"seqcast.model-version.{version}",
                "prefect.resource.role": "model-version",
                "prefect.resource.name": version,
            }
        ],
        "payload": {"pipeline": config.name, "version": version, **payload},
    }


def emit(
    config: PipelineConfig,
    event: str,
    version: str,
    payload: dict[str, Any],
    labels: dict[str, str] | None = None,
) -> bool:
    """Emit ``event`` about ``config``'s pipeline and model ``version``; True if it was sent.

    Prefect drops an event quietly when no API is configured to take it; the run log says
    so, so a missing alert is never silent.
    """
    sent = emit_event(**event_fields(config, event, version, payload, labels))
    logger = get_run_logger()
    if sent is None:
        logger.warning("Event %s was not sent: no Prefect API takes events here", event)
        return False
    logger.warning(
        "Emitted %s for pipeline %s (model %s): %s", event, config.name, version, payload
    )
    return True
