"""The loop one extraction process runs: receive a task, answer an `Extraction`."""

from __future__ import annotations

from multiprocessing.connection import Connection

from archive.extract.document import extract_document
from archive.extract.limits import apply_cpu_limit, apply_memory_limit, ignore_interrupts
from archive.extract.model import Extraction, ExtractLimits, Status


def serve(conn: Connection, limits: ExtractLimits) -> None:
    ignore_interrupts()
    apply_memory_limit(limits.memory_bytes)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        data, content_type, filename = task
        apply_cpu_limit(limits.seconds)
        try:
            result = extract_document(data, content_type, filename, limits)
        except MemoryError:
            result = Extraction(Status.FAILED, detail="memory limit reached")
        del data, task
        conn.send(result)
