"""The `export-archive` flow on a real Prefect server: the export, its progress and summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from archive.index.ledger import IndexWriter
from archive.pipeline.importer import Importer
from archive.store import LocalStore
from tests.flows.test_flow import archive_env, prefect_server  # noqa: F401
from tests.flows.test_flow_outcomes import _artifacts
from tests.integration.test_transfer import MAILS, write_mbox
from tests.support.memory import sha

pytestmark = pytest.mark.prefect


def test_export_flow_writes_the_export_and_reports_progress(
    archive_env: Path,  # noqa: F811
    fresh_engine: Engine,
):
    from flows.export_flow import export_archive

    store = LocalStore(archive_env / "objects")
    Importer(IndexWriter(fresh_engine), store).run(
        "mbox", write_mbox(archive_env / "in.mbox", MAILS), "old"
    )
    out = archive_env / "case"
    state = export_archive(query="transfer", out=str(out), format="maildir", return_state=True)
    assert state.is_completed()
    result = state.result()
    assert result["exported"] == 5 and "manifest.csv" in result["files"]
    files = sorted((out / "maildir" / "new").iterdir())
    assert [f.read_bytes() for f in files] == list(reversed(MAILS))
    assert [f.name.split(".")[1] for f in files] == [sha(r) for r in reversed(MAILS)]
    artifacts = _artifacts(state.state_details.flow_run_id)
    assert artifacts["progress"] == 100.0
    assert re.search(r"exported 5 of 5 messages", str(artifacts["markdown"]))
