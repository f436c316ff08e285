"""seqcast on one archive set: a config with no model settings, `seqcast train` through the CLI.

The config names only the columns, the task, the mode (``window.per: sequence``) and the split
column holding the archive's official split (validation is carved from train by seqcast);
everything else is seqcast's default. One run per seed (``model.seed`` and ``split.seed``, so
the weights and the validation carve both change; set with ``--set``: a seed is not a model
choice), each on a fresh ``data_root``. Test accuracy, balanced accuracy and
macro-F1 are the champion's after the run (what `seqcast predict` would classify with: the
network or its 1-NN challenger, whichever the gate promoted), read from the registry
(`seqcast models list --json`), with the network's own scores beside them and what seqcast's
defaults chose (the network version's manifest: training plan; the 1-NN's distance, chosen by
leave-one-out accuracy on the training sequences). With no champion (neither
beat the majority class) the network's scores are reported and ``champion_kind`` is None.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks.classify.datasets import LABEL, SEQ, SPLIT, STEP, ArchiveSet, dim_columns
from benchmarks.real.nightly import _checked, _cli, _find, write_config

METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def archive_config(archive: ArchiveSet, csv: Path, dims: int, data_root: Path) -> dict[str, Any]:
    """The whole config a user writes for an archive set: columns, task, mode, split column."""
    return {
        "name": f"classify-{archive.name}",
        "data_root": str(data_root.resolve()),
        "task": "classify",
        "source": {
            "path": str(csv.resolve()),
            "series_id": SEQ,
            "timestamp": STEP,
            "time_unit": "step",
            "target": [LABEL],
            "features": dim_columns(dims),
        },
        "window": {"per": "sequence"},
        "split": {"by": "column", "column": SPLIT},
    }


def run_seed(archive: ArchiveSet, csv: Path, dims: int, work: Path, seed: int) -> dict[str, Any]:
    """`seqcast train` with ``seed`` on a fresh data_root; the network's test scores."""
    data_root = work / "data-root" / f"{archive.name}-seed{seed}"
    shutil.rmtree(data_root, ignore_errors=True)
    config_path = write_config(
        archive_config(archive, csv, dims, data_root), work / "configs" / f"{archive.name}.yaml"
    )
    env = {**os.environ, "PREFECT_HOME": str(data_root / "prefect")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    config = ["--config", str(config_path)]
    started = time.perf_counter()
    seeds = ["--set", f"model.seed={seed}", "--set", f"split.seed={seed}"]
    trained = _checked(_cli(["train", *config, *seeds], env), "train")
    wall_s = time.perf_counter() - started
    rows = json.loads(_checked(_cli(["models", "list", *config, "--json"], env), "models list"))
    network = next(r for r in rows if r["kind"] == "network")  # one per run, fresh data_root
    champion = next((r for r in rows if r["champion"]), None)
    shown = _cli(["models", "show", network["version"], *config, "--json"], env)
    detail = json.loads(shown.stdout) if shown.returncode == 0 else {}
    scores = network["metrics"]["scores"]
    model = scores["model"]
    served = scores[champion["predictor"]] if champion is not None else model
    return {
        "seed": seed,
        "wall_s": wall_s,
        "version": (champion or network)["version"],
        "champion_kind": champion["kind"] if champion is not None else None,
        "promoted": champion is not None,
        **{m: (float(served[m]) if m in served else None) for m in METRICS},
        "network": {m: float(model[m]) for m in METRICS if m in model},
        "baselines": {k: v for k, v in scores.items() if k != "model"},
        # the 1-NN challenger's distance and (``auto``) each distance's leave-one-out accuracy
        "nearest": network["metrics"].get("nearest_neighbour"),
        "training": _find(detail.get("manifest"), ("training",)),
        "val_share": _find(detail.get("manifest"), ("val_share", "val")),
        "log": "\n".join(trained.strip().splitlines()[-12:]),
    }
