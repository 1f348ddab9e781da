"""One exception tree: what the project raises is in it, the drawing says so, and whether an
error is worth a retry is decided in one place."""

from __future__ import annotations

import ast
import inspect
import pickle
from pathlib import Path

import psycopg
import pytest

import archive.errors as errors
from archive.errors import (
    ArchiveError,
    DatabaseUnavailable,
    MessageError,
    ObjectNotFound,
    QueryError,
    StoreError,
    is_transient,
)
from archive.index.database import transient_reason

ROOT = Path(__file__).resolve().parents[2]

# Control flow inside one module (or the fake server), caught there; never seen by a caller.
INTERNAL = {
    "archive/pop3/fake/auth.py": {"SaslCancelled"},
    "archive/pop3/fake/faults.py": {"FaultDisconnect"},
    "archive/pop3/fake/lines.py": {"LineTooLong", "SessionDisconnect"},
    "archive/mime/feedtree.py": {"_PartLimitReached"},
    "archive/mime/split.py": {"Unsupported", "PartLimitReached"},  # caught in mime/tree.py
    "archive/extract/formats.py": {"_Encrypted", "_Cut", "_Binary"},
}


def _tree() -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    ]


def test_every_class_of_the_tree_is_an_archive_error_and_drawn_in_the_docstring():
    tree = _tree()
    assert {cls.__name__ for cls in tree} == {
        "ArchiveError",
        "TransientError",
        "Pop3ConnectionError",
        "Pop3TemporaryError",
        "StoreError",
        "DatabaseUnavailable",
        "ExtractorUnavailable",
        "PermanentError",
        "ConfigError",
        "Pop3AuthError",
        "Pop3TLSError",
        "Pop3ProtocolError",
        "Pop3ServerError",
        "IntegrityError",
        "ObjectNotFound",
        "QueryError",
        "TransferError",
        "MessageError",
        "RunFailed",
        "MailboxesFailed",
        "DispatchFailed",
    }
    assert all(issubclass(cls, ArchiveError) for cls in tree)
    drawing = errors.__doc__ or ""
    assert [cls.__name__ for cls in tree if cls.__name__ not in drawing] == []


def test_no_exception_class_outside_the_tree():
    """A new exception class anywhere in archive/ or flows/ must subclass the tree."""
    offenders = []
    for folder in ("archive", "flows"):
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if relative == "archive/errors.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), relative)):
                if not isinstance(node, ast.ClassDef):
                    continue
                bases = {ast.unparse(base).split(".")[-1] for base in node.bases}
                if bases & {"Exception", "BaseException", "KeyError", "ValueError", "RuntimeError"}:
                    if node.name not in INTERNAL.get(relative, set()):
                        offenders.append(f"{relative}: {node.name}")
    assert offenders == []


def test_old_import_paths_name_the_same_classes():
    from archive.index.search import QueryError as search_query_error
    from archive.store import ObjectNotFound as store_object_not_found

    assert search_query_error is QueryError
    assert store_object_not_found is ObjectNotFound


def test_transient_is_one_attribute_read_by_is_transient():
    assert is_transient(StoreError("s3 down")) and is_transient(DatabaseUnavailable("gone"))
    assert not is_transient(QueryError("bad query"))
    assert is_transient(MessageError("m", transient=True))
    assert not is_transient(MessageError("m", transient=False))
    assert is_transient(TimeoutError()) and is_transient(ConnectionResetError())
    assert not is_transient(ValueError("a bug"))


def test_errors_survive_pickling_as_they_cross_processes():
    from archive.errors import MailboxesFailed
    from archive.pipeline.archiver import MailboxFailed, MailboxResult

    samples = [
        MessageError("mailbox 'a': UIDL 1: store down", transient=True),
        MailboxesFailed([{"name": "a", "error": "down"}, {"name": "b", "error": None}]),
        MailboxFailed(MailboxResult(name="a", error="mailbox 'a': down", transient=True)),
        ObjectNotFound("raw/ab/cd/abcd", "memory://"),
        DatabaseUnavailable("database unavailable (SQLSTATE 57P01, admin shutdown)"),
    ]
    for error in samples:
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), str(copy), copy.transient) == (
            type(error),
            str(error),
            error.transient,
        )
    assert pickle.loads(pickle.dumps(samples[1])).results == samples[1].results


def test_object_not_found_is_permanent_and_still_a_key_error():
    missing = ObjectNotFound("raw/ab/cd/abcd", "file:///archive")
    assert isinstance(missing, KeyError) and not is_transient(missing)
    assert str(missing) == "no object raw/ab/cd/abcd in file:///archive"
    with pytest.raises(KeyError):
        raise missing


@pytest.mark.parametrize(
    ("error", "disconnect", "reason"),
    [
        (psycopg.errors.SerializationFailure("x"), False, "SQLSTATE 40001, serialization failure"),
        (psycopg.errors.DeadlockDetected("x"), False, "SQLSTATE 40P01, deadlock detected"),
        (psycopg.errors.AdminShutdown("x"), False, "SQLSTATE 57P01, admin shutdown"),
        (psycopg.errors.CannotConnectNow("x"), False, "SQLSTATE 57P03, cannot connect now"),
        (psycopg.errors.ConnectionFailure("x"), False, "SQLSTATE 08006, connection exception"),
        (psycopg.OperationalError("consuming input failed"), True, "connection lost"),
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "db", port 5432 failed: '
                "Connection refused"
            ),
            False,
            "cannot connect",
        ),
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "db", port 5432 failed: '
                "FATAL:  the database system is starting up"
            ),
            False,
            "cannot connect",
        ),
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "db", port 5432 failed: '
                'FATAL:  password authentication failed for user "archive"'
            ),
            False,
            None,
        ),
        (psycopg.errors.DivisionByZero("x"), False, None),
        (psycopg.errors.UniqueViolation("x"), False, None),
        (psycopg.errors.InvalidParameterValue("x"), False, None),
    ],
)
def test_transient_reason(error: Exception, disconnect: bool, reason: str | None):
    assert transient_reason(error, disconnect) == reason


def test_mailboxes_failed_gives_each_failed_mailbox_its_error():
    from archive.errors import MailboxesFailed

    results = [
        {"name": "alice", "error": None},
        {"name": "carol", "error": "mailbox 'carol' (h:110): login failed\nsecond line"},
    ]
    assert str(MailboxesFailed(results)) == (
        "1 of 2 mailbox(es) failed: mailbox 'carol' (h:110): login failed"
    )
