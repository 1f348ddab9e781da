"""Stopping a run on SIGTERM or SIGINT: a stop token and the handler that sets it.

systemd, docker and Kubernetes stop a process with SIGTERM (then SIGKILL after a grace
period); a user presses Ctrl-C (SIGINT). Either one sets the run's `Stop` token, and the
archiver (`Archiver.stop`) then takes no new work: no new session, no RETR past the message
in hand, no DELE; the session is dropped without QUIT, so the server deletes nothing
(RFC 1939 §6). What was committed stays, the locks are released as the run unwinds, and
the entry point reports the result marked interrupted, exiting `exit_code()`:
130 after SIGINT, 143 after SIGTERM (128 + the signal number, as a shell reports a process
killed by it).

A second signal of the same kind while the run winds down is not caught: the process
ends at once, as it would without this handler (nothing is lost: see above).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["STOP_SIGNALS", "Stop", "stopping_on_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stop(threading.Event):
    """A run's stop token: set once, by a signal (`signum`) or by a caller."""

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None
        # Called before a second signal ends the process at once: no atexit handler runs then.
        self.at_once: list[Callable[[], None]] = []

    def by_signal(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self.set()

    @property
    def signal_name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum is not None else None

    def exit_code(self) -> int:
        """128 + the signal's number: 130 (SIGINT), 143 (SIGTERM); 130 if set by a caller."""
        return 128 + (self.signum if self.signum is not None else signal.SIGINT)


@contextmanager
def stopping_on_signals(stop: Stop) -> Iterator[bool]:
    """While inside, SIGTERM and SIGINT set `stop` instead of ending the process.

    Python runs signal handlers in the main thread only, and only there can they be
    installed: elsewhere this does nothing and yields False. The handlers found are put
    back on exit (Prefect's engine installs its own for SIGTERM around a flow run).
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and stop.signum == signum:
            # The second one: leave at once, as the default action would.
            for hook in stop.at_once:
                hook()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        stop.by_signal(signum)

    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)
    try:
        yield True
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
