"""Child processes that die with the process that started them (Linux).

A command's helpers (its temporary Prefect server, `flows.cli.ephemeral`; its side process,
`seqcast.side_process`) must not outlive it, however it ends, even by SIGKILL (issue 13
#12): a side process still writing a validation part after its command was killed would
write into a work folder the next run takes for a dead writer's. The kernel does it: the
child asks for a parent-death signal (``prctl(PR_SET_PDEATHSIG, ...)``), which is sent when
the *thread* that started it ends, hence start such children from the main thread.
Elsewhere (macOS) there is no such signal and the hook does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
"""From <linux/prctl.h>."""


def parent_death_hook(
    signum: int = signal.SIGTERM, parent: int | None = None
) -> Callable[[], None]:
    """A function for the child to call first thing (a ``preexec_fn``, or the top of a
    process's target): the kernel sends it ``signum`` when ``parent`` (default: this
    process) dies, and it exits at once if ``parent`` died before that took effect.

    Resolves ``prctl`` here, not in the child: between fork and exec only async-signal-safe
    work is allowed. The child exits with status 127 if the request fails, rather than run
    unwatched.
    """
    if not sys.platform.startswith("linux"):
        return lambda: None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    watched = os.getpid() if parent is None else parent

    def hook() -> None:
        if prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
            os._exit(127)
        if os.getppid() != watched:  # the parent died before the request
            os._exit(0)

    return hook
