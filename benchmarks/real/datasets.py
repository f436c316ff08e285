"""The real series, read from the packages that bundle them, written as the flow's CSV source.

sktime does not install next to pandas 3.1, so its bundled CSVs are read straight out of the
pinned sktime wheel (downloaded once with ``pip download --no-deps`` into the work folder; the
shared environment is never touched). statsmodels' datasets come from the installed package
(the ``bench`` extra). Each CSV keeps the time column as the dataset has it: month or quarter
start dates, or integer years. Long format: one row per (series, time); single-series sets
get the series id ``all`` so every CSV has the same columns.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SKTIME = "sktime==1.2.0"
"""The wheel whose bundled CSVs we read (pinned: the files are the benchmark's data)."""

SERIES = "series"
TIME = "time"


@dataclass(frozen=True)
class Dataset:
    """One benchmark dataset: where it comes from and its calendar.

    Attributes:
        name: the ``--dataset`` name and the config file's stem.
        origin: where the numbers come from (shown in the README table).
        kind: the kind of series (monthly, short, multivariate ...).
        load: builds the long frame (columns ``series``, ``time`` and the value columns).
        smoke_step: fixed-duration step that stands in for the calendar frequency in a
            ``--smoke`` run (today's main reads only fixed-duration frequencies).
    """

    name: str
    origin: str
    kind: str
    load: Callable[[Path], pd.DataFrame]
    smoke_step: str = "1D"


def sktime_wheel(work: Path) -> Path:
    """The pinned sktime wheel under ``{work}/wheels`` (downloaded there once)."""
    wheels = work / "wheels"
    found = sorted(wheels.glob("sktime-*.whl"))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", SKTIME, "-d", str(wheels)],
            check=True,
        )
        found = sorted(wheels.glob("sktime-*.whl"))
    return found[-1]


def sktime_csv(work: Path, folder: str) -> pd.DataFrame:
    """One of sktime's bundled CSVs (``sktime/datasets/data/{folder}/{folder}.csv``)."""
    with zipfile.ZipFile(sktime_wheel(work)) as wheel:
        text = wheel.read(f"sktime/datasets/data/{folder}/{folder}.csv").decode("utf-8")
    return pd.read_csv(io.StringIO(text))


def _single(values: pd.DataFrame, stamps: pd.Series | list[object]) -> pd.DataFrame:
    frame = values.reset_index(drop=True)
    frame.insert(0, TIME, list(stamps))
    frame.insert(0, SERIES, "all")
    return frame


def _month_starts(text: pd.Series, fmt: str) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in pd.to_datetime(text, format=fmt)]


def _airline(work: Path) -> pd.DataFrame:
    raw = sktime_csv(work, "Airline")
    return _single(raw[["Passengers"]], _month_starts(raw["Date"], "%Y-%m"))


def _shampoo(work: Path) -> pd.DataFrame:
    raw = sktime_csv(work, "ShampooSales")
    return _single(raw[["Sales"]], _month_starts(raw["Time"], "%Y-%m"))


def _pbs(work: Path) -> pd.DataFrame:
    raw = sktime_csv(work, "PBS_dataset")
    return _single(raw[["Scripts"]].astype(float), _month_starts(raw["Month"], "%Y %b"))


def _lynx(work: Path) -> pd.DataFrame:
    raw = sktime_csv(work, "Lynx").rename(columns={"Unnamed: 0": "year", "0": "Lynx"})
    return _single(raw[["Lynx"]].astype(float), raw["year"].astype(int).tolist())


def _uschange(work: Path) -> pd.DataFrame:
    raw = sktime_csv(work, "Uschange")
    year_quarter = raw["Quarter"].str.split(" Q", expand=True).astype(int)  # "1970 Q1"
    stamps = [f"{y}-{3 * q - 2:02d}-01" for y, q in year_quarter.itertuples(index=False)]
    columns = ["Consumption", "Income", "Production", "Savings", "Unemployment"]
    return _single(raw[columns], stamps)


def _statsmodels(name: str) -> pd.DataFrame:
    from statsmodels import datasets  # type: ignore[import-untyped]

    frame: pd.DataFrame = getattr(datasets, name).load_pandas().data
    return frame


def _nile(work: Path) -> pd.DataFrame:
    raw = _statsmodels("nile")
    return _single(raw[["volume"]], raw["year"].astype(int).tolist())


def _sunspots(work: Path) -> pd.DataFrame:
    raw = _statsmodels("sunspots")
    return _single(raw[["SUNACTIVITY"]], raw["YEAR"].astype(int).tolist())


MACRO_SERIES = ["realgdp", "realcons", "realinv", "realgovt", "realdpi"]
"""macrodata's real-activity columns, all in billions of chained 2005 dollars (one unit, so a
pooled MAE is meaningful), as five series of one panel."""


def _macrodata(work: Path) -> pd.DataFrame:
    raw = _statsmodels("macrodata")
    stamps = [
        pd.Timestamp(year=int(y), month=3 * int(q) - 2, day=1).strftime("%Y-%m-%d")
        for y, q in zip(raw["year"], raw["quarter"], strict=True)
    ]
    wide = raw[MACRO_SERIES].assign(**{TIME: stamps})
    long = wide.melt(id_vars=TIME, var_name=SERIES, value_name="value")
    return long[[SERIES, TIME, "value"]]


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset("airline", "sktime Airline", "monthly, trend + season", _airline),
        Dataset("shampoo", "sktime ShampooSales", "monthly, short (36)", _shampoo),
        Dataset("pbs", "sktime PBS_dataset", "monthly, intermittent counts", _pbs),
        Dataset("lynx", "sktime Lynx", "yearly, ~10-year cycle", _lynx),
        Dataset("uschange", "sktime Uschange", "quarterly, multivariate", _uschange),
        Dataset("nile", "statsmodels nile", "yearly, level shift", _nile),
        Dataset("sunspots", "statsmodels sunspots", "yearly, ~11-year cycle", _sunspots),
        Dataset("macrodata", "statsmodels macrodata", "quarterly, 5 series", _macrodata),
    ]
}


def write_csv(dataset: Dataset, work: Path, smoke: bool = False) -> Path:
    """The dataset as ``{work}/data/{name}.csv`` (sorted by series and time).

    ``smoke`` replaces each series' time column by a fixed-duration grid (2000-01-01 onwards,
    ``dataset.smoke_step`` apart), only to exercise the harness before calendar frequencies
    are readable; its results are never published.
    """
    frame = dataset.load(work).sort_values([SERIES, TIME], kind="stable").reset_index(drop=True)
    if smoke:
        steps = frame.groupby(SERIES, sort=False).cumcount()
        start = pd.Timestamp("2000-01-01")
        frame[TIME] = [
            (start + i * pd.Timedelta(dataset.smoke_step)).strftime("%Y-%m-%dT%H:%M:%S")
            for i in steps
        ]
    path = work / "data" / f"{dataset.name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
