"""pytest fixtures for a real Dovecot: one server per session, a fresh user per test."""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from typing import Protocol

import pytest

from tests.support.dovecot import Dovecot, running_dovecot

_users = itertools.count(1)


class NewUser(Protocol):
    def __call__(self, messages: Iterable[bytes] = ()) -> tuple[str, str]: ...


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """A running Dovecot shared by the session; tests keep apart by using their own users."""
    for binary, why in (
        ("dovecot", "install dovecot-pop3d (.ci/run does)"),
        ("openssl", "it makes Dovecot's test certificate"),
    ):
        if shutil.which(binary) is None:
            reason = f"{binary} binary not found; {why}"
            # CI sets this, so a missing install fails loudly instead of skipping quietly.
            if os.environ.get("MAILARCHIVE_REQUIRE_DOVECOT"):
                pytest.fail(reason)
            pytest.skip(reason)
    with running_dovecot(tmp_path_factory.mktemp("dovecot")) as server:
        yield server


@pytest.fixture
def dovecot_user(dovecot: Dovecot) -> NewUser:
    """Adds a new user with a random password and `messages` delivered in order;
    returns (user, password)."""

    def new_user(messages: Iterable[bytes] = ()) -> tuple[str, str]:
        # Letters and digits only: tests derive environment variable names from it.
        user = f"user{next(_users)}x{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(12)
        dovecot.add_user(user, password, messages)
        return user, password

    return new_user
