"""The raw snapshot of many source files, each file read by a task of its own (issue 18).

`seqcast.data.ingest.snapshot_source` reads the files one after another; here the same
snapshot is written in three steps an orchestrator can spread over workers:

1. `plan_parts`: `seqcast.data.ingest.plan_snapshot` (the files, the fingerprint: an
   existing snapshot is reused and nothing else is read; the columns from every
   header/footer), and a work folder of this run's own for the parts,
   ``{pipeline_root}/ingest-work/{fingerprint[:16]}-{uid}/`` (`seqcast.io.work_dirs`);
2. `write_part` (per file): the file streamed into ``part-{i}.arrow`` in the work folder
   (Arrow IPC, the snapshot's schema), with its series ids beside it when the source has
   test files (a series may not be in both);
3. `combine_parts`: the parts streamed in file order through `row_groups.parquet_writer`
   into the snapshot's ``data.parquet``, the manifest written (the commit point), the work
   folder removed.

The snapshot is byte for byte the one `snapshot_source` writes: the same rows reach the
same `RowGroupWriter`, which cuts row groups of a fixed size whatever the batches. A
source of one file skips the parts: its task writes ``data.parquet`` directly and the
combine step only commits it.

The parts never live in the snapshot folder: that folder is content-addressed, so two runs
of the same new source share it. Each run has its own work folder and writes the data file
and manifest atomically, with the same bytes, so both succeed. A run that dies leaves no
manifest, so no snapshot, and a work folder marked with its process: the next plan's
`work_dirs.clean` removes it once that process is gone (or after the grace period, for a
writer on another host).
"""

from __future__ import annotations

import logging

import pyarrow as pa

from seqcast.config import SourceSpec
from seqcast.data import source_batches
from seqcast.data.ingest import (
    SharedIds,
    data_uri,
    file_tables,
    plan_snapshot,
    publish_snapshot,
    raw_schema,
)
from seqcast.io import row_groups, storage, work_dirs
from seqcast.records import SnapshotPartRef, SnapshotPlanRef, SnapshotRef

logger = logging.getLogger(__name__)

WORK = "ingest-work"
"""Under the pipeline root: one folder per mapped ingest in progress (`seqcast.io.work_dirs`)."""
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
"""Parts are read back once, by the combine step: a fast codec, not a small file."""


def _direct(plan: SnapshotPlanRef) -> bool:
    """One file: its task writes the snapshot's data file itself (nothing to combine)."""
    return len(plan.files) == 1


def plan_parts(
    source: SourceSpec,
    pipeline_root: str,
    with_test: bool = True,
    with_future: bool = False,
) -> SnapshotPlanRef:
    """`plan_snapshot`, plus a fresh work folder for the parts when there are files to
    combine; first removes the work folders of ingests whose process is gone."""
    parent = storage.join(pipeline_root, WORK)
    work_dirs.clean(parent)
    plan = plan_snapshot(source, pipeline_root, with_test, with_future)
    if plan.reused is not None or _direct(plan):
        return plan
    return plan.model_copy(update={"work": work_dirs.begin(parent, plan.fingerprint[:16])})


def _work(plan: SnapshotPlanRef) -> str:
    if plan.work is None:
        raise ValueError(
            "`plan` has no work folder for its parts: make it with `plan_parts`, not "
            "`plan_snapshot`"
        )
    return plan.work


def write_part(
    source: SourceSpec,
    plan: SnapshotPlanRef,
    index: int,
    batch_rows: int = source_batches.BATCH_ROWS,
) -> SnapshotPartRef:
    """Stream file ``index`` of the plan into its part, ``batch_rows`` rows at a time.

    Written atomically: a part exists only whole, and a retried task rewrites it.

    Raises:
        SourceError: the file is not readable as CSV/Parquet (the message names it).
    """
    if plan.reused is not None:
        raise ValueError("`plan` is a reused snapshot: there is nothing to write")
    if not 0 <= index < len(plan.files):
        raise ValueError(
            f"`index` must be in [0, {len(plan.files)}) for the plan's files. Received: "
            f"index={index}"
        )
    uri, marks = plan.files[index], plan.marks[index]
    shared = SharedIds(source.series_id) if plan.shared_ids else None
    tables = file_tables(uri, marks, plan.columns, source, batch_rows, shared)
    schema = raw_schema(plan.columns)
    if _direct(plan):
        with row_groups.parquet_writer(data_uri(plan), schema) as snapshot:
            for table in tables:
                snapshot.write(table)
        return SnapshotPartRef(uri=data_uri(plan), rows=snapshot.rows)
    part_uri = storage.join(_work(plan), f"part-{index:05d}.arrow")
    rows = 0
    with (
        row_groups.atomic_file(part_uri) as handle,
        pa.ipc.new_stream(handle, schema, options=_IPC_OPTIONS) as part,
    ):
        for table in tables:
            rows += table.num_rows
            part.write_table(table)
    ids_uri = None
    if shared is not None:
        ids_uri = storage.join(_work(plan), f"ids-{index:05d}.json")
        storage.write_json(ids_uri, {"train": sorted(shared.train), "test": sorted(shared.test)})
    return SnapshotPartRef(uri=part_uri, rows=rows, ids_uri=ids_uri)


def combine_parts(
    source: SourceSpec, plan: SnapshotPlanRef, parts: list[SnapshotPartRef]
) -> SnapshotRef:
    """Write the parts (one per file, in file order) into the snapshot and commit it.

    Raises:
        SourceError: a series id is in both source.path and source.test_path (as
            `snapshot_source` reports it); nothing is committed.
    """
    if len(parts) != len(plan.files):
        raise ValueError(
            f"`parts` must hold one part per file of the plan ({len(plan.files)}). "
            f"Received: {len(parts)} part(s)"
        )
    if _direct(plan):
        return publish_snapshot(source, plan, parts[0].rows)
    if plan.shared_ids:
        shared = SharedIds(source.series_id)
        for part in parts:
            if part.ids_uri is not None:
                ids = storage.read_json(part.ids_uri)
                shared.train.update(ids["train"])
                shared.test.update(ids["test"])
        shared.check()
    fs = storage.filesystem(plan.uri)[0]
    with row_groups.parquet_writer(data_uri(plan), raw_schema(plan.columns)) as snapshot:
        for part in parts:
            with fs.open(storage.filesystem(part.uri)[1], "rb") as handle:
                for batch in pa.ipc.open_stream(handle):
                    snapshot.write(pa.Table.from_batches([batch]))
    rows = sum(part.rows for part in parts)
    if snapshot.rows != rows:
        raise RuntimeError(f"the parts hold {snapshot.rows} rows, their tasks wrote {rows}")
    ref = publish_snapshot(source, plan, snapshot.rows)
    abandon_parts(plan)
    return ref


def abandon_parts(plan: SnapshotPlanRef) -> None:
    """Remove the plan's work folder (after the commit, or after a failed file task)."""
    if plan.work is not None:
        work_dirs.remove(plan.work)


def snapshot_in_parts(
    source: SourceSpec,
    pipeline_root: str,
    with_test: bool = True,
    with_future: bool = False,
    batch_rows: int = source_batches.BATCH_ROWS,
) -> SnapshotRef:
    """The three steps one after another in this process (tests; the flow maps step 2)."""
    plan = plan_parts(source, pipeline_root, with_test, with_future)
    if plan.reused is not None:
        return plan.reused
    try:
        parts = [write_part(source, plan, i, batch_rows) for i in range(len(plan.files))]
        return combine_parts(source, plan, parts)
    except BaseException:
        abandon_parts(plan)
        raise
