"""Entry point of the ``agent-bus`` command.

With no arguments (or ``mcp``) it is the MCP server over stdio; this path
must stay light, so it imports neither typer nor rich, datasette or llm.
``hook`` is dispatched first and lighter still (no mcp, no pydantic).
Anything else goes to the typer CLI.
"""

from __future__ import annotations

import sys


def serve() -> int:
    """Run the MCP server over stdio until stdin closes."""
    import logging

    from agent_bus.settings import SettingsError, load_settings

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"agent-bus: {exc}", file=sys.stderr)
        return 2

    from agent_bus.mcp.server import build_server

    server = build_server(settings)
    try:
        server.run("stdio")
    except KeyboardInterrupt:
        pass
    finally:
        server.bus.close()  # type: ignore[attr-defined]
    return 0


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "hook":  # before anything heavy: hooks run at every prompt
        from agent_bus.hooks.run import main as hook_main

        hook_main(args[1:])
    if not args or args == ["mcp"]:
        sys.exit(serve())
    if args in (["--version"], ["-V"]):
        from agent_bus import SPEC_VERSION, __version__

        print(f"agent-bus {__version__} (wire spec {SPEC_VERSION})")
        sys.exit(0)
    from agent_bus.cli import run_cli

    run_cli(args)


if __name__ == "__main__":
    main()
