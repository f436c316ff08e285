"""Step 4b, fit-challengers: ETS per series on the training rows, the statistical challenger
scored beside the network and the naive baselines (forecast only)."""

from __future__ import annotations

import time
from typing import Any

from prefect import get_run_logger, task

from seqcast.config import PipelineConfig
from seqcast.io import storage
from seqcast.modeling.challengers import effective_season
from seqcast.modeling.challengers import fit_challengers as fit
from seqcast.modeling.statistical import EtsFit
from seqcast.records import ChallengersRef, WindowsRef
from seqcast.windows import store as window_store
from tasks.common import STEP_OPTIONS, current_run_id


@task(name="fit-challengers", **STEP_OPTIONS)
def fit_challengers(config: PipelineConfig, windows: WindowsRef) -> ChallengersRef:
    """Fit ETS to every series' training rows; write the fits as JSON under this run."""
    layout = window_store.read_layout(windows.uri)
    if layout.task != "forecast":
        get_run_logger().info("Classifier: no statistical challengers to fit")
        return ChallengersRef(uri=None, series=0, seconds=0.0)
    scaler = window_store.read_scaler(windows.uri)
    started = time.perf_counter()
    season = effective_season(config.evaluate.season, layout)
    fits = fit(windows.uri, layout, scaler, season)
    seconds = time.perf_counter() - started
    uri = storage.join(config.pipeline_root, "runs", current_run_id(), "challengers.json")
    storage.write_json(
        uri,
        {
            "season": season,
            "fits": {
                series: {column: f.to_json() for column, f in by_target.items()}
                for series, by_target in fits.items()
            },
        },
    )
    get_run_logger().info(
        "ETS fitted to %d series in %.1fs (season %s%s)",
        len(fits),
        seconds,
        season,
        "" if config.evaluate.season is not None or season is None else ", from the frequency",
    )
    return ChallengersRef(uri=uri, series=len(fits), seconds=round(seconds, 3))


def read_fits(challengers: ChallengersRef) -> tuple[dict[str, dict[str, EtsFit]], dict[str, Any]]:
    """The fits a `fit_challengers` run wrote, and the JSON document itself (a statistical
    ETS version keeps the document as its parameters)."""
    if challengers.uri is None:
        return {}, {}
    document = storage.read_json(challengers.uri)
    fits = {
        series: {column: EtsFit.from_json(f) for column, f in by_target.items()}
        for series, by_target in document["fits"].items()
    }
    return fits, document
