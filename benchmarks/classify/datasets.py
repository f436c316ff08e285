"""The classification archive sets, read from the ``.ts`` files bundled in the pinned sktime wheel.

sktime does not install next to pandas 3.1, so (as in `benchmarks.real.datasets`) the files are
read straight out of the wheel, downloaded once with ``pip download --no-deps``. Each set keeps
the archive's official train/test split. The sets asked for in issue 15 were ArrowHead, Beef,
Chinatown, ACSF1 and PLAID; sktime 1.2.0 (and aeon 1.6.0, pyts 0.14.1, tslearn 0.10.0) bundle
neither Beef nor the full Chinatown, so two bundled sets of the same kind stand in for them
(``stands_in_for``): ItalyPowerDemand for Chinatown (short daily profiles, 2 classes; sktime's
"UnitTest" is Chinatown's train set with its test set cut from 343 to 22 sequences, too few to
rank anything) and BasicMotions for Beef (small train set, and it is multivariate).

A set becomes a long table: one row per (sequence, step), columns ``seq``, ``step``, one column
per dimension (``dim_0`` ...), ``label`` and ``split`` (``train`` or ``test``).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.real.datasets import sktime_wheel
from seqcast.modeling.nearest import resample

SEQ = "seq"
STEP = "step"
LABEL = "label"
SPLIT = "split"


@dataclass(frozen=True)
class Sequences:
    """One split of a set: a list of (steps, dims) arrays and their labels.

    Attributes:
        values: one float array per sequence, shape (steps, dims); steps may differ.
        labels: the class label of each sequence, as the file writes it.
    """

    values: list[np.ndarray]
    labels: list[str]

    @property
    def lengths(self) -> np.ndarray:
        """Steps per sequence."""
        return np.array([len(v) for v in self.values])

    @property
    def dims(self) -> int:
        """Dimensions (channels) per step."""
        return int(self.values[0].shape[1])


@dataclass(frozen=True)
class ArchiveSet:
    """One archive set as the benchmark names it.

    Attributes:
        name: the ``--dataset`` name.
        folder: the folder (and file prefix) under ``sktime/datasets/data``.
        kind: what it is (shown in the README table).
        stands_in_for: the set issue 15 asked for that this one replaces (not bundled), or "".
    """

    name: str
    folder: str
    kind: str
    stands_in_for: str = ""


SETS: dict[str, ArchiveSet] = {
    s.name: s
    for s in [  # cheap first: the benchmark runs them in this order
        ArchiveSet(
            "italypower", "ItalyPowerDemand", "daily power profiles, 2 classes", "Chinatown"
        ),
        ArchiveSet("arrowhead", "ArrowHead", "arrowhead outlines, 3 classes"),
        ArchiveSet("basicmotions", "BasicMotions", "6-axis motion, 4 classes", "Beef"),
        ArchiveSet("acsf1", "ACSF1", "appliance power, 10 classes, long"),
        ArchiveSet("plaid", "PLAID", "appliance current, 11 classes, unequal lengths"),
    ]
}


def parse_ts(text: str, source: str = "<ts>") -> Sequences:
    """Sequences from the text of a ``.ts`` file.

    Header lines start with ``@`` (``@data`` ends the header), comments with ``#`` or ``%``;
    after ``@data`` each line is one sequence: dimensions separated by ``:``, values by ``,``,
    the class label last. Dimensions of one sequence have equal lengths; sequences may differ.

    Raises:
        ValueError: a data line whose dimensions differ in length, or a file without ``@data``.
    """
    values: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "%")) or line.startswith("\ufeff#"):
            continue
        if not in_data:
            in_data = line.lower().startswith("@data")
            continue
        *dims, label = line.split(":")
        rows = [np.array(d.split(","), dtype=float) for d in dims]
        if len({len(r) for r in rows}) != 1:
            raise ValueError(
                f"{source} line {number}: dimensions of unequal length "
                f"{[len(r) for r in rows]}; each dimension of a sequence needs the same steps"
            )
        values.append(np.stack(rows, axis=1))  # (steps, dims)
        labels.append(label.strip())
    if not in_data:
        raise ValueError(f"{source}: no @data line; is this a .ts file?")
    return Sequences(values, labels)


def load(archive: ArchiveSet, work: Path) -> tuple[Sequences, Sequences]:
    """The official (train, test) split of ``archive`` from the pinned sktime wheel."""
    with zipfile.ZipFile(sktime_wheel(work)) as wheel:
        parts = []
        for part in ("TRAIN", "TEST"):
            member = f"sktime/datasets/data/{archive.folder}/{archive.folder}_{part}.ts"
            parts.append(parse_ts(wheel.read(member).decode("utf-8-sig"), member))
    return parts[0], parts[1]


def dim_columns(dims: int) -> list[str]:
    """The value columns of the long table: ``dim_0`` ... ``dim_{dims-1}``."""
    return [f"dim_{d}" for d in range(dims)]


def long_table(train: Sequences, test: Sequences) -> pd.DataFrame:
    """Both splits as one long table: ``seq``, ``step``, ``dim_*``, ``label``, ``split``.

    Sequence ids are ``train-0007`` / ``test-0007`` (the file's order), so an id says its split
    and no id order follows the class.
    """
    frames = []
    for split, part in (("train", train), ("test", test)):
        for i, (v, label) in enumerate(zip(part.values, part.labels, strict=True)):
            frame = pd.DataFrame(v, columns=dim_columns(part.dims))
            frame.insert(0, STEP, np.arange(len(v)))
            frame.insert(0, SEQ, f"{split}-{i:04d}")
            frame[LABEL] = label
            frame[SPLIT] = split
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def write_csv(archive: ArchiveSet, work: Path) -> Path:
    """The set as ``{work}/data/{name}.csv`` (the long table)."""
    path = work / "data" / f"{archive.name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    long_table(*load(archive, work)).to_csv(path, index=False)
    return path


def as_array(part: Sequences, length: int | None) -> np.ndarray:
    """(sequences, steps, dims) float32 for the 1-NN peers: stacked when lengths are equal,
    else resampled linearly to ``length`` (`seqcast.modeling.nearest.resample`)."""
    if length is None:
        if len(set(part.lengths.tolist())) != 1:
            raise ValueError("sequences of unequal length need `resample_to`")
        return np.stack(part.values).astype(np.float32)
    return resample(part.values, length)
