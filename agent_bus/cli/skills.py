"""``agent-bus skills …`` and ``agent-bus mcp-config``: set up agents to use the bus."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from agent_bus import installers
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
from agent_bus.hooks.install import HOOK_FILES

ClientOption = Annotated[
    str,
    typer.Option(
        "--client",
        "-c",
        help=f"The coding agent: {', '.join(installers.CLIENTS)}.",
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
    bool, typer.Option("--user", help="Install for your user (all projects) instead.")
]


_HOOKS_HINT = (
    "tip: `agent-bus hooks install --client {client}` lets the agent hear its peers between "
    "turns (unread mail at session start, on each prompt, and before it stops)."
)


def _scope(project: Path | None, user: bool) -> None:
    if project is not None and user:
        raise InvalidArgument("choose either --project DIR or --user, not both", field="user")


def list_(as_json: JsonOption = False) -> None:
    """List the skill packs shipped with agent-bus.

    Examples:

        agent-bus skills list
    """
    skills = installers.list_skills()
    if as_json:
        emit_json({"skills": [{"name": s.name, "description": s.description} for s in skills]})
        return
    width = max((len(s.name) for s in skills), default=0)
    for s in skills:
        echo(f"{s.name.ljust(width)}  {s.description}")


def show(
    name: Annotated[str, typer.Argument(help="Skill name (see `agent-bus skills list`).")],
    as_json: JsonOption = False,
) -> None:
    """Print a skill pack's SKILL.md (and, with --json, its files).

    Examples:

        agent-bus skills show agent-bus-reviewer
    """
    skill = installers.get_skill(name)
    if as_json:
        emit_json(
            {
                "name": skill.name,
                "description": skill.description,
                "path": str(skill.path),
                "files": [f.as_posix() for f in skill.files()],
                "text": skill.text(),
            }
        )
        return
    echo(skill.text().rstrip("\n"))


def install(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Skills to install (default: all).", show_default=False),
    ] = None,
    client: ClientOption = ...,  # type: ignore[assignment]
    project: ProjectOption = None,
    user: UserOption = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace packs you edited after installing them.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Install skill packs where a coding agent looks for them (project or user scope).

    Running it again updates untouched packs and leaves edited ones alone.

    Examples:

        agent-bus skills install --client claude-code

        agent-bus skills install agent-bus-reviewer --client codex --user
    """
    _scope(project, user)
    report = installers.install_skills(
        names or None, client, project_dir=project, user=user, force=force
    )
    if as_json:
        emit_json(
            {
                "client": report.client,
                "target": str(report.target),
                "skills": [
                    {
                        "name": s.name,
                        "path": str(s.path),
                        "status": s.status,
                        "files": s.files,
                        "removed": [str(p) for p in s.removed],
                    }
                    for s in report.skills
                ],
                "warnings": report.warnings,
            }
        )
    else:
        for s in report.skills:
            echo(f"{s.status:<11} {s.name}  ->  {s.path}")
            for gone in s.removed:
                echo(f"{'removed':<11} {s.name}  ->  {gone} (the copy above replaces it)")
    for warning in report.warnings:
        note(warning)
    if client in HOOK_FILES:
        note(_HOOKS_HINT.format(client=client))
    if report.conflicts:
        names_txt = ", ".join(s.name for s in report.conflicts)
        raise InvalidArgument(
            f"left alone because they were edited after install: {names_txt}; "
            "pass --force to replace them",
            field="force",
        )


def uninstall(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Skills to remove (default: all).", show_default=False),
    ] = None,
    client: ClientOption = ...,  # type: ignore[assignment]
    project: ProjectOption = None,
    user: UserOption = False,
    force: Annotated[
        bool, typer.Option("--force", help="Also remove packs you edited after installing them.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove the skill packs agent-bus installed for a coding agent.

    A copy other clients still use stays (only this client is taken off its record); files
    you added to a pack, and packs you edited (unless --force), are left alone.

    Examples:

        agent-bus skills uninstall --client gemini

        agent-bus skills uninstall agent-bus-reviewer --client codex --user
    """
    _scope(project, user)
    report = installers.uninstall_skills(
        names or None, client, project_dir=project, user=user, force=force
    )
    if as_json:
        emit_json(
            {
                "client": report.client,
                "skills": [
                    {"name": s.name, "path": str(s.path), "status": s.status, "files": s.files}
                    for s in report.skills
                ],
            }
        )
    else:
        for s in report.skills:
            echo(f"{s.status:<11} {s.name}  ->  {s.path}")
    if report.conflicts:
        names_txt = ", ".join(s.name for s in report.conflicts)
        raise InvalidArgument(
            f"left alone because they were edited after install: {names_txt}; "
            "pass --force to remove them",
            field="force",
        )


def mcp_config(
    client: ClientOption = ...,  # type: ignore[assignment]
    write: Annotated[
        bool, typer.Option("--write", help="Add the entry to the client's config file.")
    ] = False,
    remove: Annotated[
        bool,
        typer.Option("--remove", help="Take the entry out of the client's config file instead."),
    ] = False,
    project: ProjectOption = None,
    user: UserOption = False,
    command: Annotated[
        str | None,
        typer.Option(
            help=(
                "Command the client runs to start the server (default: `agent-bus` when PATH "
                "finds this install, else its absolute path)."
            ),
            show_default=False,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="A remote `agent-bus mcp --http` server, e.g. https://host:8766/mcp."),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option(help="With --url: environment variable holding the token (not the token)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Print (or --write) the MCP server configuration that registers agent-bus with a client.

    AGENT_BUS_DB goes into the entry only when you chose a database (--db or AGENT_BUS_DB);
    otherwise the server uses its default database.

    Examples:

        agent-bus mcp-config --client claude-code

        agent-bus mcp-config --client codex --write --user

        agent-bus mcp-config --client cursor --url https://bus:8766/mcp --token-env AGENT_BUS_TOKEN

        agent-bus mcp-config --client gemini --remove
    """
    _scope(project, user)
    if remove:
        if write:
            raise InvalidArgument("choose either --write or --remove, not both", field="remove")
        removed = installers.remove_mcp_config(client, project_dir=project, user=user)
        echo(f"{removed.status}: {removed.path}")
        return
    if url is not None or token_env is not None:
        _remote(client, url, token_env, write=write, project=project, user=user)
        return
    chosen = db_override(db) is not None or bool(os.environ.get(installers.DB_ENV))
    db_path = settings_for(db).db if chosen else None
    resolved = installers.resolve_command(command)
    if resolved.note:
        note(resolved.note)
    if not write:
        typer.echo(installers.mcp_config(client, db_path, command=resolved), nl=False)
        if client in HOOK_FILES:
            note(_HOOKS_HINT.format(client=client))
        return
    try:
        result = installers.write_mcp_config(
            client, db_path, project_dir=project, user=user, command=resolved
        )
    except installers.ConfigMergeRefused as exc:
        first, _, rest = exc.message.partition("\n")
        if rest:
            note(rest.rstrip("\n"))
        raise installers.ConfigMergeRefused(first) from None
    echo(f"{result.status}: {result.path}")
    if result.next_step:
        note(f"next: {result.next_step}")
    if client in HOOK_FILES:
        note(_HOOKS_HINT.format(client=client))


def _remote(
    client: str,
    url: str | None,
    token_env: str | None,
    *,
    write: bool,
    project: Path | None,
    user: bool,
) -> None:
    """The HTTP form: the client reads the token from ``token_env`` (never written down)."""
    from agent_bus.installers import remote

    if url is None or token_env is None:
        raise InvalidArgument("--url and --token-env go together", field="url")
    if not write:
        typer.echo(remote.remote_config(client, url, token_env), nl=False)
        note(f"set {token_env} to the token in the agent's environment (agent-bus tokens create)")
        return
    result = remote.write_remote_config(client, url, token_env, project_dir=project, user=user)
    echo(f"{result.status}: {result.path}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        help="Agent Skills packs that teach agents the bus workflows: list, show, install, "
        "uninstall.",
    )
    group.command("list")(list_)
    group.command("show")(show)
    group.command("install")(install)
    group.command("uninstall")(uninstall)
    app.add_typer(group, name="skills")
    app.command("mcp-config")(mcp_config)
