"""`mailarchive schedule show|pause|resume NAME`: the schedule `serve` registered, through
Prefect's API (flows/deployments.py); needs PREFECT_API_URL like `serve`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from archive.app.console import JsonOption, fail, out, print_json
from archive.app.prefect_env import prefect_api_url, prefect_defaults, require_prefect_api

schedule_commands = typer.Typer()
schedule_app = typer.Typer(
    help="The schedule `mailarchive serve` registered (archive-mailboxes/NAME).",
    no_args_is_help=True,
)
schedule_commands.add_typer(schedule_app, name="schedule")

NameArgument = Annotated[
    str,
    typer.Argument(
        help="The deployment: archive-mailboxes/NAME (`serve`'s --name, or the file's stem)."
    ),
]


def _apply(name: str, paused: bool | None, as_json: bool) -> None:
    prefect_defaults()
    require_prefect_api(prefect_api_url(), needed=True)
    from flows.deployments import schedule_state

    state = schedule_state(name.removeprefix("archive-mailboxes/"), paused=paused)
    if state is None:
        fail(
            f"no deployment archive-mailboxes/{name} on this Prefect server: "
            "`mailarchive serve --name NAME` registers it",
            1,
        )
    if as_json:
        print_json(
            {
                "deployment": state.deployment,
                "paused": state.paused,
                "schedules": list(state.schedules),
            }
        )
        return
    schedules = ", ".join(state.schedules) or "no schedule (runs by hand only)"
    word = "paused" if state.paused else "on"
    out.print(f"{escape(state.deployment)}: {word}; {escape(schedules)}", highlight=False)


@schedule_app.command()
def show(name: NameArgument, as_json: JsonOption = False) -> None:
    """Whether the schedule is on or paused, and its cron."""
    _apply(name, None, as_json)


@schedule_app.command()
def pause(name: NameArgument, as_json: JsonOption = False) -> None:
    """Stop scheduled runs until `schedule resume`; runs by hand still run. Stays paused
    when `serve` restarts."""
    _apply(name, True, as_json)


@schedule_app.command()
def resume(name: NameArgument, as_json: JsonOption = False) -> None:
    """Start scheduled runs again; a run missed while paused is not made up."""
    _apply(name, False, as_json)
