"""Prefect's temporary server, kept out of reach of the terminal's Ctrl-C.

Without PREFECT_API_URL, Prefect starts a temporary API server as a child process
(`prefect.server.api.server.SubprocessASGIServer`) in the process group of `mailarchive run`.
Ctrl-C on a terminal sends SIGINT to that whole group: the server died at once, while the run,
which takes SIGINT as "stop after the message in hand", still had its states, artifacts and
logs to report; Prefect's client retried them against the dead server for minutes, printing
tracebacks, before the result and exit code 130 came out. Started in a process group of its
own, the server outlives the stop until the run has reported; Prefect stops it at exit
(atexit), and `end_temporary_servers` ends it when the process ends at once instead (a second
signal, or a hangup: the terminal closed, whose SIGHUP no longer reaches the server's group;
neither runs atexit handlers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from types import FrameType
from typing import Any

__all__ = ["end_temporary_servers", "temporary_server_apart"]

_started: list[subprocess.Popen[Any]] = []


class _SubprocessApart:
    """The `subprocess` module as Prefect's server module sees it: its Popen starts the
    process in a process group of its own (SIGINT from the terminal does not reach it)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        kwargs.setdefault("process_group", 0)
        process: subprocess.Popen[Any] = subprocess.Popen(*args, **kwargs)
        _started.append(process)
        return process


def temporary_server_apart() -> None:
    """From now on, the temporary server Prefect starts runs in a process group of its own,
    and a hangup of this process (where SIGHUP has its default action) ends it first."""
    from prefect.server.api import server

    # Only the name in that module: every other caller of subprocess keeps the real one.
    vars(server)["subprocess"] = _SubprocessApart()
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL  # not under nohup
    ):
        signal.signal(signal.SIGHUP, _hung_up)


def _hung_up(signum: int, frame: FrameType | None) -> None:
    end_temporary_servers()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # then end as the default action would


def end_temporary_servers() -> None:
    """Kill the temporary servers still running: the process is about to end at once."""
    for process in _started:
        if process.poll() is None:
            process.kill()
