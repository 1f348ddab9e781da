"""Reading a mailbox's password or OAuth token at login time; no error text ever holds it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable

from archive.config.mailboxes import MailboxConfig
from archive.errors import ConfigError

SecretLookup = Callable[[str], str]
"""Resolves a `password_secret` name to its value (Prefect Secret blocks, provided by flows/)."""

PASSWORD_COMMAND_TIMEOUT = 60.0


def resolve_password(box: MailboxConfig, secret_lookup: SecretLookup | None = None) -> str:
    """Read the mailbox password (or OAuth token) at login time; errors never include it."""
    value: str | None
    if box.password_command is not None:
        value = _run_password_command(box, box.password_command)
    elif box.password_env is not None:
        from_env = os.environ.get(box.password_env)
        if from_env is None:
            raise ConfigError(
                f"mailbox {box.name!r}: environment variable {box.password_env} is not set"
            )
        value = from_env
    else:
        assert box.password_secret is not None
        if secret_lookup is None:
            raise ConfigError(
                f"mailbox {box.name!r}: password_secret {box.password_secret!r} needs a "
                "Prefect Secret block, which only the Prefect flow can read"
            )
        try:
            value = secret_lookup(box.password_secret)
        except Exception as exc:
            raise ConfigError(
                f"mailbox {box.name!r}: cannot read secret {box.password_secret!r} "
                f"({type(exc).__name__})"
            ) from None
    if "\r" in value or "\n" in value:
        raise ConfigError(f"mailbox {box.name!r}: password contains CR or LF; refusing to send it")
    return value


def _run_password_command(box: MailboxConfig, command: tuple[str, ...]) -> str:
    """Run the configured command without a shell; its stdout (one line) is the secret.

    Neither its output nor its stderr goes into an error message: a token helper may print
    the token on failure too.
    """
    # The command as written in the mailbox file, so the user finds it; never its output.
    program = json.dumps(list(command), ensure_ascii=False)
    try:
        done = subprocess.run(
            list(command),
            capture_output=True,
            timeout=PASSWORD_COMMAND_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise ConfigError(
            f"mailbox {box.name!r}: password_command {program}: program {command[0]!r} not found"
        ) from None
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"mailbox {box.name!r}: password_command {program} did not finish in "
            f"{PASSWORD_COMMAND_TIMEOUT:g}s"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"mailbox {box.name!r}: password_command {program} failed to start: {exc.strerror}"
        ) from None
    if done.returncode != 0:
        raise ConfigError(
            f"mailbox {box.name!r}: password_command {program} exited with {done.returncode}"
        )
    value = done.stdout.decode("utf-8", "replace").removesuffix("\n").removesuffix("\r")
    if not value:
        raise ConfigError(f"mailbox {box.name!r}: password_command {program} printed nothing")
    return value
