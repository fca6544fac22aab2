"""``agent-bus mcp`` (the stdio server, as with no arguments) and ``agent-bus demo``."""

from __future__ import annotations

import os

import typer

from agent_bus.cli._common import DbOption, Unavailable, db_override, settings_for


def mcp(db: DbOption = None) -> None:
    """Run the MCP server on stdio (what agents start; same as `agent-bus` alone).

    Examples:

        agent-bus mcp --db /tmp/bus.sqlite
    """
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
