"""The `export-archive` flow: `mailarchive export` for large exports, with its progress and
summary in the UI. Thin: settings, then `archive.pipeline.export`; nothing else."""

from __future__ import annotations

import time
from datetime import date
from typing import Any
from uuid import UUID

from prefect import flow
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)

from archive.config import load_settings
from archive.pipeline.export import ExportRequest, Format, export_from_settings

PROGRESS_INTERVAL_SECONDS = 1.0


class _Progress:
    """The progress artifact: messages done over messages matched, sent at most once a
    second (and at the end)."""

    def __init__(self) -> None:
        artifact_id = create_progress_artifact(
            progress=0.0, key="export-archive-progress", description="Messages exported"
        )
        assert isinstance(artifact_id, UUID)  # a sync call returns the id
        self.artifact_id = artifact_id
        self._sent_at = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self._sent_at >= PROGRESS_INTERVAL_SECONDS:
            update_progress_artifact(self.artifact_id, round(100.0 * done / max(total, 1), 1))
            self._sent_at = now


@flow(name="export-archive", log_prints=False)
def export_archive(
    query: str,
    out: str,
    format: Format = "mbox",
    mailbox: str | None = None,
    since: date | None = None,
    until: date | None = None,
    skip_damaged: bool = False,
    bagit: bool = False,
) -> dict[str, Any]:
    """Export what `query` finds to `out` (a folder or s3://bucket/prefix); the result's
    counts, the manifest's SHA-256 and the files written."""
    request = ExportRequest(query, out, format, mailbox, since, until, skip_damaged, bagit)
    result = export_from_settings(load_settings(), request, _Progress())
    create_markdown_artifact(
        markdown=f"**export-archive**: {result.summary()}", key="export-archive-summary"
    )
    return {
        "out": result.out,
        "query": result.query,
        "matched": result.matched,
        "exported": result.exported,
        "skipped": list(result.skipped),
        "bytes": result.bytes,
        "manifest_sha256": result.manifest_sha256,
        "files": list(result.files),
    }
