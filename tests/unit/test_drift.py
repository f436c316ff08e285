"""Input drift (`seqcast.monitoring.drift`): the statistics against scipy and by hand, the
training profile (bounded, seeded, streamed, training rows only) and the registry's file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from seqcast.config import MonitorSpec, SplitSpec
from seqcast.errors import RegistryError
from seqcast.io import storage
from seqcast.monitoring import drift
from seqcast.serving import registry
from tests.conftest import arithmetic_frame, placeholder_version

UNIFORM = np.linspace(0.0, 1.0, 101)
"""Quantiles of U(0, 1): the interpolated reference CDF is exactly F(x) = x on [0, 1]."""


def write(frame: pd.DataFrame, path: Path, row_group_size: int = 100) -> str:
    """``frame`` as Parquet in small row groups (several per series)."""
    storage.write_parquet(
        pa.Table.from_pandas(frame, preserve_index=False), str(path), row_group_size
    )
    return str(path)


# -- the statistics --------------------------------------------------------------------------


def test_reference_cdf_interpolates_and_steps_at_repeated_quantiles() -> None:
    x = np.array([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0])
    assert np.allclose(drift.reference_cdf(UNIFORM, x), [0, 0, 0.25, 0.5, 1, 1])
    # a discrete reference: 30% zeros, 70% ones (quantiles 0..0.29 are 0, the rest 1)
    discrete = [0.0] * 30 + [1.0] * 71
    assert drift.reference_cdf(discrete, np.array([0.0]))[0] == pytest.approx(0.29)
    assert drift.reference_cdf(discrete, np.array([0.0]), left=True)[0] == 0.0
    assert drift.reference_cdf(discrete, np.array([1.0]), left=True)[0] == pytest.approx(0.30)
    assert drift.reference_cdf(discrete, np.array([1.0]))[0] == 1.0


@pytest.mark.parametrize("low, high", [(0.0, 1.0), (0.2, 1.1), (-0.5, 0.3), (2.0, 3.0)])
def test_ks_equals_scipy_one_sample_ks_when_the_reference_cdf_is_exact(
    low: float, high: float
) -> None:
    values = np.random.default_rng(3).uniform(low, high, 500)
    expected = stats.kstest(values, "uniform").statistic
    assert drift.ks_statistic(UNIFORM, values) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.2, 0.5, 1.0, 3.0])
def test_ks_matches_scipy_two_sample_ks(shift: float) -> None:
    """From 101 quantiles of the reference sample, KS is within 0.01 of ks_2samp on the
    samples themselves (linear interpolation between percentiles moves F by < 1%)."""
    rng = np.random.default_rng(int(shift * 10))
    reference = rng.normal(0.0, 1.0, 20_000)
    new = rng.normal(shift, 1.0, 2_000)
    quantiles = np.quantile(reference, np.linspace(0.0, 1.0, 101))
    expected = stats.ks_2samp(reference, new).statistic
    assert drift.ks_statistic(quantiles, new) == pytest.approx(expected, abs=0.01)


def test_ks_matches_scipy_on_discrete_values() -> None:
    rng = np.random.default_rng(5)
    reference = rng.integers(0, 5, 20_000).astype(float)
    new = rng.integers(0, 6, 3_000).astype(float)
    quantiles = np.quantile(reference, np.linspace(0.0, 1.0, 101))
    expected = stats.ks_2samp(reference, new).statistic
    assert drift.ks_statistic(quantiles, new) == pytest.approx(expected, abs=0.01)


def test_psi_by_hand() -> None:
    """Reference deciles 10, 20, ..., 90 (quantiles of 0..100), so 10% in each bin. New:
    20% in each of the first two bins, 10% in each of the next six, none in the last two
    (each counted as EPSILON = 1e-4)."""
    quantiles = np.linspace(0.0, 100.0, 101)
    new = np.array([5.0] * 20 + [15.0] * 20 + [25, 35, 45, 55, 65, 75] * 10)
    expected = 2 * (0.2 - 0.1) * math.log(0.2 / 0.1) + 2 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert drift.psi(quantiles, new) == pytest.approx(expected, rel=1e-12)
    # Values on a cut belong to the bin below it (right-closed bins), like the reference.
    on_cuts = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0])
    assert drift.psi(quantiles, on_cuts) == pytest.approx(0.0, abs=1e-12)


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    quantiles = np.quantile(rng.normal(0.0, 1.0, 20_000), np.linspace(0.0, 1.0, 101))
    assert drift.psi(quantiles, rng.normal(0.0, 1.0, 5_000)) < 0.01
    assert drift.psi(quantiles, rng.normal(3.0, 1.0, 5_000)) > 2.0


def test_statistics_refuse_empty_values() -> None:
    with pytest.raises(ValueError, match="`values` is empty"):
        drift.psi(UNIFORM, np.array([]))
    with pytest.raises(ValueError, match="`values` is empty"):
        drift.ks_statistic(UNIFORM, np.array([]))


# -- the sample behind the sketch ------------------------------------------------------------


def test_reservoir_is_bounded_seeded_and_uniform() -> None:
    def sample(seed: int) -> np.ndarray:
        reservoir = drift.Reservoir(500, np.random.default_rng(seed))
        for start in range(0, 100_000, 1_000):  # 100 batches, 200 times the sample
            reservoir.add(np.arange(start, start + 1_000, dtype=float))
        assert reservoir.count == 100_000 and len(reservoir.values) == 500
        return reservoir.values

    first = sample(0)
    assert np.array_equal(first, sample(0))
    assert not np.array_equal(first, sample(1))
    assert len(np.unique(first)) == 500  # each value once
    # Every stream position equally likely: early batches are not over-represented.
    assert stats.kstest(first / 100_000, "uniform").pvalue > 0.01


def test_reservoir_skips_nan_and_keeps_exact_moments() -> None:
    reservoir = drift.Reservoir(3, np.random.default_rng(0))
    reservoir.add(np.array([1.0, np.nan, 2.0]))
    reservoir.add(np.array([3.0, 4.0, np.nan, 10.0]))
    profile = reservoir.profile()
    assert profile.count == 5 and len(reservoir.values) == 3
    assert profile.mean == pytest.approx(4.0)
    assert profile.std == pytest.approx(np.std([1.0, 2.0, 3.0, 4.0, 10.0]))
    assert profile.quantiles[0] == 1.0 and profile.quantiles[-1] == 10.0  # exact extremes
    assert len(profile.quantiles) == drift.QUANTILES


# -- the training profile --------------------------------------------------------------------


def test_profile_holds_each_series_training_rows(tmp_path: Path) -> None:
    """Series s holds 1000*s + t: the time split's training rows are t < floor(0.65 * n)
    (val 0.15, test 0.2), so the profile's values are exactly those."""
    frame = arithmetic_frame(n_series=3, n_steps=200)
    uri = write(frame, tmp_path / "data.parquet")
    split = SplitSpec(by="time", val=0.15, test=0.2)
    profile = drift.reference_profile(
        uri, ["y", "hour_sin"], "id", split, sample_size=1_000, batch_rows=64
    )
    assert profile.scope == "train" and list(profile.features) == ["y"]  # no derived column
    assert profile.series == {"s0": 130, "s1": 130, "s2": 130} and profile.rows == 390
    training = np.concatenate([1000.0 * s + np.arange(130) for s in range(3)])
    y = profile.features["y"]
    assert y.count == 390 and y.mean == pytest.approx(training.mean())
    assert np.allclose(y.quantiles, np.quantile(training, np.linspace(0, 1, 101)))
    # Any other split: the whole table, said so.
    whole = drift.reference_profile(uri, ["y"], "id", SplitSpec(by="series"), sample_size=1_000)
    assert whole.scope == "all" and whole.rows == 600 and whole.features["y"].quantiles[-1] == 2199


def test_profile_sample_is_bounded_and_seeded(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.repeat(["a", "b"], 5_000), "x": rng.normal(10.0, 2.0, 10_000)})
    uri = write(frame, tmp_path / "data.parquet", row_group_size=1_000)
    one = drift.reference_profile(uri, ["x"], "id", None, sample_size=500, seed=7, batch_rows=512)
    two = drift.reference_profile(uri, ["x"], "id", None, sample_size=500, seed=7, batch_rows=512)
    other = drift.reference_profile(uri, ["x"], "id", None, sample_size=500, seed=8, batch_rows=512)
    assert one == two and one.features["x"].quantiles != other.features["x"].quantiles
    x = one.features["x"]
    assert x.count == 10_000 and x.mean == pytest.approx(frame["x"].mean())
    # 500 values sketch the distribution: its quartiles within 0.1 std of the true ones
    true = np.quantile(frame["x"], [0.25, 0.5, 0.75])
    assert np.allclose([x.quantiles[25], x.quantiles[50], x.quantiles[75]], true, atol=0.2)
    assert one.series == {"a": 5_000, "b": 5_000}


def test_profile_streams_the_table_never_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = write(arithmetic_frame(n_series=2, n_steps=300), tmp_path / "data.parquet")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the whole table was read")

    monkeypatch.setattr(pq, "read_table", refuse)
    monkeypatch.setattr(pq.ParquetFile, "read", refuse)
    batches: list[tuple[list[str], int]] = []
    iter_batches = pq.ParquetFile.iter_batches

    def counting(self: pq.ParquetFile, *args: object, **kwargs: object) -> object:
        for batch in iter_batches(self, *args, **kwargs):  # type: ignore[arg-type]
            batches.append((batch.schema.names, batch.num_rows))
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counting)
    profile = drift.reference_profile(uri, ["y"], "id", SplitSpec(), batch_rows=50)
    assert profile.rows == 2 * 210  # floor(0.7 * 300) rows of each series
    # A first pass counts each series' rows from the series column alone; the values are
    # read 50 rows at a time.
    assert {tuple(names) for names, _ in batches} == {("id",), ("id", "y")}
    assert max(rows for names, rows in batches if "y" in names) == 50


def test_profile_round_trips_through_json(tmp_path: Path) -> None:
    uri = write(arithmetic_frame(n_series=2, n_steps=50), tmp_path / "data.parquet")
    profile = drift.reference_profile(uri, ["y"], "id", SplitSpec())
    document = storage.read_json(_written(tmp_path / "p.json", profile.to_json()))
    assert drift.Profile.from_json(document) == profile
    with pytest.raises(ValueError, match="unknown input profile format 99"):
        drift.Profile.from_json({**document, "format": 99})


def _written(path: Path, obj: object) -> str:
    storage.write_json(str(path), obj)
    return str(path)


# -- the report ------------------------------------------------------------------------------


def _profile(tmp_path: Path) -> drift.Profile:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "id": np.repeat(["a", "b", "c", "d"], 2_500),
            "x": rng.normal(0.0, 1.0, 10_000),
            "z": rng.uniform(0.0, 1.0, 10_000),
        }
    )
    return drift.reference_profile(write(frame, tmp_path / "ref.parquet"), ["x", "z"], "id")


def test_report_names_the_shifted_feature_and_unseen_series(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    rng = np.random.default_rng(2)
    new = pd.DataFrame(
        {
            "id": np.repeat(["a", "b", "c", "new"], 100),
            "x": rng.normal(3.0, 1.0, 400),  # shifted by 3 std
            "z": rng.uniform(0.0, 1.0, 400),
        }
    )
    uri = write(new, tmp_path / "new.parquet")
    report = drift.check_table(profile, uri, "id", MonitorSpec())
    assert report.drifted == ["x"] and report.breached
    x, z = report.features
    assert x.psi is not None and x.psi > 2 and x.ks is not None and x.ks > 0.8
    assert z.psi is not None and z.psi < 0.25 and z.ks is not None and z.ks < 0.3
    assert (report.series, report.unseen, report.unseen_share) == (4, 1, 0.25)
    assert report.unseen_breached  # 25% > the default 10%
    rows = report.rows()
    assert [r["check"] for r in rows] == ["x", "z", "unseen series"]
    assert rows[2]["note"] == "1 of 4 series not in training (25.0%; limit 10.0%)"
    figures = report.figures()
    assert figures["drifted_features"] == ["x"] and figures["unseen_share"] == 0.25
    assert figures["features"]["x"]["rows"] == 400


def test_report_within_limits_and_missing_values(tmp_path: Path) -> None:
    profile = _profile(tmp_path)
    rng = np.random.default_rng(4)
    same = {"x": rng.normal(0.0, 1.0, 1_000)}  # no z column at all
    report = drift.drift_report(profile, same, ["a", "b"], MonitorSpec())
    assert not report.breached and report.unseen_share == 0.0
    assert report.features[1] == drift.FeatureDrift("z", 0, None, None, False)
    # the thresholds are the monitor's: a strict enough PSI limit flags the same data
    strict = drift.drift_report(profile, same, None, MonitorSpec(drift_psi=1e-6))
    assert strict.drifted == ["x"] and strict.unseen_share is None
    assert [r["check"] for r in strict.rows()] == ["x", "z"]


# -- the registry's file ---------------------------------------------------------------------


def test_profile_is_stored_with_the_version_and_checked(tmp_path: Path) -> None:
    root = str(tmp_path / "root")
    old = placeholder_version(root, tmp_path, "old")
    assert registry.read_profile(root, old) is None  # registered before profiles
    windows = tmp_path / "windows"
    windows.mkdir()
    (windows / "scaler.json").write_text("{}")
    (windows / "layout.json").write_text("{}")
    model = tmp_path / "model.keras"
    model.write_bytes(b"new")
    profile = {"format": 1, "rows": 3}
    version = registry.register_version(
        root, str(model), str(windows), {"mae": 1.0}, {}, profile=profile
    )
    assert registry.read_profile(root, version) == profile
    assert registry.PROFILE_FILE in registry.read_manifest(root, version)["sha256"]
    path = Path(registry.version_uri(root, version)) / registry.PROFILE_FILE
    path.write_text('{"format": 1, "rows": 4}')
    with pytest.raises(RegistryError, match="profile.json does not match its manifest"):
        registry.read_profile(root, version)
