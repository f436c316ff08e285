"""The command's side process (`seqcast.side_process`, issue 14 #5): GX checks and ETS
fits run there while the command imports what comes next; failures come back as the same errors;
a dead process costs a warning, not the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqcast import side_process
from seqcast.errors import DataContractError, SeqcastError


def where() -> tuple[int, bool]:
    """This process's id, and whether GX is imported in it."""
    return os.getpid(), "great_expectations" in sys.modules


def echo(text: str) -> str:
    return text


def refuse(message: str) -> None:
    raise DataContractError(message)


class Unpicklable(Exception):
    def __init__(self, detail: str, handle: object) -> None:
        super().__init__(detail)
        self.handle = handle


def fail_oddly() -> None:
    raise Unpicklable("odd failure", lambda: None)


def die_unless_in(pid: int) -> int:
    """Killed (SIGKILL) in any process but ``pid``; there, its id."""
    if os.getpid() != pid:
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


@pytest.fixture
def started() -> Iterator[None]:
    # colorsys: a module nothing here imports, to see `meanwhile` land in this process.
    sys.modules.pop("colorsys", None)
    side_process.start(meanwhile=["colorsys"])
    yield
    side_process.stop()


def test_without_start_the_function_runs_here() -> None:
    assert side_process.run(where)[0] == os.getpid()


def test_the_check_runs_there_with_gx_while_this_process_imports_the_rest(
    started: None,
) -> None:
    helper = side_process._helper
    assert helper is not None
    pid, has_gx = side_process.run(where)
    assert pid == helper.process.pid != os.getpid()
    assert has_gx, "the process imports GX first thing"
    assert "colorsys" in sys.modules, "this process imported `meanwhile` during the call"

    with pytest.raises(DataContractError, match="column value breaks rule"):
        side_process.run(refuse, "column value breaks rule")
    with pytest.raises(SeqcastError, match="Unpicklable: odd failure"):
        side_process.run(fail_oddly)
    assert side_process.run(where)[0] == pid, "failures leave the process serving"

    side_process.stop()
    helper.process.join(timeout=10)
    assert not helper.process.is_alive()


def test_a_process_that_dies_is_replaced_by_this_one(
    started: None, caplog: pytest.LogCaptureFixture
) -> None:
    side_process.run(where)
    assert side_process.run(die_unless_in, os.getpid()) == os.getpid()  # died there, ran here
    assert side_process._helper is None
    assert "ended unexpectedly" in caplog.text


def test_a_failed_import_meanwhile_leaves_no_reply_behind() -> None:
    side_process.start(meanwhile=["seqcast_no_such_module"])
    try:
        helper = side_process._helper
        assert helper is not None
        with pytest.raises(ModuleNotFoundError):
            side_process.run(where)
        helper.meanwhile = ()
        assert side_process.run(echo, "second") == "second"  # its own reply
    finally:
        side_process.stop()


# A command that starts its side process, says the process's pid, then has it work (sleep
# 600 s) until the command is killed: an idle side process would end anyway, on its pipe's
# end.
COMMAND = """
import time
from seqcast import side_process
side_process.start()
print(side_process._helper.process.pid, flush=True)
side_process.run(time.sleep, 600)
"""


def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_a_killed_command_takes_its_side_process_along() -> None:
    # Else a check in progress would go on writing into a work folder that the next run
    # takes for a dead writer's.
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "src"), str(repo)])}
    command = subprocess.Popen(
        [sys.executable, "-c", COMMAND], stdout=subprocess.PIPE, text=True, env=env
    )
    assert command.stdout is not None
    side = int(command.stdout.readline())
    assert running(side)
    command.kill()  # SIGKILL: no exit handler of the command runs
    command.wait()
    deadline = time.monotonic() + 120  # generous: the signal is immediate, a busy machine slow
    while running(side) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(side)
