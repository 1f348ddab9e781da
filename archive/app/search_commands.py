"""`mailarchive search`: archive.search() from the command line, a page at a time."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from archive.app.console import command_settings, fail, open_libpq, out

search_commands = typer.Typer()


class QueryCommand(TyperCommand):
    """A command whose argument is a search query: `-invoice` (NOT invoice) is the query, not
    the options `-i -n voice`. A word starting with `-` that is none of the command's own
    options is moved behind `--`, where the parser takes it as the argument."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, split_query(self, args))


def split_query(command: Any, args: list[str]) -> list[str]:
    takes_value: set[str] = set()
    flags: set[str] = {"--help"}
    for param in command.params:
        names = [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
        if getattr(param, "param_type_name", "") != "option":
            continue
        (flags if getattr(param, "is_flag", False) else takes_value).update(names)
    options: list[str] = []
    positional: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            positional.extend(rest)
        elif arg in takes_value:
            options.append(arg)
            value = next(rest, None)
            if value is not None:
                options.append(value)
        elif arg in flags or arg.split("=", 1)[0] in takes_value:  # --limit=5
            options.append(arg)
        elif arg[:2] in takes_value and arg[2:].isdigit():  # -n5
            options.append(arg)
        else:
            positional.append(arg)
    return [*options, "--", *positional] if positional else options


@search_commands.command(cls=QueryCommand)
def search(
    query: Annotated[
        str,
        typer.Argument(
            metavar="QUERY",
            help='Words, "phrases", OR, -word (NOT), from:, subject:, … in one quoted argument.',
            show_default=False,
        ),
    ],
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-n", min=1, max=10_000, help="At most this many results (a page)."
        ),
    ] = 20,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Skip this many results (the next page).")
    ] = 0,
    relevance: Annotated[
        bool,
        typer.Option(
            "--relevance",
            help="Best first, ranked among the 1,000 most recent matches (default: every "
            "match, newest first).",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Search the archive with archive.search(), the same SQL function psql users call.

    Every match, newest first, a page at a time (--limit, --offset), and how many there are.
    Fields: from: to: cc: bcc: subject: filename: mailbox: has:attachment
    before:YYYY-MM-DD after:YYYY-MM-DD larger:5M smaller:200K. The id column is the start of
    the original's SHA-256: `mailarchive cat ID` prints it. Exits 2 on a malformed query.
    """
    from archive.errors import QueryError
    from archive.index.search import search_page_libpq

    conn = open_libpq(command_settings())
    try:
        page = search_page_libpq(conn, query, limit, offset, "relevance" if relevance else "newest")
    except QueryError as exc:
        fail(str(exc))
    finally:
        conn.close()
    if as_json:
        payload = {
            "query": query,
            "total": page.total,
            "offset": page.offset,
            "order": page.order,
            "ranked_a_window": page.ranked_a_window,
            "results": [hit.as_json() for hit in page.hits],
        }
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        from archive.app.report import search_view

        out.print(search_view(query, page, width=out.width, highlight=out.is_terminal))
