"""`mailarchive server`: a local Prefect server with its UI, on PostgreSQL.

Prefect keeps its own schema (an `alembic_version` table and generic names such as `log` and
`artifact`), so it gets a database of its own, `prefect`, next to the archive's: in the
embedded PostgreSQL by default, or on the server of `MAILARCHIVE_DATABASE_URL`. Nothing here
imports Prefect; the server runs as `python -m prefect server start`.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from archive.config import Settings
from archive.errors import ConfigError
from archive.index.database import ensure_database
from archive.pipeline import build

PREFECT_DATABASE = "prefect"

PREFECT_DATABASE_ENV = "PREFECT_SERVER_DATABASE_CONNECTION_URL"


@dataclass(frozen=True)
class ServerPlan:
    """What `mailarchive server` is about to run: the command and its environment."""

    argv: list[str]
    env: dict[str, str]
    ui_url: str
    api_url: str
    database: str
    """The Prefect database URL with its password hidden, for messages."""


def asyncpg_url(url: str) -> str:
    """The same database for Prefect's driver: `postgresql+asyncpg://`."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError("the Prefect database URL is not a valid database URL") from None
    if not parsed.drivername.startswith("postgres"):
        raise ConfigError(
            f"the Prefect database must be PostgreSQL, not {parsed.drivername!r} "
            "(Prefect on SQLite stalls under many task runs)"
        )
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def ensure_prefect_database(archive_url: str, name: str = PREFECT_DATABASE) -> str:
    """Create database `name` beside the archive's if missing; return its libpq URL."""
    if make_url(archive_url).database == name:
        raise ConfigError(
            f"the archive database is named {name!r}: Prefect needs a database of its own"
        )
    try:
        return ensure_database(archive_url, name)
    except ConfigError as exc:
        raise ConfigError(f"{exc} or pass --database-url") from None


def plan_server(
    settings: Settings, host: str, port: int, prefect_database_url: str | None
) -> ServerPlan:
    """Resolve the Prefect database (creating it when it is ours to create) and the command."""
    explicit = prefect_database_url or os.environ.get(PREFECT_DATABASE_ENV)
    if explicit:
        url = asyncpg_url(explicit)
    else:
        url = asyncpg_url(ensure_prefect_database(build.archive_url(settings)))
    env = dict(os.environ)
    env[PREFECT_DATABASE_ENV] = url
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A server is not a client of another one.
    env.pop("PREFECT_API_URL", None)
    browse_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in browse_host:
        browse_host = f"[{browse_host}]"
    ui_url = f"http://{browse_host}:{port}"
    # The UI asks the server where its API is; Prefect's default says port 4200 whatever the
    # port. Set PREFECT_UI_API_URL yourself when browsers reach the server by another name.
    env.setdefault("PREFECT_UI_API_URL", f"{ui_url}/api")
    # --no-prompt: on a terminal, Prefect 3.9 otherwise stops to ask whether to save the API
    # URL in a profile, and a saved profile then sends later runs to this server even after
    # it has stopped. `mailarchive server` prints the export line instead.
    argv = [
        sys.executable,
        "-m",
        "prefect",
        "--no-prompt",
        "server",
        "start",
        "--host",
        host,
        "--port",
        str(port),
    ]
    return ServerPlan(
        argv=argv,
        env=env,
        ui_url=ui_url,
        api_url=f"{ui_url}/api",
        database=make_url(url).render_as_string(hide_password=True),
    )


def api_unreachable(api_url: str, timeout: float = 5.0) -> str | None:
    """Why the Prefect API at `api_url` does not answer, or None if `/health` does."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as reply:
            if reply.status == 200:
                return None
            return f"HTTP {reply.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return str(reason) or type(exc).__name__
