from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from archive.index.database import make_engine
from archive.index.ledger import IndexWriter
from archive.index.runs import RunLog
from archive.pipeline.archiver import Archiver
from archive.store import LocalStore
from tests.support.postgres import DatabaseFactory, admin_url

pytest_plugins = ["tests.support.fixtures_dovecot", "tests.support.corpus"]

# Unit tests must never start a Prefect server by accident (see shared/reference/prefect.md).
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_ENABLED", "false")
# flows/ sends the `archive` logger to the API; tests also log from it outside any flow run.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a test runs may touch the user's real archive."""
    monkeypatch.setenv("MAILARCHIVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MAILARCHIVE_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILARCHIVE_STORE_URL", raising=False)


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    with admin_url(tmp_path_factory.mktemp("pg")) as url:
        factory = DatabaseFactory(url)
        yield factory
        factory.close()


@pytest.fixture
def fresh_db_url(databases: DatabaseFactory) -> Iterator[str]:
    """The URL of a new, migrated, empty archive database."""
    url = databases.create()
    yield url
    databases.drop(url)


@pytest.fixture
def fresh_engine(fresh_db_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_db_url, pool_size=4)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def loaded_archive(databases: DatabaseFactory) -> Iterator[Engine]:
    """An archive holding tests.support.archive_data.MAILS; tests must not change it."""
    from tests.support import archive_data

    url = databases.create()
    engine = make_engine(url, pool_size=2)
    archive_data.load(engine)
    yield engine
    engine.dispose()
    databases.drop(url)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "objects")


@pytest.fixture
def archiver(fresh_engine: Engine, local_store: LocalStore) -> Archiver:
    return Archiver(
        writer=IndexWriter(fresh_engine),
        store=local_store,
        default_timeout=10,
        runs=RunLog(fresh_engine),
    )
