"""Config errors name the key; overrides are typed; impossible combinations fail early."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from seqcast.config import load_config
from seqcast.errors import ConfigError

BASE = {
    "name": "demo",
    "source": {"path": "x.csv", "target": ["load"]},
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_fill_every_stage(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE))
    assert (cfg.window.lookback, cfg.window.horizon, cfg.model.cell) == (48, 24, "gru")
    assert cfg.pipeline_root == f"{tmp_path}/.seqcast/data/demo"  # beside the config file


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.epoch: unknown key"):
        load_config(write(tmp_path, {**BASE, "model": {"epoch": 3}}))


def test_set_overrides_are_yaml_typed(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, BASE), ["model.cell=gru", "model.epochs=5", "model.units=[16, 8]"]
    )
    assert (cfg.model.cell, cfg.model.epochs, cfg.model.units) == ("gru", 5, [16, 8])


def test_bad_value_names_key_and_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.cell: .*'rnn'"):
        load_config(write(tmp_path, BASE), ["model.cell=rnn"])


def test_the_1nn_distance_is_chosen_by_default_and_a_bad_one_is_named(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, BASE)).evaluate.nearest_neighbour == "auto"
    for setting in ("dtw", "euclidean", "none"):
        cfg = load_config(write(tmp_path, BASE), [f"evaluate.nearest_neighbour={setting}"])
        assert cfg.evaluate.nearest_neighbour == setting
    with pytest.raises(ConfigError, match=r"evaluate\.nearest_neighbour: .*'cosine'"):
        load_config(write(tmp_path, BASE), ["evaluate.nearest_neighbour=cosine"])


def test_the_fitted_challengers_are_ets_and_ar_unless_set(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, BASE)).evaluate.challengers == ["ets", "ar"]
    cfg = load_config(write(tmp_path, BASE), ["evaluate.challengers=[ar]"])
    assert cfg.evaluate.challengers == ["ar"]
    assert (
        load_config(write(tmp_path, BASE), ["evaluate.challengers=[]"]).evaluate.challengers == []
    )
    with pytest.raises(ConfigError, match=r"evaluate\.challengers.*'arima'"):
        load_config(write(tmp_path, BASE), ["evaluate.challengers=[arima]"])
    with pytest.raises(ConfigError, match="twice"):
        load_config(write(tmp_path, BASE), ["evaluate.challengers=[ar, ar]"])


def test_override_without_equals_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(write(tmp_path, BASE), ["model.cell"])


def test_forecast_needs_a_horizon(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="horizon"):
        load_config(write(tmp_path, BASE), ["window.horizon=0"])


def test_classify_needs_one_label_and_inputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="features"):
        load_config(write(tmp_path, {**BASE, "task": "classify"}), ["window.horizon=0"])


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
