"""The public mail corpus (shared/corpus, see shared/SOURCES.md): the one place that finds it.

A user's clone has no shared/ beside it, so there the corpus tests skip and say why. CI sets
MAILARCHIVE_REQUIRE_CORPUS=1: a missing corpus then fails them, as MAILARCHIVE_REQUIRE_DOVECOT
does for Dovecot (tests/support/fixtures_dovecot.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS_ENV = "MAILARCHIVE_CORPUS"
REQUIRE_ENV = "MAILARCHIVE_REQUIRE_CORPUS"
BESIDE = Path(__file__).resolve().parents[3] / "shared" / "corpus"
"""shared/corpus next to the checkout, where CI copies shared/."""


def corpus_dir() -> Path:
    """$MAILARCHIVE_CORPUS when set, else shared/corpus beside the checkout (may not exist)."""
    configured = os.environ.get(CORPUS_ENV)
    return Path(configured) if configured else BESIDE


CORPUS = corpus_dir()
CORPUS_FILES = sorted(CORPUS.rglob("*.eml")) if CORPUS.is_dir() else []


def corpus_params() -> list[object]:
    """Parameters for a test run once per corpus message; without a corpus, one placeholder
    (None) so the test still runs and its `corpus` fixture skips or fails it with the reason."""
    if not CORPUS_FILES:
        return [pytest.param(None, id="no-corpus")]
    return [pytest.param(path, id=str(path.relative_to(CORPUS))) for path in CORPUS_FILES]


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The corpus directory; skips the test without one, or fails it when CI requires one."""
    if not CORPUS_FILES:
        reason = (
            f"mail corpus not found: no .eml files under {CORPUS} "
            f"(put shared/ beside the checkout or set {CORPUS_ENV})"
        )
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{reason}; {REQUIRE_ENV} is set, so corpus tests must run")
        pytest.skip(reason)
    return CORPUS
