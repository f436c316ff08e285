"""Ten simulated nights of one pipeline against the Prefect API in the environment: the
nights of tests/flows/test_live_accuracy.py (a training run, then a prediction run per
night with one more day of actuals; the level breaks on day 14), for the UI screenshot of
the live-accuracy artifacts (`ui_screenshot.py --live`). Not a test.

    PREFECT_API_URL=... python tests/integration/live_nights.py WORKDIR
"""

from __future__ import annotations

import sys
from pathlib import Path
from unittest import mock

from flows.prediction import batch_predict
from flows.training import nightly_training
from tests.flows.test_live_accuracy import NIGHTS, TRAIN_DAYS, night, pipeline, write_source


def main(workdir: Path) -> None:
    source = workdir / "source"
    write_source(source, TRAIN_DAYS)
    config = pipeline(source, workdir / "root")
    nightly_training(config)
    for k in range(1, NIGHTS + 1):
        write_source(source, TRAIN_DAYS + k - 1)
        with mock.patch("flows.prediction.logical_date", lambda k=k: night(k)):
            batch_predict(config)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
