"""Retention: what garbage collection may delete under a pipeline root, and deleting it.

What lives under ``{pipeline_root}`` (``{data_root}/{name}``) and what refers to what::

    registry/versions/{id}/   a model version; manifest.json is its commit marker and names
                              its window build (``windows``: the build folder) and its run
                              (``flow_run_id``: runs/{id})
    registry/champion.json    the champion and, newest first, every earlier one
    registry/audit.jsonl      every promotion (``promoted: true`` lines name ex-champions)
    windows/builds/{build}/   a window build; manifest.json is its commit marker (and names
                              its validated table, ``inputs.validated_uri``); _writer.json
                              while a writer works
    windows/{key16}.json      a key's pointer to its build; windows/current.json: the latest
    backtest/windows/...      the backtest folds' window store, the same layout
    validated/{key}/          the validated table (data.parquet), written once, atomically
    validation/{key}/         its contract report (report.json names its Data Docs page)
    quarantine/{key}.parquet  its quarantined rows
    raw/{fingerprint}-text1/  a raw snapshot; manifest.json is its commit marker
    runs/{flow_run_id}/       a training run's model, metrics, trials
    checkpoints/{day}-{key}/  per-epoch checkpoints (+ {name}.lock while a run trains)
    data_docs/validations/{suite}/{run}/{timestamp}/  GX Data Docs pages
    predictions/.staging-{run}/  a prediction run's parts before they are combined
    predictions/date=.../, published/   published outputs and their markers: never deleted

What is kept (`plan`), whatever `RetentionSpec` says otherwise:

- every version that was ever champion (the pointer's history, the audit log's promotions),
  the ``keep_versions`` newest versions, and anything younger than ``grace_hours``; with
  a corrupt pointer or audit log no version is deleted;
- what a kept version refers to, transitively: its window build, that build's validated
  table, the table's validation report and Data Docs page, and its run folder;
- the target of each current pointer: ``current.json``'s build, the newest raw snapshot
  and validated table (what tonight's source maps to); published predictions are never
  candidates at all;
- everything newer than ``keep_days`` (ages are the newest file's modification time, as
  the store reports it); a window build with a writer marker is left to
  `seqcast.windows.publish.WindowStore.clean`, which can tell whether its writer lives.

Deleting is crash-safe (`apply`): objects go in the order that never leaves a kept object
referring to a deleted one (versions, then builds, then what builds read), and inside one
object the pointer that publishes it goes first, then its commit marker, then the rest. A
kill part-way leaves at worst an unpublished build or a folder without its marker, which
every reader already ignores, and which the next run's plan deletes ("unfinished").
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from seqcast.config import RetentionSpec
from seqcast.errors import RegistryError
from seqcast.io import storage
from seqcast.serving import registry

logger = logging.getLogger(__name__)

KINDS = (
    "versions",
    "window builds",
    "backtest builds",
    "runs",
    "checkpoints",
    "validated tables",
    "validation reports",
    "raw snapshots",
    "data docs pages",
    "prediction staging",
    "live accuracy details",
)
"""What GC deletes, in deletion order: what refers comes before what it refers to."""

STAGING_SECONDS = 6 * 3600
"""A prediction staging folder is a crashed run's once its newest part is this old (as
`seqcast.serving.prediction.remove_stale_staging` decides)."""

_DAY = 86400.0
LIVE_HISTORY = "monitor/live"


@dataclass(frozen=True)
class Item:
    """One object GC looked at: a folder or file, its size, and why it goes or stays.

    ``first`` are files deleted before it (the pointers that publish it), ``marker`` its
    commit marker, deleted before the rest of it, ``then`` files deleted after it (a
    checkpoint's lock).
    """

    kind: str
    uri: str
    bytes: int
    reason: str
    first: tuple[str, ...] = ()
    marker: str | None = None
    folder: bool = True
    then: tuple[str, ...] = ()


@dataclass
class Plan:
    """What one GC would delete and what it keeps, with the reasons."""

    pipeline_root: str
    delete: list[Item] = field(default_factory=list)
    keep: list[Item] = field(default_factory=list)

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """Deletions per kind: (count, bytes), in `KINDS` order, kinds with none left out."""
        totals: dict[str, tuple[int, int]] = {}
        for kind in KINDS:
            items = [i for i in self.delete if i.kind == kind]
            if items:
                totals[kind] = (len(items), sum(i.bytes for i in items))
        return totals

    @property
    def bytes(self) -> int:
        return sum(item.bytes for item in self.delete)


def human_bytes(size: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def summary(plan: Plan) -> str:
    """One line: deletions per kind with their sizes, and the total."""
    parts = [f"{kind}: {n} ({human_bytes(b)})" for kind, (n, b) in plan.by_kind().items()]
    total = f"{len(plan.delete)} objects, {human_bytes(plan.bytes)}"
    return f"{'; '.join(parts) or 'nothing to delete'} - total {total}"


class _Listing:
    """Every file under the pipeline root, listed once: size and modification time."""

    def __init__(self, pipeline_root: str) -> None:
        fs, path = storage.filesystem(pipeline_root)
        self.root = pipeline_root.rstrip("/")
        self.fs = fs
        self.base = path.rstrip("/")
        found = fs.find(self.base, detail=True) if fs.exists(self.base) else {}
        self.files: dict[str, tuple[int, float]] = {}
        for name, info in found.items():
            if info.get("type", "file") != "file":
                continue
            relative = name[len(self.base) + 1 :] if name.startswith(self.base) else name
            self.files[relative] = (int(info.get("size") or 0), _modified(info))

    def children(self, folder: str) -> dict[str, list[str]]:
        """The entries directly under ``folder`` (relative), each with its files."""
        prefix = folder.strip("/") + "/"
        entries: dict[str, list[str]] = {}
        for name in self.files:
            if name.startswith(prefix):
                entries.setdefault(name[len(prefix) :].split("/", 1)[0], []).append(name)
        return entries

    def size(self, names: Iterable[str]) -> int:
        return sum(self.files[n][0] for n in names)

    def newest(self, names: Iterable[str]) -> float:
        return max((self.files[n][1] for n in names), default=0.0)

    def uri(self, relative: str) -> str:
        return storage.join(self.root, relative)

    def has(self, relative: str) -> bool:
        return relative in self.files


def _modified(info: dict[str, Any]) -> float:
    """A listing entry's modification time (epoch seconds), whatever the store calls it;
    0 (very old) where it says nothing."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, datetime):
            return value.timestamp()
        return float(value)
    return 0.0


class _Planner:
    def __init__(self, pipeline_root: str, spec: RetentionSpec, now: float) -> None:
        self.root = pipeline_root
        self.spec = spec
        self.now = now
        self.listing = _Listing(pipeline_root)
        self.plan = Plan(pipeline_root)
        self.kept_builds: set[tuple[str, str]] = set()
        self.kept_runs: set[str] = set()
        self.kept_validated: set[str] = set()
        self.kept_docs: set[str] = set()

    def age(self, names: Iterable[str]) -> float:
        return self.now - self.listing.newest(names)

    def young(self, names: list[str]) -> bool:
        return self.age(names) < self.spec.grace_hours * 3600

    def recent(self, names: list[str]) -> bool:
        return self.age(names) < max(self.spec.keep_days * _DAY, self.spec.grace_hours * 3600)

    def decide(
        self, kind: str, relative: str, names: list[str], keep: str | None, **kw: Any
    ) -> bool:
        """Record ``relative`` as kept (``keep``: why) or deleted; True if kept."""
        uri = self.listing.uri(relative)
        size = self.listing.size(names)
        if keep is not None:
            self.plan.keep.append(Item(kind, uri, size, keep))
            return True
        reason = kw.pop(
            "reason", f"older than {self.spec.keep_days:g} days, referred to by nothing kept"
        )
        self.plan.delete.append(Item(kind, uri, size, reason, **kw))
        return False

    # registry/versions

    def versions(self) -> None:
        entries = self.listing.children("registry/versions")
        committed = sorted(
            v
            for v, names in entries.items()
            if registry.VERSION_PATTERN.fullmatch(v)
            and f"registry/versions/{v}/manifest.json" in names
        )
        champions, why = self.champion_chain()
        newest = set(committed[-self.spec.keep_versions :])
        for version, names in sorted(entries.items()):
            relative = f"registry/versions/{version}"
            if not registry.VERSION_PATTERN.fullmatch(version):
                continue  # not a version: nothing of GC's
            if version not in committed:
                keep = "being written (no manifest yet)" if self.young(names) else None
                self.decide(
                    "versions", relative, names, keep, reason="unfinished (no manifest.json)"
                )
                continue
            if version in champions:
                keep = champions[version]
            elif why is not None:
                keep = why
            elif version in newest:
                keep = f"one of the {self.spec.keep_versions} newest versions"
            elif self.young(names):
                keep = "younger than the grace period"
            else:
                keep = None
            if self.decide(
                "versions",
                relative,
                names,
                keep,
                reason=f"not among the {self.spec.keep_versions} newest, never champion",
                marker=self.listing.uri(f"{relative}/manifest.json"),
            ):
                self.referenced_by_version(version)

    def champion_chain(self) -> tuple[dict[str, str], str | None]:
        """Every version that was ever champion (with why), and a reason to keep every
        version when the pointer or audit log cannot be read."""
        chain: dict[str, str] = {}
        try:
            for entry in registry.read_audit(self.root):
                if entry.get("promoted") and entry.get("version"):
                    chain[entry["version"]] = "was champion (audit log)"
            chain_now = registry.champion_chain(self.root)
            for version in chain_now[1:]:
                chain[version] = "earlier champion (champion pointer)"
            if chain_now:
                chain[chain_now[0]] = "the champion"
        except RegistryError as exc:
            logger.warning("%s; GC keeps every model version until it is repaired", exc)
            return chain, "kept: the champion history cannot be read"
        return chain, None

    def referenced_by_version(self, version: str) -> None:
        try:
            manifest = registry.read_manifest(self.root, version)
        except (RegistryError, OSError, ValueError):
            return
        if manifest.get("windows"):
            self.kept_builds.add(("windows", _last(manifest["windows"])))
        if manifest.get("flow_run_id"):
            self.kept_runs.add(str(manifest["flow_run_id"]))

    # windows/ and backtest/windows

    def builds(self, store: str, kind: str) -> None:
        pointers = self.pointers(store)
        current = pointers.pop("current.json", None)
        named: dict[str, list[str]] = {}
        for name, build in pointers.items():
            named.setdefault(build, []).append(self.listing.uri(f"{store}/{name}"))
        for build, names in sorted(self.listing.children(f"{store}/builds").items()):
            relative = f"{store}/builds/{build}"
            manifest = f"{relative}/manifest.json"
            if self.listing.has(f"{relative}/_writer.json"):
                keep: str | None = "being written (left to the window store's clean-up)"
            elif not self.listing.has(manifest):
                keep = "being written" if self.young(names) else None
                if keep is None:
                    first = tuple(named.get(build, ()))  # a pointer to it is stale: first
                    reason = "unfinished (no manifest)"
                    self.decide(kind, relative, names, None, reason=reason, first=first)
                    continue
            elif build == current:
                keep = "the current build (current.json)"
            elif (store, build) in self.kept_builds:
                keep = "a kept model version's build"
            elif self.recent(names):
                keep = f"newer than {self.spec.keep_days:g} days"
            else:
                keep = None
            kept = self.decide(
                kind,
                relative,
                names,
                keep,
                first=tuple(named.get(build, ())),
                marker=self.listing.uri(manifest),
            )
            if kept and self.listing.has(manifest):
                self.referenced_by_build(manifest)

    def pointers(self, store: str) -> dict[str, str]:
        """Pointer file name -> the build folder it names."""
        found = {}
        for name in self.listing.children(store):
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:
                found[name] = _last(storage.read_json(self.listing.uri(f"{store}/{name}"))["build"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being replaced right now: the next GC reads it
        return found

    def referenced_by_build(self, manifest: str) -> None:
        try:
            inputs = storage.read_json(self.listing.uri(manifest)).get("inputs", {})
        except (OSError, ValueError):
            return
        validated = inputs.get("validated_uri")
        if validated:
            self.kept_validated.add(_last(validated.rsplit("/", 1)[0]))

    # runs/ and checkpoints/

    def runs(self) -> None:
        for run, names in sorted(self.listing.children("runs").items()):
            if run in self.kept_runs:
                keep: str | None = "a kept model version's run"
            elif self.recent(names):
                keep = f"newer than {self.spec.keep_days:g} days"
            else:
                keep = None
            self.decide("runs", f"runs/{run}", names, keep)

    def checkpoints(self) -> None:
        entries = self.listing.children("checkpoints")
        for name, names in sorted(entries.items()):
            relative = f"checkpoints/{name}"
            if name.endswith(".lock"):
                if name.removesuffix(".lock") in entries:
                    continue  # goes with its folder
                # A GC killed between a folder and its lock left the lock alone.
                keep = None if not (self.recent(names) or self.locked(relative)) else "in use"
                self.decide(
                    "checkpoints", relative, names, keep, folder=False, reason="a lock alone"
                )
                continue
            lock = f"{relative}.lock"
            if self.recent(names):
                keep = f"newer than {self.spec.keep_days:g} days"
            elif self.locked(lock):
                keep = "a run is training with it"
            else:
                keep = None
            # The lock goes after the checkpoints: deleted first, a run starting now could
            # claim a folder that is being deleted.
            then = (self.listing.uri(lock),) if self.listing.has(lock) else ()
            self.decide("checkpoints", relative, names, keep, then=then)

    def locked(self, lock: str) -> bool:
        """Whether a live run holds the checkpoint's ``flock`` (local disks only)."""
        if not self.listing.has(lock) or not storage.is_local(self.listing.fs):
            return False
        path = storage.filesystem(self.listing.uri(lock))[1]
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    # validated/, validation/, quarantine/, raw/

    def validated(self) -> None:
        tables = self.listing.children("validated")
        newest = max(tables, key=lambda k: self.listing.newest(tables[k]), default=None)
        kept: set[str] = set()
        for key, names in sorted(tables.items()):
            if key in self.kept_validated:
                keep: str | None = "a kept build's validated table"
            elif key == newest:
                keep = "the newest validated table"
            elif self.recent(names):
                keep = f"newer than {self.spec.keep_days:g} days"
            else:
                keep = None
            if keep is not None:
                kept.add(key)
            self.decide("validated tables", f"validated/{key}", names, keep)
        reports = self.listing.children("validation")
        for key, names in sorted(reports.items()):
            if key in kept:
                keep = "the report of a kept validated table"
            elif self.recent(names):
                keep = f"newer than {self.spec.keep_days:g} days"
            else:
                keep = None
            if self.decide("validation reports", f"validation/{key}", names, keep):
                self.referenced_by_report(f"validation/{key}/report.json")
        for name, names in sorted(self.listing.children("quarantine").items()):
            key = name.removesuffix(".parquet")
            keep = "the quarantine of a kept validated table" if key in kept else None
            if keep is None and self.recent(names):
                keep = f"newer than {self.spec.keep_days:g} days"
            self.decide("validation reports", f"quarantine/{name}", names, keep, folder=False)

    def referenced_by_report(self, report: str) -> None:
        if not self.listing.has(report):
            return
        try:
            url = storage.read_json(self.listing.uri(report)).get("docs_url") or ""
        except (OSError, ValueError):
            return
        _, found, page = url.partition("/data_docs/validations/")
        if found:
            self.kept_docs.add("/".join(page.split("/")[:3]))

    def raw(self) -> None:
        snapshots = self.listing.children("raw")
        committed = {k: n for k, n in snapshots.items() if f"raw/{k}/manifest.json" in n}
        newest = max(committed, key=lambda k: self.listing.newest(committed[k]), default=None)
        for key, names in sorted(snapshots.items()):
            relative = f"raw/{key}"
            if key not in committed:
                keep = "being written" if self.young(names) else None
                self.decide(
                    "raw snapshots", relative, names, keep, reason="unfinished (no manifest.json)"
                )
                continue
            if key == newest:
                keep = "the newest raw snapshot"
            elif self.recent(names):
                keep = f"newer than {self.spec.keep_days:g} days"
            else:
                keep = None
            self.decide(
                "raw snapshots",
                relative,
                names,
                keep,
                marker=self.listing.uri(f"{relative}/manifest.json"),
            )

    # data_docs/, predictions/.staging-*

    def docs(self) -> None:
        pages: dict[str, list[str]] = {}
        for name in self.listing.files:
            parts = name.split("/")
            if parts[:2] == ["data_docs", "validations"] and len(parts) > 5:
                pages.setdefault("/".join(parts[2:5]), []).append(name)
        newest: dict[str, str] = {}
        for page, names in pages.items():
            suite = page.split("/")[0]
            if suite not in newest or self.listing.newest(names) > self.listing.newest(
                pages[newest[suite]]
            ):
                newest[suite] = page
        for page, names in sorted(pages.items()):
            if page in self.kept_docs:
                keep: str | None = "the page of a kept validation report"
            elif newest.get(page.split("/")[0]) == page:
                keep = "the suite's newest page"
            elif self.recent(names):
                keep = f"newer than {self.spec.keep_days:g} days"
            else:
                keep = None
            self.decide("data docs pages", f"data_docs/validations/{page}", names, keep)

    def staging(self) -> None:
        for name, names in sorted(self.listing.children("predictions").items()):
            if not name.startswith(".staging-"):
                continue
            old = self.age(names) >= max(STAGING_SECONDS, self.spec.grace_hours * 3600)
            keep = None if old else "a prediction run may be writing it"
            self.decide(
                "prediction staging",
                f"predictions/{name}",
                names,
                keep,
                reason="a crashed prediction run's parts",
            )

    def live_details(self) -> None:
        """Each night's live-accuracy detail (one row per version, series and step: large at
        many series) goes after ``keep_days``; the night's ``summary.json``, which the chart
        and the degradation streak read, stays. The path is `seqcast.monitoring.live_history`'s
        (a later stage, so not imported here)."""
        for night, names in sorted(self.listing.children(LIVE_HISTORY).items()):
            detail = f"{LIVE_HISTORY}/{night}/detail.parquet"
            if detail not in names:
                continue
            keep = f"newer than {self.spec.keep_days:g} days" if self.recent([detail]) else None
            self.decide("live accuracy details", detail, [detail], keep, folder=False)

    def run(self) -> Plan:
        self.versions()
        self.builds("windows", "window builds")
        self.builds("backtest/windows", "backtest builds")
        self.runs()
        self.checkpoints()
        self.validated()
        self.raw()
        self.docs()
        self.staging()
        self.live_details()
        return self.plan


def _last(uri: str) -> str:
    """The last path component of a URI (a build, a validated key): stored URIs may be
    relative to the directory a run was started in, the names are not."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


def plan(pipeline_root: str, spec: RetentionSpec, now: datetime | None = None) -> Plan:
    """What GC would delete under ``pipeline_root`` and what it keeps, with the reasons.

    Reads one listing of the root (one prefix listing on an object store) and the small
    pointer and manifest files that say what refers to what; deletes nothing.
    """
    moment = (now or datetime.now(UTC)).timestamp()
    return _Planner(pipeline_root, spec, moment).run()


def apply(plan: Plan) -> Plan:
    """Delete what ``plan`` says, crash-safely (see the module docstring); returns it.

    An interrupted call leaves every kept object whole; calling `plan` and `apply` again
    finishes the job (every deletion of an absent file is a no-op).
    """
    for item in plan.delete:
        for pointer in item.first:
            storage.remove(pointer)
        if item.marker is not None:
            storage.remove(item.marker)
        storage.remove(item.uri, recursive=item.folder)
        for leftover in item.then:
            storage.remove(leftover)
        logger.debug("deleted %s (%s): %s", item.uri, human_bytes(item.bytes), item.reason)
    return plan


def collect(pipeline_root: str, spec: RetentionSpec, dry_run: bool = False) -> Plan:
    """Plan and (unless ``dry_run``) apply GC; logs the summary per kind."""
    found = plan(pipeline_root, spec)
    if dry_run:
        logger.info("GC of %s would delete %s", pipeline_root, summary(found))
        return found
    apply(found)
    logger.info("GC of %s deleted %s", pipeline_root, summary(found))
    return found
