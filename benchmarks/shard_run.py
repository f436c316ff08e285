"""One side of figure 6 in a fresh process: the sharded window build then batch prediction.

Usage: python -m benchmarks.shard_run {thread|dask} VALIDATED_URI WORK N_SERIES ROWS REPEATS
       [SERIES_PER_SHARD]
Prints one JSON line. ``thread``: ThreadPoolTaskRunner with one thread. ``dask``: a local
cluster of 2 worker processes x 1 thread, started first (its start-up is reported on its
own) and passed by address, so its workers can be asked for their peak memory afterwards.
Each repeat builds into a fresh data root: the first one finds cold workers (imports of
pandas, TensorFlow), later ones the warm workers a long-lived cluster has.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.bench_flow import configure_prefect
from benchmarks.common import peak_rss_mib


def _champion(config: Any, windows_uri: str, work: Path) -> None:
    """An untrained model of the benchmark's shape as champion: prediction cost does not
    depend on the weights, and the model is the same on both sides (seeded)."""
    import keras

    from seqcast.modeling.networks import build_model
    from seqcast.serving import registry
    from seqcast.windows.store import read_layout

    keras.utils.set_random_seed(config.model.seed)
    model = build_model(read_layout(windows_uri), config.model)
    path = work / f"model-{Path(config.data_root).name}.keras"
    model.save(path)
    version = registry.register_version(config.pipeline_root, str(path), windows_uri, {}, {})
    registry.set_champion(config.pipeline_root, version, {"reason": "benchmark"})


def main(
    side: str,
    validated_uri: str,
    work: Path,
    n_series: int,
    rows: int,
    repeats: int,
    series_per_shard: int = 500,
) -> None:
    configure_prefect(work / f"prefect-{side}")
    from prefect import flow

    from benchmarks.common import bench_config
    from flows.runners import run_sharded
    from flows.sharded import predict_shards, window_shards
    from seqcast.records import ValidatedRef
    from seqcast.windows.store import read_manifest

    @flow(name="warm-up")
    def warm_up() -> None:
        """Starts the ephemeral Prefect API before the clock runs."""

    warm_up()
    out: dict[str, Any] = {"side": side, "runs": []}
    runner: dict[str, Any] = {
        "kind": "thread",
        "n_workers": 1,
        "series_per_shard": series_per_shard,
    }
    client = None
    if side == "dask":
        from distributed import Client, LocalCluster

        started = time.perf_counter()
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
        out["cluster_start_s"] = time.perf_counter() - started
        runner = {
            "kind": "dask",
            "address": cluster.scheduler_address,
            "series_per_shard": series_per_shard,
        }
    validated = ValidatedRef(uri=validated_uri, rows=rows, fingerprint="fig6", series=n_series)
    for repeat in range(repeats):
        config = bench_config(work / f"fig6-{side}-{repeat}", runner=runner)
        started = time.perf_counter()
        windows = run_sharded(window_shards, config, validated)
        window_s = time.perf_counter() - started
        _champion(config, windows.uri, work)
        started = time.perf_counter()
        predictions = run_sharded(predict_shards, config, validated, date.today(), side, "manual")
        predict_s = time.perf_counter() - started
        manifest = read_manifest(windows.uri)
        out["runs"].append(
            {
                "window_s": window_s,
                "predict_s": predict_s,
                "total_s": window_s + predict_s,
                "windows": sum(windows.rows_by_split.values()),
                "windows_by_split": windows.rows_by_split,
                "prediction_rows": predictions.rows,
                "predictions_uri": predictions.uri,
                "shards": len({b["part"] for b in manifest["blocks"]}),
                "windows_sha256": {n: f["sha256"] for n, f in manifest["files"].items()},
            }
        )
    out["flow_process_peak_rss_mib"] = peak_rss_mib()
    if client is not None:
        out["worker_peak_rss_mib"] = sorted(client.run(peak_rss_mib).values())
        client.close()
    print(json.dumps(out))


if __name__ == "__main__":
    side, uri, work, n_series, rows, repeats = sys.argv[1:7]
    shard_size = int(sys.argv[7]) if len(sys.argv) > 7 else 500
    main(side, uri, Path(work), int(n_series), int(rows), int(repeats), shard_size)
