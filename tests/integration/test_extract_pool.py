"""archive.extract.Extractor: worker processes with a hard time limit; a hostile document
fails alone and the next one is read by a fresh worker."""

from __future__ import annotations

import os

import pytest

from archive.extract import ExtractLimits, Extractor, Status
from tests.support import documents as d


@pytest.fixture
def extractor():
    # The time limit is the product setting under test, set low so the hostile PDF (whose
    # content stream inflates to 100 MB, seconds of work for PDFium) cannot finish.
    pool = Extractor(ExtractLimits(seconds=0.5), workers=1)
    yield pool
    pool.close()


def test_documents_are_read_in_a_worker(extractor: Extractor):
    result = extractor.extract(d.docx_file("pooled wombat"), "application/octet-stream", "a.docx")
    assert (result.status, "pooled wombat" in result.text) == (Status.OK, True)


def test_hostile_pdf_hits_the_time_limit_and_the_pool_goes_on(extractor: Extractor):
    first = extractor.extract(d.pdf("before"), "application/pdf", None)
    worker = extractor._idle.queue[-1]
    assert worker is not None
    hostile = extractor.extract(d.pdf_hostile(100 << 20), "application/pdf", "endless.pdf")
    assert hostile.status is Status.FAILED
    assert hostile.detail == "time limit of 0.5 s reached, extraction stopped"
    assert worker.process.poll() == -9  # killed, not left running
    after = extractor.extract(d.pdf("after zebracorn"), "application/pdf", None)
    assert (first.text, after.status, after.text) == ("before", Status.OK, "after zebracorn")


def test_a_worker_that_dies_is_replaced():
    pool = Extractor(ExtractLimits(), workers=1)
    try:
        pool.extract(b"warm", "text/plain", None)
        worker = pool._idle.queue[-1]
        assert worker is not None
        worker.process.kill()
        worker.process.wait()
        died = pool.extract(b"lost", "text/plain", None)
        assert died.status is Status.FAILED
        assert died.detail == "extracting process killed by signal 9 (memory or CPU limit?)"
        assert pool.extract(b"fresh words", "text/plain", None).text == "fresh words"
    finally:
        pool.close()


def test_memory_limit_turns_a_huge_allocation_into_failed():
    pool = Extractor(ExtractLimits(memory_bytes=256 << 20), workers=1)
    try:
        # 64 MB of text: received, decoded and stripped, well past 256 MiB of address space.
        result = pool.extract(b"a " * (32 << 20), "text/plain", None)
        assert result.status is Status.FAILED
        assert "memory" in (result.detail or "")
        assert pool.extract(b"still here", "text/plain", None).text == "still here"
    finally:
        pool.close()


def test_a_worker_is_out_of_reach_of_the_terminals_ctrl_c():
    # Ctrl-C signals the terminal's foreground process group, this process's.
    pool = Extractor(ExtractLimits(), workers=1)
    try:
        pool.extract(b"warm", "text/plain", None)
        worker = pool._idle.queue[-1]
        assert worker is not None
        assert os.getpgid(worker.process.pid) != os.getpgid(0)
    finally:
        pool.close()
