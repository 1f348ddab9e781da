"""README's lists of `--json` keys are the keys the commands print."""

from __future__ import annotations

import re
from pathlib import Path

from archive.index.search import SearchHit
from archive.pipeline.result import MailboxResult

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _listed_keys(opening: str) -> list[str]:
    """The quoted keys of the first `{…}` after `opening` in README, in order."""
    start = README.index(opening) + len(opening)
    return re.findall(r'"(\w+)"', README[start : README.index("}", start)])


def test_readme_lists_every_key_of_a_mailbox_in_run_json():
    assert _listed_keys('`{"mailboxes": [{') == list(MailboxResult(name="x").to_dict())


def test_readme_lists_every_key_of_a_search_hit_in_search_json():
    hit = SearchHit(1, "sales", "u1", None, None, None, 0.0, None, None, "ab" * 32)
    assert _listed_keys('"results": [{') == list(hit.as_json())
    assert hit.as_json()["sha256"] == "ab" * 32
