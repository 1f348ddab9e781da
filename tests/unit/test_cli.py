"""The command line as a user meets it: help text, argument parsing, what it imports."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.app.cli import app, command
from archive.app.report import human_bytes, search_list, search_table, snippet_text
from archive.app.search_commands import split_query
from archive.index.search import SearchHit, SearchPage

COMMANDS = [
    [], ["run"], ["serve"], ["server"], ["demo"], ["reindex"], ["cat"], ["verify"], ["gc"],
    ["search"], ["psql"], ["migrate"], ["db"], ["db", "url"], ["db", "start"], ["db", "stop"],
    ["db", "status"], ["status"], ["mailbox"], ["mailbox", "forget"], ["schedule"],
    ["schedule", "pause"], ["schedule", "resume"], ["schedule", "show"],
]  # fmt: skip


def _help(args: list[str], monkeypatch: pytest.MonkeyPatch) -> str:
    # What `main` runs: the app's command with plain help, not typer's bare command.
    monkeypatch.setattr("typer.testing._get_command", lambda _: command())
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "mailarchive")
def test_help_shows_no_python_types(args: list[str], monkeypatch):
    text = _help(args, monkeypatch)
    for typer_default in ("<bool>", "<str>", "<int>", "<list[str]>", "{", "}"):
        assert typer_default not in text, (typer_default, text)
    assert all(len(line) <= 80 for line in text.splitlines())


def test_help_reflows_paragraphs(monkeypatch):
    text = _help(["run"], monkeypatch)
    # The docstring breaks after "temporary Prefect"; on screen the paragraph is reflowed.
    assert "(else a temporary Prefect server)" in " ".join(text.split())
    assert not any(line.strip() == "Prefect" for line in text.splitlines())


def _search_command():
    from typer.main import get_command

    return get_command(app).commands["search"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "parsed"),
    [
        (["-invoice"], ["--", "-invoice"]),
        (["-n", "5", "-invoice"], ["-n", "5", "--", "-invoice"]),
        (["-invoice", "--json"], ["--json", "--", "-invoice"]),
        (["--limit=5", "from:ann -spam"], ["--limit=5", "--", "from:ann -spam"]),
        (["-n5", "x"], ["-n5", "--", "x"]),
        (["--", "-n"], ["--", "-n"]),
        (["--help"], ["--help"]),
        (["invoice"], ["--", "invoice"]),
    ],
)
def test_a_leading_dash_query_is_the_query(args: list[str], parsed: list[str]):
    assert split_query(_search_command(), args) == parsed


def test_search_reads_a_dash_query_and_names_the_option_on_a_bad_limit(monkeypatch):
    seen: list[tuple[str, int]] = []

    def fake_open_libpq(settings):
        class Connection:
            def close(self) -> None:
                pass

        return Connection()

    def fake_search_page(conn, query, limit, offset, order):
        seen.append((query, limit))
        return SearchPage(hits=[], total=0, offset=offset, order=order)

    monkeypatch.setattr("archive.app.search_commands.open_libpq", fake_open_libpq)
    monkeypatch.setattr("archive.index.search.search_page_libpq", fake_search_page)
    ok = CliRunner().invoke(app, ["search", "-invoice", "-n", "3", "--json"])
    assert ok.exit_code == 0, ok.output
    assert seen == [("-invoice", 3)]
    bad = CliRunner().invoke(app, ["search", "x", "--limit", "0"])
    assert bad.exit_code == 2 and "--limit" in bad.output and "max_rows" not in bad.output


def test_psql_passes_its_options_through(monkeypatch):
    calls: list[list[str]] = []
    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", "postgresql://u@db/archive")
    monkeypatch.setattr("archive.index.database.psql_binary", lambda: "/bin/psql")
    monkeypatch.setattr("os.execv", lambda binary, argv: calls.append(argv))
    result = CliRunner().invoke(app, ["psql", "-c", "SELECT 1", "-At", "--csv"])
    assert result.exit_code == 0, result.output
    assert calls == [["/bin/psql", "postgresql://u@db/archive", "-c", "SELECT 1", "-At", "--csv"]]


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("mailarchive 0.")


def test_help_imports_neither_prefect_nor_the_database_nor_boto3():
    code = (
        "import sys\n"
        "from archive.app.cli import main\n"
        "sys.argv = ['mailarchive', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(done.stderr.split())
    assert "typer" in loaded and "archive" in loaded  # the probe saw the CLI load
    heavy = {"prefect", "sqlalchemy", "boto3", "botocore", "alembic", "pydantic", "psycopg", "bs4"}
    assert loaded & heavy == set()


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1023, 1024, 1536, 10 * 1024, 5 << 20, 3 << 40)] == [
        "0 B", "1023 B", "1.0 KiB", "1.5 KiB", "10 KiB", "5.0 MiB", "3.0 TiB",
    ]  # fmt: skip


def test_snippets_are_highlighted_on_a_terminal_and_plain_elsewhere():
    marked = "the quarterly **report** and the **figures**"
    plain = snippet_text(marked, highlight=False)
    assert plain.plain == "the quarterly report and the figures" and not plain.spans
    lit = snippet_text(marked, highlight=True)
    assert lit.plain == plain.plain
    assert [lit.plain[s.start : s.end] for s in lit.spans] == ["report", "figures"]


def _page() -> SearchPage:
    hit = SearchHit(
        id=1, mailbox="alice", uidl="u1", sent_at=datetime(2024, 11, 11, 0, 12, tzinfo=UTC),
        from_address="zoe@example.fr", subject="Quarterly report", rank=0.5,
        snippet="the quarterly **report**", thread_id=None, sha256="e9a6bd781ac1" + "0" * 52,
    )  # fmt: skip
    return SearchPage(hits=[hit], total=1, offset=0, order="newest")


@pytest.mark.parametrize("layout", [search_table, search_list])
def test_a_hit_shows_its_short_id_and_no_markup(layout):
    from rich.console import Console

    console = Console(width=80, record=True, file=io.StringIO())
    console.print(layout("report", _page()))
    text = console.export_text()
    assert "e9a6bd781ac1" in text and "e9a6bd781ac10" not in text
    assert "**" not in text and "report" in text


def test_a_search_without_matches_says_so_in_one_line_and_exits_0(monkeypatch):
    monkeypatch.setattr("archive.app.search_commands.open_libpq", lambda settings: _Closing())
    monkeypatch.setattr(
        "archive.index.search.search_page_libpq",
        lambda conn, query, limit, offset, order: SearchPage([], 0, offset, order),
    )
    for columns in ("80", "120"):  # the block layout and the table
        result = CliRunner().invoke(app, ["search", "word"], env={"COLUMNS": columns})
        assert result.exit_code == 0, result.output
        assert result.output == "no messages match 'word'\n"


class _Closing:
    def close(self) -> None:
        pass


def test_demo_keeps_to_its_own_data_dir(tmp_path: Path):
    from archive.app.demo import DEMO_MARKER, demo_settings, reset_demo
    from archive.config import Settings
    from archive.errors import ConfigError

    mine = Settings(data_dir=tmp_path, database_url="postgresql://u@db/real", store_url="s3://b")
    demo = demo_settings(mine)
    assert demo.data_dir == tmp_path / "demo"
    assert (
        demo.database_url is None
        and demo.resolved_store_url == (tmp_path / "demo" / "objects").as_uri()
    )
    assert reset_demo(demo) is False  # nothing yet
    demo.data_dir.mkdir()
    (demo.data_dir / "objects").mkdir()
    with pytest.raises(ConfigError, match="not created by `mailarchive demo`"):
        reset_demo(demo)
    assert demo.data_dir.exists()
    (demo.data_dir / DEMO_MARKER).touch()
    assert reset_demo(demo) is True and not demo.data_dir.exists()


def test_each_problem_of_a_mailbox_file_is_an_error_line(tmp_path: Path):
    path = tmp_path / "m.toml"
    path.write_text("schedul = '@daily'\n[[mailbox]]\nname='a'\nhost='h'\nusrname='u'\n")
    result = CliRunner().invoke(app, ["run", "-c", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"error: {path}: line ") for line in lines)
    assert "(did you mean 'schedule'?)" in lines[0] and "(did you mean 'username'?)" in lines[2]
