"""Where `mailarchive`'s Prefect commands find Prefect: defaults set before it is imported,
and a fast check that the server PREFECT_API_URL names answers (exit 3 if not)."""

from __future__ import annotations

import os

from archive.app.console import fail


def prefect_defaults() -> None:
    """Set before Prefect is imported: library logs in the UI, a patient temporary server."""
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "archive")
    # Without PREFECT_API_URL Prefect starts a temporary server; cold, that takes >20 s here.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    # The archive works offline; do not try to phone home from the temporary server.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


PREFECT_UNREACHABLE = 3


def prefect_api_url() -> str | None:
    """The API URL Prefect will use (environment or active profile); None: a temporary server."""
    prefect_defaults()
    from flows.archive_flow import prefect_api_url

    return prefect_api_url()


def require_prefect_api(api_url: str | None, *, needed: bool) -> None:
    """Fail fast, exit 3, when the Prefect server we are pointed at does not answer."""
    from archive.app.prefect_server import api_unreachable

    if api_url is None:
        if needed:
            fail(
                "no Prefect server: start one with `mailarchive server` and "
                "export PREFECT_API_URL=http://127.0.0.1:4200/api",
                PREFECT_UNREACHABLE,
            )
        return
    problem = api_unreachable(api_url)
    if problem is not None:
        fail(
            f"the Prefect server at PREFECT_API_URL={api_url} is not reachable ({problem}); "
            "start it (`mailarchive server`) or unset PREFECT_API_URL to run without one",
            PREFECT_UNREACHABLE,
        )
