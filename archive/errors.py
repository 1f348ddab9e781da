"""One exception tree for the whole core.

    ArchiveError
    ├── TransientError          worth retrying later: the same call may succeed
    │   ├── Pop3ConnectionError   network failure, timeout, connection dropped
    │   ├── Pop3TemporaryError    -ERR [IN-USE], [LOGIN-DELAY], [SYS/TEMP] (RFC 2449, RFC 3206)
    │   └── StoreError            object store unreachable or a write failed
    ├── MessageError            one message could not be archived; transient or not, as its cause
    └── PermanentError          retrying will not help; a person must act
        ├── ConfigError           bad mailbox file or settings, missing secret
        ├── Pop3AuthError         credentials refused ([AUTH] or plain -ERR at login)
        ├── Pop3TLSError          certificate not verified, STLS not offered
        ├── Pop3ProtocolError     the server broke the protocol (garbage, oversized line)
        ├── Pop3ServerError       any other -ERR, including [SYS/PERM]
        └── IntegrityError        bytes read back from the store do not match their hash

Prefect's ``retry_condition_fn`` (in flows/) retries exactly the ``TransientError`` branch.
Every message names the mailbox, UIDL or hash involved and never contains a secret.
"""

from __future__ import annotations


class ArchiveError(Exception):
    """Base class of every error the core raises on purpose."""

    transient: bool = False


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


class IntegrityError(PermanentError):
    pass


class MessageError(ArchiveError):
    """Wraps the failure of one message so the error names mailbox and UIDL."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def is_transient(exc: BaseException) -> bool:
    """True for errors a later attempt may clear; OSError counts as network trouble."""
    if isinstance(exc, ArchiveError):
        return exc.transient
    return isinstance(exc, (TimeoutError, ConnectionError))
