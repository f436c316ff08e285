"""Issue 14 #2: manual runs (`seqcast train`/`predict`, `make demo`) do not take the
scheduled slot of their logical date, and a run that skips a published date ends in a
``Completed`` state named ``Skipped`` with the reason, not a green run with no tasks."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd
import pytest
from prefect import tags
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.prediction import batch_predict
from flows.training import nightly_training
from seqcast.io import publications
from tests.conftest import tiny_config
from tests.flows.backtest_checks import (
    BACKTEST,
    assert_folds_ran_as_tasks_and_published_their_spread,
    assert_folds_read_back,
)

pytestmark = pytest.mark.flow

DAY = date(2026, 3, 1)


@pytest.fixture(autouse=True)
def one_logical_date(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run of a test is for `DAY`, even one that starts after midnight UTC."""
    monkeypatch.setattr("flows.training.logical_date", lambda: DAY)
    monkeypatch.setattr("flows.prediction.logical_date", lambda: DAY)


def run_id(state: Any) -> UUID:
    return state.state_details.flow_run_id


def task_names(state: Any) -> set[str]:
    """The task runs of the flow run that ended in ``state`` (its subflows' not included)."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id(state)]))
        )
    return {run.name.rsplit("-", 1)[0] for run in runs}


def state_on_server(state: Any) -> tuple[str | None, str | None]:
    """What the UI shows: the run's state name and message, as the API holds them."""
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(run_id(state)).state
    assert stored is not None
    return stored.name, stored.message


def test_manual_runs_leave_the_slot_and_a_second_scheduled_run_skips(
    tiny_load_csv: Path, tmp_path: Path
) -> None:
    """Training, then prediction (which needs the champion): one pipeline for both, so the
    test trains twice, not three times. The pipeline backtests: the two trainings are also
    the backtest's first run and its rerun (tests/flows/backtest_checks.py)."""
    config = tiny_config(tiny_load_csv, tmp_path / "root", **BACKTEST)
    manual = nightly_training(config, force=True, return_state=True)  # `seqcast train`
    assert manual.name == "Completed"
    backtest = assert_folds_ran_as_tasks_and_published_their_spread(manual)
    marker = publications.read(config.pipeline_root, "training", DAY)
    assert marker is not None and marker["trigger"] == "manual"
    assert marker["slot_flow_run_id"] is None

    with tags("backfill"):  # a run `seqcast backfill` created: scheduled
        scheduled = nightly_training(config, return_state=True)
    assert scheduled.name == "Completed"
    assert {"ingest", "train", "register"} <= task_names(scheduled)
    marker = publications.read(config.pipeline_root, "training", DAY)
    assert marker is not None and marker["slot_flow_run_id"] == str(run_id(scheduled))
    assert_folds_read_back(scheduled.result(), backtest)  # same data: every fold is read back

    with tags("backfill"):
        again = nightly_training(config, return_state=True)
    assert again.is_completed() and again.name == "Skipped"
    name, message = state_on_server(again)
    assert name == "Skipped"
    assert message is not None and f"scheduled flow run {run_id(scheduled)}" in message
    assert "force=true" in message
    assert task_names(again) == set()
    # Callers that expect the outcome get the published one.
    assert again.result() == scheduled.result()

    # The predictions, with the champion just trained.
    by_hand = batch_predict(config, force=True, return_state=True)  # `seqcast predict`
    marker = publications.read(config.pipeline_root, "predictions", DAY)
    assert marker is not None and marker["flow_run_id"] == str(run_id(by_hand))
    assert marker["slot_flow_run_id"] is None

    with tags("backfill"):
        nightly = batch_predict(config, return_state=True)
    assert nightly.name == "Completed"
    predictions = nightly.result()
    # Predicted again, not skipped: the day's file is this run's.
    assert set(pd.read_parquet(predictions.uri)["flow_run_id"]) == {str(run_id(nightly))}
    marker = publications.read(config.pipeline_root, "predictions", DAY)
    assert marker is not None and marker["slot_flow_run_id"] == str(run_id(nightly))

    with tags("backfill"):
        skipped = batch_predict(config, return_state=True)
    assert skipped.name == "Skipped" and state_on_server(skipped)[0] == "Skipped"
    with tags("backfill"):
        assert batch_predict(config) == predictions  # a caller gets the day's predictions
