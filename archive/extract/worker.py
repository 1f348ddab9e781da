"""The loop one extraction process runs: receive a task, answer an `Extraction`.

Run as `python -m archive.extract FD LIMITS` (archive/extract/__main__.py) by
archive.extract.pool: FD is its end of a socket pair, LIMITS the `ExtractLimits` as JSON.
The format libraries are imported before it says "ready", so the time limit measures
reading, not importing (and nothing else imports this module, so they load only here).
"""

from __future__ import annotations

import json
from multiprocessing.connection import Connection

import docx  # noqa: F401
import odf.opendocument  # noqa: F401
import openpyxl  # noqa: F401
import pptx  # noqa: F401
import pypdfium2  # noqa: F401
import striprtf.striprtf  # noqa: F401

from archive.extract.document import extract_document
from archive.extract.limits import apply_cpu_limit, apply_memory_limit, ignore_interrupts
from archive.extract.model import OUT_OF_MEMORY, ExtractLimits


def serve(conn: Connection, limits: ExtractLimits) -> None:
    ignore_interrupts()
    apply_memory_limit(limits.memory_bytes)
    conn.send("ready")
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        except MemoryError:
            # The task did not fit; the pipe is mid-message, so answer and stop.
            conn.send(OUT_OF_MEMORY)
            return
        if task is None:
            return
        data, content_type, filename = task
        apply_cpu_limit(limits.seconds)
        try:
            result = extract_document(data, content_type, filename, limits)
        except MemoryError:
            result = OUT_OF_MEMORY
        del data, task
        try:
            conn.send(result)
        except OSError:
            return  # the parent is gone (killed, or it gave up on this task)


def main(argv: list[str]) -> None:
    serve(Connection(int(argv[1])), ExtractLimits(**json.loads(argv[2])))
