"""Publishing a day's predictions: the day's marker names its one complete file.

Where a day's predictions are::

    {pipeline_root}/predictions/date={day}/origin=…__model=….parquet   the day's file
    {pipeline_root}/published/predictions/{day}.json                   the day's marker

The marker (`seqcast.io.publications`) is what makes a file the day's predictions: readers
that need exactly one complete set per day read the file it names
(`published_predictions`). A plain listing of the day's folder (a Hive-partitioned read of
``predictions/``) can hold a second file for a moment while a forced rerun replaces the
day, or until the next publication of the day after a run died mid-way; a file the marker
does not name is not published.

A publication (`publish_day`) changes what the marker names in one step:

1. the new file is written under its own name, atomically (`combine_parts`);
2. the marker is replaced to name it (one atomic, fsynced write under the marker's
   compare-and-swap): the commit point;
3. the day's other files are removed.

A kill before 2 leaves the marker naming the earlier file, still there; a kill after 2
leaves the new file published and an old one for the next publication to remove. Before
this order the files were removed first and the marker written last, so a kill in between
left a marker naming a deleted file (issue 13 #3).
"""

from __future__ import annotations

import json
import logging
from datetime import date

from seqcast.errors import SeqcastError
from seqcast.io import cas, publications, storage
from seqcast.records import PredictionsRef

logger = logging.getLogger(__name__)

KIND = "predictions"


def day_folder(pipeline_root: str, day: date) -> str:
    """The folder holding ``day``'s prediction file(s)."""
    return storage.join(pipeline_root, "predictions", f"date={day.isoformat()}")


def marker_uri(pipeline_root: str, day: date) -> str:
    """The marker naming ``day``'s published predictions."""
    return publications.marker_uri(pipeline_root, KIND, day)


def published_predictions(pipeline_root: str, day: date) -> PredictionsRef | None:
    """The one published prediction file of ``day``, or None if there is none (never
    published, or the file the marker names is gone).

    Use this, not a listing of the day's folder, to read exactly one complete set.
    """
    record = publications.read(pipeline_root, KIND, day)
    if record is None or KIND not in record:
        return None
    ref = PredictionsRef.model_validate(record[KIND])
    return ref if storage.exists(ref.uri) else None


def publish_day(
    pipeline_root: str, day: date, ref: PredictionsRef, flow_run_id: str, trigger: str
) -> list[str]:
    """Make ``ref``'s file the day's predictions, then remove the day's other files.

    ``trigger`` (`publications.SCHEDULED` or `MANUAL`) says whether this publication fills
    the day's scheduled slot (see `seqcast.io.publications`); a manual run's file is the
    day's predictions all the same.

    Returns:
        The names of the files removed.

    Raises:
        SeqcastError: ``ref``'s file is gone: a run publishing the same day at the same
            time removed it; the marker then keeps naming that run's file.
    """
    marker = marker_uri(pipeline_root, day)

    def name_the_new_file(current: bytes | None) -> bytes:
        if not storage.exists(ref.uri):
            raise SeqcastError(
                f"{ref.uri} was removed before it could be published: another run published "
                f"predictions for {day} at the same time; {marker} names that run's file. "
                "Run once more (with force) to replace them."
            )
        earlier = json.loads(current) if current is not None else None
        published = {KIND: ref.model_dump()}
        return storage.json_bytes(
            publications.marker(day, published, flow_run_id, trigger, earlier)
        )

    cas.swap(marker, name_the_new_file)
    return remove_unpublished(pipeline_root, day)


def remove_unpublished(pipeline_root: str, day: date) -> list[str]:
    """Remove the files in ``day``'s folder that its marker does not name.

    The marker is read again here, so a publication that landed after ours keeps its file.
    Hidden files (a write in progress) are left alone.
    """
    record = publications.read(pipeline_root, KIND, day)
    if record is None or KIND not in record:
        return []
    kept = str(record[KIND]["uri"]).rstrip("/").rsplit("/", 1)[-1]
    folder = day_folder(pipeline_root, day)
    removed = []
    for name in storage.listdir(folder):
        if name != kept and not name.startswith("."):
            fs, path = storage.filesystem(storage.join(folder, name))
            fs.rm(path)
            removed.append(name)
    if removed:
        logger.info("removed %s from %s: the day's marker names %s", removed, folder, kept)
    return removed
