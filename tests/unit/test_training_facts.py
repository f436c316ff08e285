"""The prediction contract a version keeps is derived from its training table streamed batch
by batch (issue 18), and equals the one derived from the table held whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqcast.data import training_facts
from seqcast.data.contracts import contract_for, derive_prediction_contract
from seqcast.data.sample import load_series
from seqcast.io import storage
from tests.conftest import tiny_config


@pytest.mark.parametrize("monthly", [False, True])
def test_streamed_facts_give_the_contract_the_whole_table_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, monthly: bool
) -> None:
    frame = load_series(n_series=5, n_steps=300, seed=4)
    if monthly:  # a calendar step: months of 28-31 days, told apart by the sample
        months = pd.date_range("2001-01-31", periods=300, freq="ME", tz="UTC")
        frame["ts"] = np.tile(months, 5)
    frame = frame.drop(index=frame.index[40:45])  # a gap: steps of two sizes
    frame.loc[frame.index[7], "temperature"] = np.nan  # not a finite value: left out
    frame.loc[frame.index[9], "load"] = frame["load"].max() + 50.0  # the range's end
    frame = frame.sort_values(["sensor", "ts"], kind="stable").reset_index(drop=True)
    uri = str(tmp_path / "validated.parquet")
    storage.write_frame(frame, uri)
    config = tiny_config(tmp_path, tmp_path / "root")
    base = contract_for(config, predicting=True).model_copy(update={"frequency": None})
    monkeypatch.setattr(training_facts, "BATCH_ROWS", 97)  # runs and series cross batches

    whole = training_facts.TrainingFacts.of_frame(frame, config, base)
    streamed = training_facts.read_training_facts(uri, config, base)
    assert streamed == whole
    assert whole.frequency == ("ME" if monthly else "1h")
    assert whole.series == [f"sensor-{i}" for i in range(1, 6)]
    assert whole.ranges["load"][1] == frame["load"].max()
    assert derive_prediction_contract(streamed, config, base) == derive_prediction_contract(
        frame, config, base
    )
