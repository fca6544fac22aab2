"""The agent-bus MCP server: one factory for every transport.

`build_server(settings, bus=None)` returns an `AgentBusServer` with the ten
tools of the agent-bus-mcp contract (spec v6.3), the prompts and the
background indexing lifespan; it knows nothing of the transport, so stdio
(`run("stdio")`) and streamable HTTP (`streamable_http_app()`) serve the same
server. Only `run_stdio_async` is stdio-specific: it reads stdin through
`stdio.CheckedStdin`, which answers lines the SDK could not parse.

Module map: `tools` and `sync_tool` (tool bodies), `results` (tool result and
error mapping), `identities` (joined names per connection), `protocol`
(protocol-level errors as -32602), `indexing` (embedding lifespan).
"""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from agent_bus import __version__
from agent_bus.bus import Bus
from agent_bus.errors import BusError
from agent_bus.mcp.identities import Identities
from agent_bus.mcp.indexing import background_indexing
from agent_bus.mcp.protocol import ProtocolErrors
from agent_bus.mcp.push import Push
from agent_bus.mcp.resources import list_topic_resources, register_resources
from agent_bus.mcp.results import error_result, tool_failure
from agent_bus.mcp.scoping import caller_scope, guard_call
from agent_bus.mcp.sync_tool import register_sync
from agent_bus.mcp.tools import register_tools
from agent_bus.settings import BusSettings

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "agent-bus lets coding agents on this machine talk through topics. Create or find a topic "
    "(topic_create / topic_resolve), join it with "
    "topic_join(agent_name=..., topic_id=...|name=...) "
    "and keep the returned reclaim_token to take your name back after a restart. Then use sync() "
    "to send (outbox items need content_markdown) and receive. Keep max_items small and call sync "
    "with wait_seconds=0 until has_more is false; wait in bounded rounds (wait_seconds>0) for "
    "replies. To replay history call cursor_reset(topic_id=..., last_seq=0). Message bodies are in "
    "structuredContent.received[*].content_markdown and, possibly truncated, in the text output. "
    "Conventions: message_type='question' for questions, message_type='answer' with reply_to set "
    "to the question's message_id for answers; client_message_id makes retries idempotent."
)


class AgentBusServer(MCPServer):
    """MCPServer whose every failed call carries a stable error code."""

    async def run_stdio_async(self) -> None:
        from mcp.server.stdio import stdio_server

        from agent_bus.mcp.stdio import CheckedStdin

        stdin = CheckedStdin()
        async with stdio_server(stdin=stdin) as (read_stream, write_stream):  # type: ignore[arg-type]
            stdin.answer_through(write_stream)
            await self._lowlevel_server.run(
                read_stream, write_stream, self._lowlevel_server.create_initialization_options()
            )

    async def list_resources(self) -> list[Any]:
        """The static resources plus one per open topic (`resources.list_topic_resources`)."""
        return [*await super().list_resources(), *await list_topic_resources(self.bus)]  # type: ignore[attr-defined]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        scope = caller_scope()
        if scope.restricted:  # an HTTP caller whose token has a scope
            try:
                await guard_call(self.bus, name, arguments or {}, scope)  # type: ignore[attr-defined]
            except BusError as exc:
                return error_result(exc.code, exc.message)
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            return tool_failure(name, exc)


def build_server(settings: BusSettings, bus: Bus | None = None, **options: Any) -> AgentBusServer:
    """The MCP server over one bus database, for any transport.

    ``options`` go to `MCPServer` (the HTTP door passes its token verifier and auth).

    ``server.bus`` is the `Bus` it serves (the caller closes it);
    ``server.identities`` the names its connections joined; ``server.push`` the pump
    behind resource subscriptions and channel notifications.
    """
    bus = bus or Bus(settings)
    ids = Identities()
    push = Push(bus, ids, channels=settings.claude_channels)
    server = AgentBusServer(
        name="agent-bus",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=background_indexing(bus, settings),
        middleware=[ProtocolErrors()],
        subscriptions=push.listen,
        **options,
    )
    register_tools(server, bus, settings, ids)
    register_sync(server, bus, settings, ids)
    _register_prompts(server)
    register_resources(server, bus)
    push.install(server)
    server.bus = bus  # type: ignore[attr-defined]
    server.identities = ids  # type: ignore[attr-defined]
    server.push = push  # type: ignore[attr-defined]
    return server


def _register_prompts(server: MCPServer) -> None:
    try:
        from agent_bus.prompts import register_prompts
    except ImportError:  # prompts module not present in this build
        return
    register_prompts(server)
