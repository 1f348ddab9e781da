"""Where `Settings` become objects: the database (resolved, migrated, connected), the store
and the `Archiver`, built once per process."""

from __future__ import annotations

import threading

from sqlalchemy import Engine

import migrations
from archive.config import Settings
from archive.extract import Extractor
from archive.index.database import database_url, make_engine
from archive.index.ledger import IndexWriter
from archive.index.runs import RunLog
from archive.pipeline.archiver import Archiver
from archive.pipeline.importer import Importer
from archive.store import open_store

_lock = threading.Lock()
_archivers: dict[Settings, Archiver] = {}


def archive_url(settings: Settings) -> str:
    """The libpq URL of the archive database, starting the embedded server when needed."""
    return database_url(settings.database_url, settings.data_dir)


def open_database(settings: Settings, *, pool_size: int = 10) -> tuple[str, Engine]:
    """Resolve, migrate and connect: what every entry point does first."""
    url = archive_url(settings)
    migrations.upgrade(url)
    return url, make_engine(url, pool_size=pool_size)


def get_archiver(settings: Settings) -> Archiver:
    """One Archiver (engine pool + store client) per settings, shared by worker threads."""
    with _lock:
        archiver = _archivers.get(settings)
        if archiver is None:
            _, engine = open_database(settings, pool_size=settings.max_parallel_mailboxes)
            archiver = make_archiver(settings, engine)
            _archivers[settings] = archiver
        return archiver


def make_extractor(settings: Settings) -> Extractor:
    """The attachment-text workers (started on first use)."""
    return Extractor(settings.extract_limits(), workers=settings.extract_workers)


def make_archiver(settings: Settings, engine: Engine) -> Archiver:
    """An Archiver over `engine` and the settings' store, with the settings' limits."""
    return Archiver(
        writer=IndexWriter(engine),
        store=open_store(settings.resolved_store_url, object_lock=settings.object_lock()),
        default_timeout=settings.timeout_seconds,
        max_message_bytes=settings.max_message_bytes,
        parse_max_bytes=settings.parse_max_bytes,
        host_slot_wait_seconds=settings.host_slot_wait_seconds,
        parse_limits=settings.parse_limits(),
        extractor=make_extractor(settings),
        runs=RunLog(engine),
    )


def reset() -> None:
    """Dispose of cached engines and extractors (tests, and the CLI before it exits)."""
    with _lock:
        for archiver in _archivers.values():
            archiver.writer.dispose()
            if archiver.extractor is not None:
                archiver.extractor.close()
        _archivers.clear()


def make_importer(settings: Settings, engine: Engine) -> Importer:
    """An Importer over `engine` and the settings' store; attachment text is left to
    `mailarchive reindex`, as for a run without extraction."""
    return Importer(
        writer=IndexWriter(engine),
        store=open_store(settings.resolved_store_url, object_lock=settings.object_lock()),
        parse_limits=settings.parse_limits(),
        parse_max_bytes=settings.parse_max_bytes,
    )
