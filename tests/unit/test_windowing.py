"""Windows line up with Keras' reference, stay inside one series and one gap-free run,
and the scaler sees training rows only."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from seqcast.config import config_from_dict
from seqcast.errors import ConfigError, DataContractError
from seqcast.windows.build import build_windows
from seqcast.windows.windowing import SPLITS, split_bounds
from tests.conftest import arithmetic_frame


def config(
    lookback: int = 4, horizon: int = 2, stride: int = 1, normalize: str = "none", **split: float
) -> object:
    return config_from_dict(
        {
            "name": "arith",
            "source": {"path": "unused", "timestamp": "ts", "series_id": "id", "target": ["y"]},
            "window": {
                "lookback": lookback,
                "horizon": horizon,
                "stride": stride,
                "normalize": normalize,
            },
            "split": {"by": "time", "val": split.get("val", 0.2), "test": split.get("test", 0.2)},
        }
    )


def test_windows_match_keras_timeseries_dataset() -> None:
    frame = arithmetic_frame(n_series=1, n_steps=40)
    lookback, horizon = 5, 3
    windows, _, _ = build_windows(frame, config(lookback, horizon), "id")
    ours_x = np.concatenate([windows[s].x for s in SPLITS])[..., 0]
    ours_y = np.concatenate([windows[s].y for s in SPLITS])[..., 0]
    values = frame["y"].to_numpy(np.float32)
    reference = keras.utils.timeseries_dataset_from_array(
        values[: len(values) - horizon], targets=None, sequence_length=lookback, batch_size=1000
    )
    ref_x = np.concatenate([b.numpy() for b in reference])
    ref_targets = keras.utils.timeseries_dataset_from_array(
        values[lookback:], targets=None, sequence_length=horizon, batch_size=1000
    )
    ref_y = np.concatenate([b.numpy() for b in ref_targets])
    # Ours drop the windows whose targets straddle a split boundary; match by first input value.
    starts = ours_x[:, 0].astype(int)
    np.testing.assert_array_equal(ours_x, ref_x[starts])
    np.testing.assert_array_equal(ours_y, ref_y[starts])


def test_no_window_crosses_a_series_boundary() -> None:
    frame = arithmetic_frame(n_series=3, n_steps=30)
    windows, _, _ = build_windows(frame, config(lookback=6, horizon=3), "id")
    for split in SPLITS:
        w = windows[split]
        whole = np.concatenate([w.x[..., 0], w.y[..., 0]], axis=1)  # (windows, span)
        series_of_value = (whole // 1000).astype(int)
        assert (series_of_value == series_of_value[:, :1]).all()
        assert (np.diff(whole, axis=1) == 1).all()  # consecutive steps of one series
        assert [f"s{v}" for v in series_of_value[:, 0]] == list(w.series)


def test_targets_lie_inside_their_split_and_inputs_never_see_the_future() -> None:
    n_steps = 50
    frame = arithmetic_frame(n_series=1, n_steps=n_steps)
    windows, _, _ = build_windows(frame, config(lookback=4, horizon=2, val=0.2, test=0.2), "id")
    val_start, test_start = split_bounds(n_steps, 0.2, 0.2)
    bounds = {
        "train": (0, val_start),
        "val": (val_start, test_start),
        "test": (test_start, n_steps),
    }
    for split, (lo, hi) in bounds.items():
        y = windows[split].y[..., 0]
        assert len(y) > 0
        assert y.min() >= lo and y.max() < hi
        assert (windows[split].x[..., 0].max(axis=1) < y.min(axis=1)).all()


def test_scaler_sees_training_rows_only() -> None:
    frame = arithmetic_frame(n_series=2, n_steps=50)
    # Make the test period wildly different: if the scaler saw it, the mean would move.
    val_start, test_start = split_bounds(50, 0.2, 0.2)
    step = frame.groupby("id").cumcount()
    frame.loc[step >= test_start, "y"] += 1e6
    _, scaler, _ = build_windows(frame, config(normalize="series"), "id")
    for s in (0, 1):
        train_values = 1000.0 * s + np.arange(val_start)
        mean, std = scaler.stats_for(f"s{s}")
        assert mean[0] == pytest.approx(train_values.mean())
        assert std[0] == pytest.approx(train_values.std())


def test_global_scaler_fitted_series_by_series_equals_one_pass() -> None:
    frame = arithmetic_frame(n_series=3, n_steps=50)
    frame["y"] *= frame["id"].str[1:].astype(float) + 1.0  # series of very different scales
    _, scaler, _ = build_windows(frame, config(normalize="global"), "id")
    val_start, _ = split_bounds(50, 0.2, 0.2)
    train = frame[frame.groupby("id").cumcount() < val_start]["y"].to_numpy()
    mean, std = scaler.stats_for("unseen-series")
    assert mean[0] == pytest.approx(train.mean(), rel=1e-6)  # float32 as the scaler applies it
    assert std[0] == pytest.approx(train.std(), rel=1e-6)  # float32 as the scaler applies it


def test_no_window_spans_a_gap() -> None:
    frame = arithmetic_frame(n_series=1, n_steps=60)
    frame = frame.drop(index=range(25, 28)).reset_index(drop=True)  # a 4-hour hole
    windows, _, _ = build_windows(frame, config(lookback=4, horizon=2), "id")
    for split in SPLITS:
        whole = np.concatenate([windows[split].x[..., 0], windows[split].y[..., 0]], axis=1)
        assert (np.diff(whole, axis=1) == 1).all()


def test_classify_label_is_read_horizon_steps_after_the_window() -> None:
    t = np.arange(60)
    frame = pd.DataFrame(
        {
            "id": "a",
            "ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(t, unit="min"),
            "x": t.astype(float),
            "label": np.where(t % 3 == 0, "zero", "other"),
        }
    )
    cfg = config_from_dict(
        {
            "name": "cls",
            "task": "classify",
            "source": {"path": "unused", "series_id": "id", "target": ["label"], "features": ["x"]},
            "window": {"lookback": 5, "horizon": 2, "normalize": "none"},
        }
    )
    windows, _, layout = build_windows(frame, cfg, "id")
    assert layout.classes == ["other", "zero"]
    for split in SPLITS:
        label_step = windows[split].x[:, -1, 0].astype(int) + 2
        expected = np.where(label_step % 3 == 0, 1, 0)
        np.testing.assert_array_equal(windows[split].y, expected)


def covariate_config(**window: object) -> object:
    return config_from_dict(
        {
            "name": "cov",
            "source": {
                "path": "unused",
                "series_id": "id",
                "target": ["y"],
                "future_features": ["promo"],
                "static_features": ["size"],
                "timezone": "Europe/Berlin",
            },
            "window": {"lookback": 4, "horizon": 3, "normalize": "none", **window},
            "split": {"by": "time", "val": 0.2, "test": 0.2},
        }
    )


def covariate_frame(n_series: int = 2, n_steps: int = 60) -> pd.DataFrame:
    """Arithmetic series plus a known-future column ``promo`` = y + 0.5 and ``size`` = s."""
    frame = arithmetic_frame(n_series, n_steps)
    frame["promo"] = frame["y"] + 0.5
    frame["size"] = frame["id"].str[1:].astype(float) * 10.0
    return frame


def test_known_future_covariates_are_those_of_the_forecast_steps() -> None:
    windows, _, layout = build_windows(
        covariate_frame(), covariate_config(calendar=["hour_of_day", "day_of_week"]), "id"
    )
    assert layout.future_columns == [
        "promo",
        "hour_of_day_sin",
        "hour_of_day_cos",
        "day_of_week_sin",
        "day_of_week_cos",
    ]
    for split in SPLITS:
        w = windows[split]
        assert w.future.shape == (len(w), 3, 5)  # (windows, horizon, n_future)
        # promo is y + 0.5 row by row: the covariate of forecast step k is that of target k.
        np.testing.assert_array_equal(w.future[..., 0], w.y[..., 0] + 0.5)
        # Calendar features of target step k, in the source timezone (Berlin: UTC+1 in January).
        steps = pd.to_datetime(w.origin, utc=True)
        for k in range(3):
            local = (steps + pd.Timedelta(hours=k + 1)).tz_convert("Europe/Berlin")
            hour = local.hour.to_numpy()
            np.testing.assert_allclose(w.future[:, k, 1], np.sin(2 * np.pi * hour / 24), atol=1e-6)
            np.testing.assert_allclose(w.future[:, k, 2], np.cos(2 * np.pi * hour / 24), atol=1e-6)
            day = (local.day_of_week.to_numpy() + hour / 24) / 7
            np.testing.assert_allclose(w.future[:, k, 3], np.sin(2 * np.pi * day), atol=1e-6)


def test_static_features_follow_their_series_and_must_be_constant() -> None:
    frame = covariate_frame(n_series=3)
    windows, _, layout = build_windows(frame, covariate_config(), "id")
    assert layout.static_columns == ["size"]
    assert layout.static_mean == [pytest.approx(10.0)]
    for split in SPLITS:
        w = windows[split]
        expected = [float(s[1:]) * 10.0 for s in w.series]
        np.testing.assert_array_equal(w.static[:, 0], expected)
    frame.loc[5, "size"] = 99.0
    with pytest.raises(DataContractError, match=r"series 's0': static feature 'size'"):
        build_windows(frame, covariate_config(), "id")


def test_future_covariates_need_a_horizon() -> None:
    with pytest.raises(ConfigError, match="known-future"):
        config_from_dict(
            {
                "name": "x",
                "task": "classify",
                "source": {"path": "u", "target": ["l"], "features": ["a"]},
                "window": {"horizon": 0, "calendar": ["hour_of_day"]},
            }
        )


def gappy_frame() -> pd.DataFrame:
    """One series of 80 hourly steps with a 1-step hole at t=30 and a 4-step hole at 50..53."""
    frame = arithmetic_frame(n_series=1, n_steps=80)
    return frame.drop(index=[30, 50, 51, 52, 53]).reset_index(drop=True)


def test_short_gaps_are_filled_and_long_ones_never_spanned() -> None:
    cfg = config(lookback=4, horizon=2, val=0.2, test=0.2)
    filled = cfg.model_copy(update={"window": cfg.window.model_copy(update={"fill_gaps": 2})})
    windows, _, _ = build_windows(gappy_frame(), filled, "id")
    whole = np.concatenate(
        [np.concatenate([windows[s].x[..., 0], windows[s].y[..., 0]], axis=1) for s in SPLITS]
    )
    assert (np.diff(whole, axis=1) == 1).all()  # linear fill restores y = t exactly
    assert (whole == 30).any()  # the 1-step hole was filled and used
    assert not ((whole >= 50) & (whole <= 53)).any()  # the 4-step hole was not
    unfilled, _, _ = build_windows(gappy_frame(), cfg, "id")
    assert not any((unfilled[s].x[..., 0] == 30).any() for s in SPLITS)


def test_forward_fill_carries_the_last_value() -> None:
    cfg = config(lookback=4, horizon=2)
    ffill = cfg.model_copy(
        update={"window": cfg.window.model_copy(update={"fill_gaps": 1, "fill_method": "ffill"})}
    )
    windows, _, _ = build_windows(gappy_frame(), ffill, "id")
    x = np.concatenate([windows[s].x[..., 0] for s in SPLITS])
    values = np.arange(80.0)
    values[30] = 29.0  # step 30 repeats step 29's value
    allowed = {tuple(values[g : g + 4]) for g in range(77) if not 47 <= g <= 53}
    assert {tuple(row) for row in x} <= allowed
    assert (27.0, 28.0, 29.0, 29.0) in {tuple(row) for row in x}


def test_rows_are_placed_on_the_configured_frequency() -> None:
    frame = arithmetic_frame(n_series=1, n_steps=40)
    cfg = config_from_dict(
        {
            "name": "f",
            "source": {
                "path": "u",
                "series_id": "id",
                "target": ["y"],
                "frequency": "30min",
            },
            "window": {"lookback": 2, "horizon": 1, "normalize": "none"},
        }
    )
    # Hourly rows on a 30-minute grid: every other step is missing, so no window is whole.
    with pytest.raises(DataContractError, match="split has no windows"):
        build_windows(frame, cfg, "id")
    frame.loc[3, "ts"] += pd.Timedelta(minutes=10)
    hourly = cfg.model_copy(update={"source": cfg.source.model_copy(update={"frequency": "1h"})})
    with pytest.raises(DataContractError, match=r"series 's0': 1 timestamp\(s\) are off"):
        build_windows(frame, hourly, "id")


def test_stride_counts_grid_steps() -> None:
    windows, _, _ = build_windows(
        arithmetic_frame(1, 60), config(lookback=4, horizon=2, stride=3), "id"
    )
    starts = np.concatenate([windows[s].x[:, 0, 0] for s in SPLITS])
    assert (starts % 3 == 0).all() and len(starts) > 0


def test_time_split_rounds_like_int_of_the_fraction() -> None:
    # test from floor((1 - test) * n), val from floor((1 - test - val) * n): the rows a
    # script splitting with int(0.75 * n) uses.
    assert split_bounds(10, 0.1, 0.25) == (6, 7)
    for n in (7, 10, 33, 101, 365):
        assert split_bounds(n, 0.1, 0.2)[1] == int(0.8 * n)
