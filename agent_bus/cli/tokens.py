"""``agent-bus tokens create|list|revoke``: bearer tokens for remote peers over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from agent_bus.cli._common import (
    DbOption,
    JsonOption,
    ago,
    echo,
    emit_json,
    note,
    open_bus,
    plain_table,
)
from agent_bus.service import access


def create(
    label: Annotated[str, typer.Argument(help="What the token is for, e.g. 'devcontainer'.")],
    agent: Annotated[
        list[str] | None,
        typer.Option("--agent", help="Agent name it may join/sync as (repeat; default any)."),
    ] = None,
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", help="Topic name or id it may see (repeat; default any)."),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="May read and search, never send/create/close.")
    ] = False,
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime such as 30d, 12h or 2w.")
    ] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Create a token and print its secret once (only a hash is stored).

    Examples:

        agent-bus tokens create devcontainer --agent reviewer --topic review-auth --expires 30d

        AGENT_BUS_TOKEN=$(agent-bus tokens create ci --read-only --json | jq -r .token)
    """
    lifetime = None if expires is None else access.parse_duration(expires)
    with open_bus(db) as bus:
        info, token = access.create(
            bus, label, agents=agent, topics=topic, read_only=read_only, expires_in=lifetime
        )
    if as_json:
        emit_json({"id": info.token_id, "token": token, **_public(info)})
        return
    echo(token)
    note(
        f"token {info.token_id} ({_scope_text(info)}). This is the only time the secret is "
        "shown: put it in an environment variable of the agent, never in a config file."
    )


def list_tokens(as_json: JsonOption = False, db: DbOption = None) -> None:
    """List tokens: id, label, scope, status and last use (never the secrets).

    Examples:

        agent-bus tokens list

        agent-bus tokens list --json
    """
    with open_bus(db) as bus:
        infos = access.list_tokens(bus)
    if as_json:
        emit_json({"tokens": [i.as_json() for i in infos]})
        return
    if not infos:
        note("no tokens; create one with `agent-bus tokens create LABEL`")
        return
    rows = [
        [
            i.token_id,
            i.label,
            _scope_text(i),
            i.status(),
            ago(i.last_used_at) if i.last_used_at else "never",
        ]
        for i in infos
    ]
    echo(plain_table(["ID", "LABEL", "SCOPE", "STATUS", "LAST USED"], rows))


def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (see `tokens list`).")],
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Revoke a token; its next request is refused (HTTP 401), even mid-session.

    Examples:

        agent-bus tokens revoke tk3f9a1c2b
    """
    with open_bus(db) as bus:
        info = access.revoke(bus, token_id)
    if as_json:
        emit_json(info.as_json())
        return
    echo(f"revoked {info.token_id} ({info.label})")


def _public(info: access.TokenInfo) -> dict[str, object]:
    data = info.as_json()
    data.pop("id")
    return data


def _scope_text(info: access.TokenInfo) -> str:
    parts = [
        "agents: " + (", ".join(info.agents) if info.agents else "any"),
        "topics: " + (", ".join(info.topics) if info.topics else "any"),
    ]
    if info.read_only:
        parts.append("read-only")
    if info.expires_at is not None:
        parts.append(
            "expires " + datetime.fromtimestamp(info.expires_at).strftime("%Y-%m-%d %H:%M")
        )
    return "; ".join(parts)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
        help="Bearer tokens for agents that reach the bus over HTTP.",
    )
    group.command("create")(create)
    group.command("list")(list_tokens)
    group.command("revoke")(revoke)
    app.add_typer(group, name="tokens")
