"""`mailarchive demo`: the real pipeline against a local POP3 server with generated mail."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from archive.app.demo_data import generate_mailboxes
from archive.app.run_view import print_results
from archive.config import Settings
from archive.pipeline.build import archive_url, open_database
from archive.pop3.fake.server import FakeMailbox, FakePop3Server

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from archive.index.holds import HoldInfo

RunFlow = Callable[[Path, list[str] | None], tuple[bool, list[dict[str, Any]]]]

EXAMPLE_QUERIES = (
    (
        "Messages per mailbox",
        "SELECT mailbox, count(*), pg_size_pretty(sum(size))\n"
        "  FROM archive.messages GROUP BY mailbox ORDER BY mailbox;",
    ),
    (
        'Search (words, "phrases", OR, -word, from: subject: has:attachment after: …)',
        "SELECT mailbox, sent_at, from_address, subject, snippet\n"
        "  FROM archive.search('invoice', 10);",
    ),
    (
        "Largest attachments, with who sent them",
        "SELECT t.filename, t.content_type, t.size, a.address AS sender\n"
        "  FROM archive.attachments t\n"
        "  JOIN archive.addresses a ON a.message_id = t.message_id AND a.role = 'from'\n"
        "  ORDER BY t.size DESC LIMIT 10;",
    ),
)


DEMO_MARKER = ".mailarchive-demo"
"""Written into the demo's data dir: `demo --reset` removes only a directory that has it."""


def demo_settings(settings: Settings) -> Settings:
    """The demo's own archive under `<data dir>/demo`: its embedded PostgreSQL and its objects
    folder, whatever MAILARCHIVE_DATABASE_URL and MAILARCHIVE_STORE_URL say, so generated mail
    never mixes with a real archive."""
    return settings.model_copy(
        update={"data_dir": settings.data_dir / "demo", "database_url": None, "store_url": None}
    )


def reset_demo(settings: Settings) -> bool:
    """Stop the demo's database and remove its data dir; True if there was one. Refuses a
    directory the demo did not create (no marker file)."""
    from archive.errors import ConfigError
    from archive.index.database import stop_embedded

    data_dir = settings.data_dir
    if not data_dir.exists():
        return False
    if not (data_dir / DEMO_MARKER).exists():
        raise ConfigError(f"{data_dir} was not created by `mailarchive demo`; not removing it")
    stop_embedded(data_dir)
    shutil.rmtree(data_dir)
    return True


def write_demo_config(path: Path, host: str, port: int, names: list[str]) -> None:
    tables = [
        f'[[mailbox]]\nname = "{name}"\nhost = "{host}"\nport = {port}\n'
        f"# The demo server listens on loopback only; real mailboxes keep the TLS default.\n"
        f'tls = "none"\nusername = "{name}"\npassword_env = "{_password_env(name)}"\n'
        for name in names
    ]
    path.write_text("\n".join(tables), encoding="utf-8")


def _password_env(name: str) -> str:
    return f"MAILARCHIVE_DEMO_PASSWORD_{name.upper()}"


def run_demo(
    settings: Settings, n_mailboxes: int, n_messages: int, console: Console, run_flow: RunFlow
) -> None:
    generated = generate_mailboxes(n_mailboxes, n_messages)
    mailboxes: dict[str, FakeMailbox] = {}
    for name, messages in generated.items():
        password = secrets.token_urlsafe(16)
        os.environ[_password_env(name)] = password
        mailboxes[name] = FakeMailbox(password=password, messages=list(messages))
    demo_dir = settings.data_dir
    demo_dir.mkdir(parents=True, exist_ok=True)
    (demo_dir / DEMO_MARKER).touch()
    config = demo_dir / "mailboxes.toml"

    console.print(
        f"Demo archive (kept apart from yours): database + objects under "
        f"[bold]{settings.data_dir}[/]",
        highlight=False,
    )
    with FakePop3Server(mailboxes) as server:
        write_demo_config(config, server.host, server.port, list(generated))
        total = sum(len(m) for m in generated.values())
        console.print(
            f"Demo POP3 server on {server.host}:{server.port}: {len(generated)} mailboxes, "
            f"{total} messages. Running the Prefect flow 'archive-mailboxes'…"
        )
        ok, results = run_flow(config, None)

    print_results(console, results, title="Demo run")
    new = sum(int(r["new"]) for r in results)
    if new == 0 and ok:
        console.print("[bold]Nothing new:[/] every message was already archived by an earlier run.")
    else:
        archived = sum(int(r["archived"]) for r in results)
        dups = sum(int(r["duplicates"]) for r in results)
        console.print(
            f"[bold]{archived}[/] messages archived, {dups} linked as duplicates "
            "(stored once, delivered to several mailboxes)."
        )
    if not ok:
        raise SystemExit(1)
    _, engine = open_database(settings, pool_size=1)
    try:
        hold, placed_now = place_example_hold(engine)
    finally:
        engine.dispose()

    url = archive_url(settings)
    print_example_hold(console, hold, placed_now, demo_env(settings))
    # Commands on lines of their own, never wrapped (they are copied); the words around
    # them wrap at the terminal's width.
    console.print("\nQuery the demo archive in SQL:", highlight=False)
    console.print(f"  [bold]{demo_env(settings)} uv run mailarchive psql[/]", soft_wrap=True)
    console.print(f"or: psql '{url}'", highlight=False, soft_wrap=True)
    console.print("[bold]mailarchive demo --reset[/] starts it afresh.\n", highlight=False)
    for title, sql in EXAMPLE_QUERIES:
        console.print(f"-- {title}", style="dim", highlight=False)
        console.print(sql, highlight=False, soft_wrap=True)
        console.print()
    console.print(
        "Fetch an original message byte for byte (the id `mailarchive search` shows, or a "
        "sha256 from archive.messages):",
        highlight=False,
    )
    console.print(
        f"  [bold]{demo_env(settings)} uv run mailarchive cat <sha256>[/]",
        highlight=False,
        soft_wrap=True,
    )


EXAMPLE_HOLD = "demo-budget"
EXAMPLE_HOLD_QUERY = "subject:budget"


def place_example_hold(engine: Engine) -> tuple[HoldInfo, bool]:
    """An example legal hold on the demo's budget thread (placed once), so `archive.holds`,
    `archive.held_messages` and the audit trail (the hold's search is recorded) have rows to
    show; `mailarchive hold release demo-budget --reason …` lifts it. Returns the hold (the
    latest of that name, active or released) and whether this call placed it."""
    from archive.index import holds

    with engine.connect() as conn, conn.begin():
        earlier = [h for h in holds.list_holds(conn) if h.name == EXAMPLE_HOLD]
        if earlier:
            return earlier[-1], False
        placed = holds.create(
            conn,
            EXAMPLE_HOLD,
            "an example legal hold placed by the demo",
            query=EXAMPLE_HOLD_QUERY,
        )
        return placed, True


def print_example_hold(console: Console, hold: HoldInfo, placed_now: bool, env: str) -> None:
    """Say that the demo's example hold is there (or was released), and the commands that
    list and release it, prefixed with `env` (the demo's `MAILARCHIVE_DATA_DIR=…`)."""
    if placed_now:
        said = (
            f"\nThe demo placed an example legal hold [bold]{hold.name}[/] on the "
            f"{hold.messages} messages matching {hold.query}: retention and gc never remove "
            "held messages."
        )
    elif hold.active:
        said = (
            f"\nThe example legal hold [bold]{hold.name}[/] (placed by an earlier demo run) "
            f"still holds {hold.messages} messages."
        )
    else:
        said = f"\nThe example legal hold [bold]{hold.name}[/] was released; it stays listed."
    console.print(said, highlight=False)
    console.print("List holds:", highlight=False)
    console.print(f"  [bold]{env} uv run mailarchive hold list[/]", soft_wrap=True)
    if hold.active:
        console.print("Release this one (the reason is recorded):", highlight=False)
        console.print(
            f"  [bold]{env} uv run mailarchive hold release {hold.name} --reason 'demo'[/]",
            soft_wrap=True,
        )


def demo_env(settings: Settings) -> str:
    """The environment that points a command at the demo's archive instead of the user's."""
    cleared = [
        f"{name}="
        for name in ("MAILARCHIVE_DATABASE_URL", "MAILARCHIVE_STORE_URL")
        if os.environ.get(name)
    ]
    return " ".join([f"MAILARCHIVE_DATA_DIR={settings.data_dir}", *cleared])
