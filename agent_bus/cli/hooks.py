"""`agent-bus hooks install|uninstall|status`, and `agent-bus hook` for --help.

The hook itself never gets here: `agent_bus.__main__` dispatches ``hook`` before
typer is imported. The command below only lists it in ``agent-bus --help`` and
serves ``agent-bus hook --help``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from agent_bus.cli._common import (
    DbOption,
    JsonOption,
    db_override,
    echo,
    emit_json,
    note,
    settings_for,
)
from agent_bus.errors import InvalidArgument
from agent_bus.hooks import install as hooks

ClientOption = Annotated[
    str,
    typer.Option(
        "--client",
        "-c",
        help=f"The coding agent: {', '.join(hooks.HOOK_FILES)}.",
        show_default=False,
    ),
]
ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project", help="Project directory (default: the current one).", show_default=False
    ),
]
UserOption = Annotated[
    bool, typer.Option("--user", help="Your user's settings file (all projects) instead.")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print what would change; write nothing.")
]


def _scope(project: Path | None, user: bool) -> None:
    if project is not None and user:
        raise InvalidArgument("choose either --project DIR or --user, not both", field="user")


def _show(result: hooks.HookFileResult, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "client": result.client,
                "path": str(result.path),
                "status": result.status,
                "changes": result.changes,
            }  # fmt: skip
        )
    else:
        echo(f"{result.status}: {result.path}")
        for line in result.changes:
            echo(f"  {line}")
    if result.note:
        note(result.note)


def install(
    client: ClientOption = ...,  # type: ignore[assignment]
    project: ProjectOption = None,
    user: UserOption = False,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            help=(
                "Comma-separated events (default: every context and stop event of the client; "
                "add `wait` for Claude Code's asyncRewake waker)."
            ),
            show_default=False,
        ),
    ] = None,
    dry_run: DryRunOption = False,
    command: Annotated[
        str | None,
        typer.Option(
            help="Command the client runs (default: `agent-bus` when PATH finds this install).",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add agent-bus hooks to a client's settings, so its agent hears peers between turns.

    Keeps every other key and hook; running it again changes nothing. AGENT_BUS_DB goes into
    the command only when you chose a database (--db or AGENT_BUS_DB), as with mcp-config.

    Examples:

        agent-bus hooks install --client claude-code

        agent-bus hooks install --client codex --user

        agent-bus hooks install --client claude-code --events session-start,stop,wait
    """
    _scope(project, user)
    chosen = db_override(db) is not None or bool(os.environ.get("AGENT_BUS_DB"))
    result = hooks.install(
        client,
        project_dir=project,
        user=user,
        events=events,
        dry_run=dry_run,
        command=command,
        db=settings_for(db).db if chosen else None,
    )
    _show(result, as_json)
    if result.status in ("created", "updated") and not user:
        note(hooks.TRUST_STEPS[client])


def uninstall(
    client: ClientOption = ...,  # type: ignore[assignment]
    project: ProjectOption = None,
    user: UserOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Remove agent-bus hooks from a client's settings (other hooks stay).

    Examples:

        agent-bus hooks uninstall --client gemini
    """
    _scope(project, user)
    _show(hooks.uninstall(client, project_dir=project, user=user, dry_run=dry_run), as_json)


def status(project: ProjectOption = None, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show which agent-bus hooks are installed, and the live session bindings hooks use.

    Examples:

        agent-bus hooks status
    """
    found = hooks.status(project)
    live = hooks.live_bindings(settings_for(db).db)
    installed = [
        {"client": h.client, "scope": h.scope, "path": str(h.path), "event": h.client_event,
         "command": h.command}
        for h in found
    ]  # fmt: skip
    if as_json:
        emit_json({"installed": installed, "bindings": live})
        return
    if not found:
        echo("no agent-bus hooks installed (agent-bus hooks install --client NAME)")
    for h in found:
        echo(f"{h.client:<12} {h.scope:<8} {h.client_event:<17} {h.command}  ({h.path})")
    echo(f"live session bindings: {len(live)}")
    for b in live:
        who = f"{b['client_name'] or '?'} {b['client_version'] or ''}".strip()
        session = f"  session {b['session_id']}" if b["session_id"] else ""
        echo(
            f"  {b['agent_name']} on {b['topic_id']}  client {who} pid {b['client_pid']}"
            f"  cwd {b['cwd']}{session}"
        )


def hook(ctx: typer.Context) -> None:
    """Answer a coding client's hook event (run by the client, not by you).

    Usage: agent-bus hook CLIENT EVENT [--agent NAME] [--topic ID_OR_NAME], JSON on stdin.
    Clients and events: claude-code session-start|user-prompt-submit|stop|wait; codex
    session-start|user-prompt-submit|stop; gemini session-start|before-agent|after-agent.
    Never fails: problems go to hooks.log beside the bus database.

    Examples:

        echo '{"stop_hook_active": false}' | agent-bus hook claude-code stop --agent reviewer
    """
    from agent_bus.hooks.run import main

    main(list(ctx.args))


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        help="Client hooks that tell an agent when peers wrote: install, uninstall, status.",
    )
    group.command("install")(install)
    group.command("uninstall")(uninstall)
    group.command("status")(status)
    app.add_typer(group, name="hooks")
    app.command(
        "hook",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(hook)
