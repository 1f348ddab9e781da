"""Extraction in worker processes with a hard time and memory limit per document.

A hostile document (a PDF whose content streams inflate forever, a zip bomb, a file that
sends a C library into a loop) must not hang or exhaust an archive run. So each attachment
is read in a worker process: the memory limit is RLIMIT_AS inside it
(archive.extract.limits), the time limit is the parent's wait for the answer. A worker
that overruns is killed and replaced, and the attachment gets status `failed` with the
reason; the run goes on.

`concurrent.futures.ProcessPoolExecutor` cannot kill one task's process, and a dead
worker breaks the whole pool, so this is a small pool of its own: each worker is one
process and one socket pair, checked out by one thread at a time. A worker is a fresh
interpreter (`python -m archive.extract`), never a fork: the archiver runs threads
and holds sockets, and multiprocessing's spawn and forkserver would import the parent's
`__main__` (the CLI, a flow) in every worker. Workers start lazily and are recycled after
`max_tasks` to bound what a library may leak. Bytes that no reader takes (images,
executables, random data: `sniff.has_reader`) are answered here, without a worker.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection

from archive.errors import ExtractorUnavailable
from archive.extract.model import OUT_OF_MEMORY, Extraction, ExtractLimits, Status
from archive.extract.sniff import Kind, has_reader

# A new worker imports the format libraries before it answers "ready".
_START_SECONDS = 120.0


class _Worker:
    """One `python -m archive.extract` process, talking over a socket pair."""

    def __init__(self, limits: ExtractLimits) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "archive.extract",
                    str(theirs.fileno()),
                    json.dumps(dataclasses.asdict(limits)),
                ],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                # Out of the terminal's process group from the first instruction: a Ctrl-C
                # while it still imported (before ignore_interrupts) killed it with a
                # KeyboardInterrupt traceback and failed the mailbox's attempt. It ends when
                # the parent does: the socket pair closes.
                process_group=0,
            )
        except OSError as exc:
            ours.close()
            raise ExtractorUnavailable(f"extraction worker not started: {exc}") from exc
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.tasks = 0
        # Started (libraries imported, limits set) before the first task's clock runs.
        try:
            ready = self.conn.poll(_START_SECONDS) and self.conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop(kill=True)
            raise ExtractorUnavailable(f"extraction worker did not start in {_START_SECONDS} s")

    def run(self, task: tuple[bytes, str, str | None], seconds: float) -> Extraction | bool:
        """The answer; else whether the time ran out (False: the worker died). Either way
        the worker must be replaced."""
        self.tasks += 1
        try:
            self.conn.send(task)
            if not self.conn.poll(seconds):
                return True
            answer: Extraction = self.conn.recv()
            return answer
        except (EOFError, OSError):
            return False

    def stop(self, kill: bool = False) -> int | None:
        if not kill:
            try:
                self.conn.send(None)
            except OSError:
                kill = True
        if kill:
            self.process.kill()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.conn.close()
        return self.process.returncode


class Extractor:
    """Extracts attachment text in up to `workers` processes, started on first use.

    Thread-safe: each call checks out one worker. `close()` stops them (also at exit,
    as they are daemon processes).
    """

    def __init__(
        self, limits: ExtractLimits | None = None, workers: int = 2, max_tasks: int = 500
    ) -> None:
        self.limits = limits or ExtractLimits()
        self.max_tasks = max_tasks
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(workers):
            self._idle.put(None)  # a slot; the process starts when first needed
        self._closed = threading.Event()

    def readerless(self, data: bytes, content_type: str, filename: str | None) -> bool:
        """Whether `extract` answers these bytes `unsupported` without a worker: within the
        input limit, and no reader takes them (`sniff.has_reader`)."""
        return len(data) <= self.limits.max_input_bytes and not has_reader(
            data, content_type, filename
        )

    def extract(self, data: bytes, content_type: str, filename: str | None) -> Extraction:
        if self._closed.is_set():
            raise RuntimeError("Extractor is closed")
        if self.readerless(data, content_type, filename):
            # What the worker would answer (extract_document), without sending it the bytes.
            return Extraction(Status.UNSUPPORTED, detail=f"no text reader for {Kind.UNKNOWN.value}")
        worker = self._idle.get()
        try:
            if worker is None:
                worker = _Worker(self.limits)
            answer = worker.run((data, content_type, filename), self.limits.seconds)
            if not isinstance(answer, Extraction):
                code = worker.stop(kill=True)
                worker = None
                return Extraction(Status.FAILED, detail=_why(answer, code, self.limits))
            if answer == OUT_OF_MEMORY or worker.tasks >= self.max_tasks:
                worker.stop()
                worker = None
            return answer
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        self._closed.set()
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            if worker is not None:
                worker.stop()


def _why(timed_out: bool, exitcode: int | None, limits: ExtractLimits) -> str:
    if timed_out:
        return f"time limit of {limits.seconds:g} s reached, extraction stopped"
    if exitcode is None:
        return "extracting process did not answer"
    if exitcode < 0:
        return f"extracting process killed by signal {-exitcode} (memory or CPU limit?)"
    return f"extracting process exited with status {exitcode}"
