"""Prefect's temporary server runs in a process group of its own: Ctrl-C on a terminal (SIGINT
to the foreground group) stops `mailarchive run`, which then reports to the server, and no
longer kills the server under it (the run used to hang for minutes, retrying)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from flows.temporary_server import end_temporary_servers, temporary_server_apart

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_the_server_module_starts_processes_in_a_group_of_their_own():
    from prefect.server.api import server

    temporary_server_apart()
    child = server.subprocess.Popen(SLEEP)
    try:
        assert os.getpgid(child.pid) == child.pid != os.getpgid(0)
        # What Prefect's stop() needs from the module is still there.
        assert server.subprocess.TimeoutExpired is subprocess.TimeoutExpired
    finally:
        end_temporary_servers()
    assert child.wait(10) != 0  # killed, not left running once this process ends
    # Everything else keeps the real module.
    assert subprocess.Popen is not server.subprocess.Popen


CHILD = """
import sys, time
from prefect.server.api import server
from flows.temporary_server import temporary_server_apart
temporary_server_apart()
child = server.subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # ended, not yet reaped
    except FileNotFoundError:
        return True


def test_a_hangup_ends_the_server_with_the_run():
    # The terminal closed: SIGHUP reaches the run's group, no longer the server's.
    run = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    server_pid = int(run.stdout.readline())
    try:
        run.send_signal(signal.SIGHUP)
        assert run.wait(30) == -signal.SIGHUP
        deadline = time.monotonic() + 30
        while not _gone(server_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(server_pid)
    finally:
        run.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(server_pid, signal.SIGKILL)
