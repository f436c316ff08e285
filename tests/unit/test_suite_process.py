"""The command's suite process (`seqcast.data.suite_process`, issue 14 #5): GX checks run
there while the command imports what comes next; failures come back as the same errors;
a dead process costs a warning, not the run."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator

import pytest

from seqcast.data import suite_process
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
    suite_process.start(meanwhile=["colorsys"])
    yield
    suite_process.stop()


def test_without_start_the_function_runs_here() -> None:
    assert suite_process.run(where)[0] == os.getpid()


def test_the_check_runs_there_with_gx_while_this_process_imports_the_rest(
    started: None,
) -> None:
    helper = suite_process._helper
    assert helper is not None
    pid, has_gx = suite_process.run(where)
    assert pid == helper.process.pid != os.getpid()
    assert has_gx, "the process imports GX first thing"
    assert "colorsys" in sys.modules, "this process imported `meanwhile` during the call"

    with pytest.raises(DataContractError, match="column value breaks rule"):
        suite_process.run(refuse, "column value breaks rule")
    with pytest.raises(SeqcastError, match="Unpicklable: odd failure"):
        suite_process.run(fail_oddly)
    assert suite_process.run(where)[0] == pid, "failures leave the process serving"

    suite_process.stop()
    helper.process.join(timeout=10)
    assert not helper.process.is_alive()


def test_a_process_that_dies_is_replaced_by_this_one(
    started: None, caplog: pytest.LogCaptureFixture
) -> None:
    suite_process.run(where)
    assert suite_process.run(die_unless_in, os.getpid()) == os.getpid()  # died there, ran here
    assert suite_process._helper is None
    assert "ended unexpectedly" in caplog.text


def test_a_failed_import_meanwhile_leaves_no_reply_behind() -> None:
    suite_process.start(meanwhile=["seqcast_no_such_module"])
    try:
        helper = suite_process._helper
        assert helper is not None
        with pytest.raises(ModuleNotFoundError):
            suite_process.run(where)
        helper.meanwhile = ()
        assert suite_process.run(echo, "second") == "second"  # its own reply
    finally:
        suite_process.stop()
