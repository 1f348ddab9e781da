"""Prefect's temporary server runs in a process group of its own: Ctrl-C on a terminal (SIGINT
to the foreground group) stops `mailarchive run`, which then reports to the server, and no
longer kills the server under it (the run used to hang for minutes, retrying)."""

from __future__ import annotations

import os
import subprocess
import sys

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
