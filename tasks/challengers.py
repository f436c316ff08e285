"""Step 4b, fit-challengers: ETS and AR per series on the training rows, the statistical
challengers scored beside the network and the naive baselines (forecast only).

On a Dask runner the fit runs as the `fit-challengers` subflow
(`flows.sharded.fit_challenger_groups`): a plan cuts the window store's blocks into groups,
one mapped task fits each group into a part, and a merge writes the one ``challengers.json``
(the same bytes as one serial fit). On threads, `fit_challengers` runs the same steps in one
task (`flows.sharded.fit_challengers_on_runner`).
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from seqcast import side_process
from seqcast.config import PipelineConfig
from seqcast.io import storage
from seqcast.modeling.challenger_parts import block_groups, fit_part, fits_of, merge_parts
from seqcast.modeling.challengers import ChallengerFits, effective_season
from seqcast.records import ChallengerPartRef, ChallengersPlanRef, ChallengersRef, WindowsRef
from seqcast.windows import store as window_store
from tasks.common import STEP_OPTIONS


@task(name="fit-challengers-plan", **STEP_OPTIONS)
def plan_challengers(
    config: PipelineConfig, windows: WindowsRef, flow_run_id: str
) -> ChallengersPlanRef:
    """Cut the window store's blocks into groups, one fit task each (none for a classifier)."""
    uri = storage.join(config.pipeline_root, "runs", flow_run_id, "challengers.json")
    parts_uri = storage.join(config.pipeline_root, "runs", flow_run_id, "challengers")
    layout = window_store.read_layout(windows.uri)
    kinds: list[str] = list(config.evaluate.challengers)
    if layout.task != "forecast" or not kinds:
        get_run_logger().info(
            "Classifier: no statistical challengers to fit"
            if layout.task != "forecast"
            else "evaluate.challengers is empty: no ETS or AR fit (seasonal naive and last "
            "value are still scored)"
        )
        done = ChallengersRef(uri=None, series=0, seconds=0.0)
        return ChallengersPlanRef(
            uri=uri, parts_uri=parts_uri, season=None, groups=[], done=done, kinds=[]
        )
    n_blocks = len(window_store.read_manifest(windows.uri)["blocks"])
    season = effective_season(config.evaluate.season, layout)
    groups = block_groups(n_blocks)
    get_run_logger().info(
        "Fitting %s on %d block(s) in %d task(s)", _named(kinds), n_blocks, len(groups)
    )
    return ChallengersPlanRef(
        uri=uri, parts_uri=parts_uri, season=season, groups=groups, kinds=kinds
    )


def _named(kinds: list[str]) -> str:
    """``["ets", "ar"]`` as "ETS and AR"."""
    return " and ".join(kind.upper() for kind in kinds)


@task(name="fit-challengers-group", task_run_name="fit-challengers-group-{group}", **STEP_OPTIONS)
def fit_challenger_group(
    windows: WindowsRef, plan: ChallengersPlanRef, group: int
) -> ChallengerPartRef:
    """Fit ETS and/or AR to the series of one group of blocks; write the fits as one JSON part."""
    blocks = plan.groups[group]
    layout = window_store.read_layout(windows.uri)
    scaler = window_store.read_scaler(windows.uri)
    uri = storage.join(plan.parts_uri, f"part-{group:05d}.json")
    # In the command's side process when it has one (statsmodels imported there, not here)
    series, seconds = side_process.run(
        fit_part, windows.uri, layout, scaler, plan.season, blocks, uri, plan.kinds
    )
    return ChallengerPartRef(uri=uri, blocks=blocks, series=series, seconds=round(seconds, 3))


@task(name="fit-challengers-merge", **STEP_OPTIONS)
def merge_challengers(
    config: PipelineConfig, plan: ChallengersPlanRef, parts: list[ChallengerPartRef]
) -> ChallengersRef:
    """Merge the parts in block order into the run's ``challengers.json``; remove the parts."""
    document = merge_parts([p.uri for p in parts], plan.season, plan.kinds)
    storage.write_json(plan.uri, document)
    series = sum(p.series for p in parts)  # each series lies in one part
    seconds = sum(p.seconds for p in parts)
    logger = get_run_logger()
    logger.info(
        "%s fitted to %d series in %.1f s of fitting over %d task(s) (season %s%s)",
        _named(plan.kinds),
        series,
        seconds,
        len(parts),
        plan.season,
        "" if config.evaluate.season is not None or plan.season is None else ", from the frequency",
    )
    try:  # the document holds every fit now; a part left behind goes with the run folder
        fs, path = storage.filesystem(plan.parts_uri)
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except OSError as exc:
        logger.warning("Could not remove the challenger parts in %s: %s", plan.parts_uri, exc)
    return ChallengersRef(uri=plan.uri, series=series, seconds=round(seconds, 3))


@task(name="fit-challengers", **STEP_OPTIONS)
def fit_challengers(
    config: PipelineConfig, windows: WindowsRef, flow_run_id: str
) -> ChallengersRef:
    """Plan, every group and the merge in this one task (the thread runner's path: the fits
    hold the GIL, so threads would add task runs and no speed); the same file as the
    subflow's."""
    plan = plan_challengers.fn(config, windows, flow_run_id)
    if plan.done is not None:
        return plan.done
    parts = [fit_challenger_group.fn(windows, plan, g) for g in range(len(plan.groups))]
    return merge_challengers.fn(config, plan, parts)


def read_fits(challengers: ChallengersRef) -> tuple[ChallengerFits, dict[str, Any]]:
    """The fits a `fit_challengers` run wrote, and the JSON document itself (a statistical
    ETS or AR version keeps its part of the document as its parameters)."""
    if challengers.uri is None:
        return ChallengerFits(), {}
    document = storage.read_json(challengers.uri)
    return fits_of(document), document
