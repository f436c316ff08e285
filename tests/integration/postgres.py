"""A throwaway PostgreSQL cluster for the integration test: initdb, pg_ctl, gone afterwards.

PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the `postgres`
user and its commands run through `runuser`. `unavailable()` says why a cluster cannot
start here, so the test can skip with that reason instead of failing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stack import free_port

SERVICE_USER = "postgres"


def bin_dir() -> Path | None:
    """The directory of `initdb` and `pg_ctl`: on PATH, else Debian's versioned directory."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def unavailable() -> str | None:
    """Why PostgreSQL cannot start on this machine, or None if it can."""
    if bin_dir() is None:
        return (
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin); "
            "`apt-get install postgresql` (.ci/run does this on CI)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return "running as root without a `postgres` user to own the cluster"
        if shutil.which("runuser") is None:
            return "running as root without `runuser` to start PostgreSQL as `postgres`"
    return None


@dataclass
class Postgres:
    """A running cluster on a free loopback port; `url` is for Prefect's asyncpg driver."""

    root: Path
    port: int
    bindir: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://prefect@127.0.0.1:{self.port}/prefect"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVICE_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.root / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}\n{tail}")

    def start(self) -> None:
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-U", "prefect", "--auth=trust", "-E", "UTF8")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.root / "postgres.log")
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", log, "-w", "-t", "60", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "prefect", "prefect")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> Postgres:
    """Start a cluster in a fresh directory the service user owns (pytest's tmp_path is
    private to root)."""
    bindir = bin_dir()
    assert bindir is not None, unavailable()
    root = Path(tempfile.mkdtemp(prefix="seqcast-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVICE_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
    root.chmod(0o700)
    cluster = Postgres(root=root, port=free_port(), bindir=bindir)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
