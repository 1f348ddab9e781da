"""The stop token and its signal handlers (main thread only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from archive.pipeline.stop import Stop, stopping_on_signals


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_sets_the_token_and_names_the_exit_code(signum, code):
    before = signal.getsignal(signum)
    stop = Stop()
    with stopping_on_signals(stop) as installed:
        os.kill(os.getpid(), signum)
        assert installed and stop.wait(5)  # the handler ran; the process goes on
    assert (stop.signum, stop.exit_code()) == (signum, code)
    assert signal.getsignal(signum) is before  # the earlier handler is back


def test_outside_the_main_thread_nothing_is_installed():
    seen: list[bool] = []
    before = signal.getsignal(signal.SIGTERM)

    def body() -> None:
        with stopping_on_signals(Stop()) as installed:
            seen.append(installed)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [False] and signal.getsignal(signal.SIGTERM) is before


SECOND_SIGNAL = """
import os, signal, sys
from archive.pipeline.stop import Stop, stopping_on_signals
stop = Stop()
stop.at_once.append(lambda: open(sys.argv[1], "w").write("ran"))
with stopping_on_signals(stop):
    os.kill(os.getpid(), signal.SIGINT)
    stop.wait(5)
    os.kill(os.getpid(), signal.SIGINT)
    signal.pause()
"""


def test_a_second_signal_runs_the_at_once_hooks_then_ends_the_process(tmp_path):
    # No atexit handler runs when the second signal ends the process: what must not be left
    # behind (the temporary Prefect server in its own process group) is ended by a hook.
    marker = tmp_path / "hook"
    done = subprocess.run(
        [sys.executable, "-c", SECOND_SIGNAL, str(marker)], timeout=30, capture_output=True
    )
    assert done.returncode == -signal.SIGINT, done.stderr
    assert marker.read_text() == "ran"
