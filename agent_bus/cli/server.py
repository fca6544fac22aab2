"""``agent-bus mcp`` (the stdio server, as with no arguments) and ``agent-bus demo``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from agent_bus.cli._common import DbOption, Unavailable, db_override, settings_for

HTTP_PANEL = "HTTP (remote peers)"


def mcp(
    http: Annotated[
        bool,
        typer.Option(
            "--http",
            help="Serve streamable HTTP at /mcp instead of stdio.",
            rich_help_panel=HTTP_PANEL,
        ),
    ] = False,
    host: Annotated[
        str, typer.Option(help="Interface to bind (with --http).", rich_help_panel=HTTP_PANEL)
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="TCP port; 0 picks a free one.", rich_help_panel=HTTP_PANEL
        ),
    ] = 8766,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a non-loopback --host (needs at least one token).",
            rich_help_panel=HTTP_PANEL,
        ),
    ] = False,
    certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM).", rich_help_panel=HTTP_PANEL)
    ] = None,
    keyfile: Annotated[
        Path | None, typer.Option(help="TLS private key (PEM).", rich_help_panel=HTTP_PANEL)
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Another Host name clients use, e.g. bus.example.com (repeat).",
            rich_help_panel=HTTP_PANEL,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Run the MCP server: on stdio (what local agents start), or with --http for remote peers.

    Examples:

        agent-bus mcp --db /tmp/bus.sqlite

        agent-bus mcp --http --port 8766

        agent-bus mcp --http --host 0.0.0.0 --allow-remote --certfile cert.pem --keyfile key.pem
    """
    if http:
        from agent_bus.mcp.http import HttpOptions, serve_http

        settings = settings_for(db)
        opts = HttpOptions(
            host=host,
            port=port,
            allow_remote=allow_remote,
            certfile=certfile,
            keyfile=keyfile,
            allowed_hosts=[*settings.http_allowed_hosts, *(allowed_host or [])],
        )
        raise typer.Exit(serve_http(settings, opts))
    chosen = db_override(db)
    if chosen is not None:
        os.environ["AGENT_BUS_DB"] = str(chosen)
    from agent_bus.__main__ import serve

    raise typer.Exit(serve())


def demo(db: DbOption = None) -> None:
    """Fill a bus with a sample review conversation to try the CLI and web UI on.

    Examples:

        agent-bus demo --db /tmp/demo-bus.sqlite && agent-bus topics list --db /tmp/demo-bus.sqlite
    """
    settings = settings_for(db)
    try:
        from agent_bus.demo import run_demo
    except ImportError:
        raise Unavailable("the demo is not part of this installation yet") from None
    run_demo(settings)


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
    app.command("demo")(demo)
