"""``agent-bus web`` (alias ``serve``): the Datasette web UI on the bus database."""

from __future__ import annotations

from typing import Annotated

import typer

from agent_bus.cli._common import DbOption, Unavailable, settings_for
from agent_bus.errors import InvalidArgument
from agent_bus.settings import BusSettings


def web(
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    no_open: Annotated[
        bool, typer.Option("--no-open", help="Do not open a browser window.")
    ] = False,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Serve remote people: every request needs an access token (a login "
            "page for browsers); needed for a non-loopback --host; refuses to start "
            "without a token.",
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Browse, search and export the conversations in your browser (Datasette).

    Examples:

        agent-bus web

        agent-bus web --port 9000 --no-open

        agent-bus web --host 0.0.0.0 --allow-remote --no-open
    """
    settings = settings_for(db)
    try:
        from agent_bus import web as web_ui

        web_ui.load_plugin()  # imports Datasette: a broken install fails here, not mid-start
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise Unavailable(
            f"the web UI cannot start: {missing} is missing from this installation; "
            "reinstall agent-bus (pip install -U agent-bus)"
        ) from None
    refused = getattr(web_ui, "WebError", None) or InvalidArgument
    _embed_queued(settings)
    try:
        web_ui.run_web(
            settings, host=host, port=port, open_browser=not no_open, allow_remote=allow_remote
        )
    except refused as exc:
        raise InvalidArgument(str(exc), field="host") from None


def _embed_queued(settings: BusSettings) -> None:
    """Messages queued for embedding get embedded while the UI is open (its search needs them)."""
    from agent_bus.bus import Bus
    from agent_bus.embeddings.autostart import start_if_pending

    if not settings.db.exists():
        return
    bus = Bus(settings)
    try:
        start_if_pending(bus.read, settings)
    finally:
        bus.close()


def register(app: typer.Typer) -> None:
    app.command("web")(web)
    app.command("serve", hidden=True)(web)
