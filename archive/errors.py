"""One exception tree for the whole project: every error mailarchive raises on purpose.

    ArchiveError                  .transient: may the same call succeed later?
    ├── TransientError            worth retrying later
    │   ├── Pop3ConnectionError     network failure, timeout, connection dropped
    │   ├── Pop3TemporaryError      -ERR [IN-USE], [LOGIN-DELAY], [SYS/TEMP] (RFC 2449, RFC 3206)
    │   ├── StoreError              object store unreachable or a write failed
    │   ├── DatabaseUnavailable     connection lost or refused, admin shutdown (57P01),
    │                               cannot connect now (57P03), serialization failure
    │                               (40001), deadlock (40P01)
    │   └── ExtractorUnavailable    no attachment-text worker process could be started
    ├── PermanentError            retrying will not help; a person must act
    │   ├── ConfigError             bad mailbox file or settings, missing secret, a POP3
    │                               host name that does not exist, an embedded PostgreSQL
    │                               that pg_ctl cannot start or stop (its reason)
    │   ├── Pop3AuthError           credentials refused ([AUTH] or plain -ERR at login)
    │   ├── Pop3TLSError            certificate not verified, STLS not offered
    │   ├── Pop3ProtocolError       the server broke the protocol (garbage, oversized line)
    │   ├── Pop3ServerError         any other -ERR, including [SYS/PERM]
    │   ├── IntegrityError          bytes read back from the store do not match their hash
    │   ├── ObjectNotFound          no object under a key (also a KeyError)
    │   ├── QueryError              a malformed search query (archive.index.search)
    │   └── TransferError           an export or import that cannot go on (a damaged
    │                               original, an output that exists, an unreadable source)
    ├── MessageError              one message could not be archived; transient as its cause
    ├── MailboxFailed             one mailbox run stopped early; transient as its cause
    │                             (archive.pipeline; carries the partial counts)
    └── RunFailed                 a run ended with failures; its results say which
        ├── MailboxesFailed         some mailboxes of an `archive-mailboxes` run failed
        └── DispatchFailed          some mailbox runs handed to workers did not complete

Whether to retry is one attribute, `transient`: the two branches fix it per class, and the
errors that wrap another (`MessageError`, `MailboxFailed`) take it from their cause.
`is_transient` reads it, and it alone decides: the Prefect `retry_condition_fn` in flows/
retries exactly what it calls transient.

Database errors are mapped where the index is touched (`archive.index.database`): the
transient ones above become `DatabaseUnavailable`; any other SQL error stays SQLAlchemy's
own exception, which `is_transient` calls permanent, like every exception outside this tree,
with its text cut to the first line of its cause (no statement, no parameters).

Every message names the mailbox, UIDL or hash involved and never contains a secret.
"""

from __future__ import annotations

from typing import Any


class ArchiveError(Exception):
    """Base class of every error the project raises on purpose."""

    transient: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross processes (Prefect results, process pools). Pickle's default calls
        # __init__ with `args`, which fails for subclasses whose __init__ takes other values.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[ArchiveError], args: tuple[Any, ...], state: dict[str, Any]) -> ArchiveError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class TransientError(ArchiveError):
    transient = True


class PermanentError(ArchiveError):
    transient = False


class ConfigError(PermanentError):
    pass


class Pop3ConnectionError(TransientError):
    pass


class Pop3TemporaryError(TransientError):
    pass


class Pop3AuthError(PermanentError):
    pass


class Pop3TLSError(PermanentError):
    pass


class Pop3ProtocolError(PermanentError):
    pass


class Pop3ServerError(PermanentError):
    pass


class StoreError(TransientError):
    pass


class DatabaseUnavailable(TransientError):
    """The database could not be reached or gave up on a statement that may succeed later."""


class ExtractorUnavailable(TransientError):
    """No attachment-text worker process could be started (archive.extract.pool)."""


class IntegrityError(PermanentError):
    pass


class ObjectNotFound(PermanentError, KeyError):
    """No object under this key. Not transient: retrying will not make it appear.

    Also a KeyError, so that `except KeyError` works for every store.
    """

    def __init__(self, key: str, where: str = "") -> None:
        super().__init__(key)
        self.key = key
        self.where = where

    def __str__(self) -> str:
        # KeyError.__str__ would print repr(key) only; say what is missing and where.
        place = f" in {self.where}" if self.where else ""
        return f"no object {self.key}{place}"


class QueryError(PermanentError):
    """The search query is malformed; the message says how, in words for the user."""


class TransferError(PermanentError):
    """An export or import stopped: names the message (SHA-256), file or output involved."""


class MessageError(ArchiveError):
    """Wraps the failure of one message so the error names mailbox and UIDL."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class RunFailed(ArchiveError):
    """A run finished, but not everything in it succeeded; retries were already spent."""


class MailboxesFailed(RunFailed):
    """Raised at the end of a flow run in which some mailbox failed; carries all results.
    Its message, the run's state message in the Prefect UI, gives each one's error (which
    names the mailbox), first line only."""

    def __init__(self, results: list[dict[str, Any]]) -> None:
        failed = [r for r in results if r["error"]]
        reasons = "; ".join(
            (str(r["error"]).strip().splitlines() or [str(r["name"])])[0] for r in failed
        )
        super().__init__(f"{len(failed)} of {len(results)} mailbox(es) failed: {reasons}")
        self.results = results


class DispatchFailed(RunFailed):
    """Some mailbox runs handed to workers did not complete."""


def is_transient(exc: BaseException) -> bool:
    """True for errors a later attempt may clear; TimeoutError and ConnectionError count as
    network trouble. Anything else outside the tree is permanent."""
    if isinstance(exc, ArchiveError):
        return exc.transient
    return isinstance(exc, (TimeoutError, ConnectionError))
