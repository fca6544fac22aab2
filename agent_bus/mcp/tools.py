"""The topic, presence, cursor, search and health tools of the agent-bus-mcp contract.

Tool bodies validate nothing themselves and contain no SQL: they call the
`Bus` service and render its answer; `results` turns failures into coded
error results.
"""

import contextlib
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from agent_bus import SPEC_VERSION, __version__
from agent_bus.bus import Bus
from agent_bus.errors import BusError
from agent_bus.mcp import render, session_binding
from agent_bus.mcp.identities import Identities, connection_of, session_key
from agent_bus.mcp.results import ok
from agent_bus.mcp.scoping import caller_scope
from agent_bus.models import (
    CursorResetOutput,
    MessagesSearchOutput,
    PingOutput,
    TopicCloseOutput,
    TopicCreateOutput,
    TopicJoinOutput,
    TopicListOutput,
    TopicPresenceOutput,
    TopicResolveOutput,
    Warning,
)
from agent_bus.settings import BusSettings


def register_tools(server: MCPServer, bus: Bus, settings: BusSettings, ids: Identities) -> None:
    """Add every tool but sync (see `sync_tool`) to ``server``."""
    text_opts = dict(
        include_bodies=settings.tool_text_include_bodies, max_chars=settings.tool_text_max_chars
    )

    @server.tool(description="Health check for the Agent Bus MCP server; reports versions.")
    def ping() -> Annotated[CallToolResult, PingOutput]:
        out = PingOutput(ok=True, spec_version=SPEC_VERSION, package_version=__version__)
        return ok(out, f"pong ({__version__}, spec {SPEC_VERSION})")

    @server.tool(
        description=(
            "Create a topic. Use mode='new' for a fresh discussion thread, or mode='reuse' "
            "(default) to get the newest open topic with the same name. Then call topic_join "
            "with the returned topic_id."
        )
    )
    async def topic_create(
        name: Annotated[
            str | None,
            Field(
                description=(
                    "Topic label. With mode='new' it names the new topic; with mode='reuse' the "
                    "newest open topic of this name is returned if there is one."
                )
            ),
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Optional JSON object stored on the topic.")
        ] = None,
        mode: Annotated[
            Literal["reuse", "new"],
            Field(
                description=(
                    "Use 'new' for a fresh topic. Use 'reuse' to return the newest open topic "
                    "with the same name (created if none)."
                )
            ),
        ] = "reuse",
    ) -> Annotated[CallToolResult, TopicCreateOutput]:
        topic, created = await bus.run(bus.topic_create, name, metadata, mode)
        out = TopicCreateOutput(
            topic_id=topic.topic_id, name=topic.name, status=topic.status, created=created
        )
        return ok(out, render.topic_line("Topic", topic) + ("" if created else " (reused)"))

    @server.tool(description="List topics in the shared Agent Bus database, newest first.")
    async def topic_list(
        status: Annotated[
            Literal["open", "closed", "all"], Field(description="Which topics to list.")
        ] = "open",
    ) -> Annotated[CallToolResult, TopicListOutput]:
        topics = await bus.run(bus.topic_list, status)
        topics = caller_scope().visible(
            topics, id_of=lambda t: t.topic_id, name_of=lambda t: t.name
        )
        return ok(TopicListOutput(topics=topics), render.topic_list(status, topics))

    @server.tool(description="Find the newest open topic with this exact name.")
    async def topic_resolve(
        name: Annotated[str, Field(description="Exact topic name.")],
        allow_closed: Annotated[
            bool, Field(description="Fall back to the newest closed topic of that name.")
        ] = False,
    ) -> Annotated[CallToolResult, TopicResolveOutput]:
        topic = await bus.run(bus.topic_resolve, name, allow_closed)
        out = TopicResolveOutput(topic_id=topic.topic_id, name=topic.name, status=topic.status)
        return ok(out, render.topic_line("Topic resolved", topic))

    @server.tool(description="Close a topic (idempotent): no more messages can be sent to it.")
    async def topic_close(
        topic_id: Annotated[str, Field(description="Topic to close.")],
        reason: Annotated[str | None, Field(description="Why it is closed (optional).")] = None,
    ) -> Annotated[CallToolResult, TopicCloseOutput]:
        topic, already = await bus.run(bus.topic_close, topic_id, reason)
        warnings = None
        if already:
            warnings = [
                Warning(
                    code="ALREADY_CLOSED",
                    message="The topic was already closed.",
                    context={"topic_id": topic.topic_id},
                )
            ]
        out = TopicCloseOutput(
            topic_id=topic.topic_id,
            status=topic.status,
            closed_at=topic.closed_at,
            close_reason=topic.close_reason,
            warnings=warnings,
        )
        text = f'Topic closed: topic_id="{topic.topic_id}" closed_at={topic.closed_at}'
        if topic.close_reason:
            text += f' close_reason="{topic.close_reason}"'
        if already:
            text += " (already closed)"
        return ok(out, text)

    @server.tool(
        description=(
            "Join a topic as a named peer for this MCP session. Provide exactly one of topic_id or "
            "name. Agent names are reserved for the life of the topic: persist the returned "
            "reclaim_token and pass it to take the same agent_name back after a restart. Typical "
            "flow after topic_create(mode='new'): join with the returned topic_id, then sync."
        )
    )
    async def topic_join(
        agent_name: Annotated[
            str,
            Field(
                description=(
                    "Your peer name on this topic, e.g. 'reviewer' or 'claude-implementer'. It "
                    "stays reserved for the life of the topic once claimed."
                )
            ),
        ],
        ctx: Context,
        topic_id: Annotated[
            str | None,
            Field(description="Topic id to join. Prefer this after topic_create(mode='new')."),
        ] = None,
        name: Annotated[
            str | None,
            Field(description="Topic name to resolve and join when topic_id is not given."),
        ] = None,
        allow_closed: Annotated[
            bool, Field(description="Allow joining a closed topic when resolving by name.")
        ] = False,
        reclaim_token: Annotated[
            str | None,
            Field(
                description=(
                    "The reclaim_token a previous successful topic_join returned; pass it to "
                    "reclaim the same agent_name after a restart or reconnect."
                )
            ),
        ] = None,
    ) -> Annotated[CallToolResult, TopicJoinOutput]:
        session = session_key(ctx)
        if reclaim_token is None and isinstance(agent_name, str) and bool(topic_id) != bool(name):
            # Re-joining in the same session needs no token: use the one it was given.
            known = str(topic_id) if topic_id else None
            if known is None and isinstance(name, str) and name.strip():
                with contextlib.suppress(BusError):  # topic_join below reports it properly
                    known = (await bus.run(bus.topic_resolve, name, allow_closed)).topic_id
            if known is not None:
                reclaim_token = ids.token(session, known, agent_name.strip())
        joined = await bus.run(
            bus.topic_join,
            agent_name,
            topic_id=topic_id,
            name=name,
            allow_closed=allow_closed,
            reclaim_token=reclaim_token,
        )
        ids.remember(
            session,
            joined.topic.topic_id,
            joined.agent_name,
            joined.reclaim_token,
            notify=connection_of(ctx),
        )
        await session_binding.record(
            bus, ids.bindings, ctx, joined.topic.topic_id, joined.agent_name
        )
        t = joined.topic
        out = TopicJoinOutput(
            topic_id=t.topic_id,
            name=t.name,
            status=t.status,
            agent_name=joined.agent_name,
            reclaim_token=joined.reclaim_token,
        )
        text = (
            f'Joined topic "{t.name}" ({t.topic_id}) as "{joined.agent_name}".\n'
            f"reclaim_token={joined.reclaim_token}"
        )
        if t.status == "closed":
            text += "\nNote: this topic is closed; you can read it but not send."
        return ok(out, text)

    @server.tool(description="List peers recently active on a topic (from their sync activity).")
    async def topic_presence(
        topic_id: Annotated[str, Field(description="Topic to inspect.")],
        window_seconds: Annotated[
            int, Field(description="How far back counts as present, in seconds (> 0).")
        ] = 300,
        limit: Annotated[int, Field(description="Most peers to list (> 0).")] = 200,
    ) -> Annotated[CallToolResult, TopicPresenceOutput]:
        now, peers = await bus.run(bus.topic_presence, topic_id, window_seconds, limit)
        out = TopicPresenceOutput(
            topic_id=topic_id,
            window_seconds=window_seconds,
            limit=limit,
            now=now,
            peers=peers,
            count=len(peers),
        )
        return ok(out, render.presence(window_seconds, peers))

    @server.tool(
        description=(
            "Reset or set your server-side cursor on a topic. last_seq=0 replays the whole "
            "history on the next sync."
        )
    )
    async def cursor_reset(
        topic_id: Annotated[str, Field(description="Topic whose cursor to move.")],
        ctx: Context,
        last_seq: Annotated[int, Field(description="New cursor (0 .. the topic's last seq).")] = 0,
        agent_name: Annotated[
            str | None,
            Field(description="Which of your joined names (default: the one you joined last)."),
        ] = None,
    ) -> Annotated[CallToolResult, CursorResetOutput]:
        agent = ids.resolve(session_key(ctx), str(topic_id), agent_name)
        cursor = await bus.run(bus.cursor_reset, topic_id, agent, last_seq)
        out = CursorResetOutput(topic_id=topic_id, agent_name=agent, cursor=cursor)
        return ok(
            out,
            f'Cursor set: topic_id="{topic_id}" agent_name="{agent}" last_seq={cursor.last_seq}',
        )

    @server.tool(
        description=(
            "Search messages across topics or in one topic: 'fts' (keywords and identifiers), "
            "'semantic' (meaning) or 'hybrid' (both, the default). Read-only; no join needed."
        )
    )
    async def messages_search(
        query: Annotated[str, Field(description="What to look for (any text).")],
        topic_id: Annotated[
            str | None, Field(description="Limit the search to this topic.")
        ] = None,
        mode: Annotated[
            Literal["hybrid", "fts", "semantic"], Field(description="Search mode.")
        ] = "hybrid",
        limit: Annotated[int, Field(description="Most results to return (> 0).")] = 20,
        model: Annotated[
            str | None, Field(description="llm embedding model id for semantic/hybrid.")
        ] = None,
        include_content: Annotated[
            bool, Field(description="Include each message's full content_markdown.")
        ] = False,
        sender: Annotated[
            str | None, Field(description="Only messages from this sender (agent name).")
        ] = None,
        message_type: Annotated[
            str | None, Field(description="Only messages of this type (e.g. 'decision').")
        ] = None,
        created_after: Annotated[
            str | float | None,
            Field(
                description="Only messages created after this ISO 8601 time, unix seconds "
                "or duration ago ('2d', '90m')."
            ),
        ] = None,
        created_before: Annotated[
            str | float | None,
            Field(
                description="Only messages created before this ISO 8601 time, unix seconds "
                "or duration ago ('2d', '90m')."
            ),
        ] = None,
    ) -> Annotated[CallToolResult, MessagesSearchOutput]:
        scope = caller_scope()
        wanted = limit
        if scope.topics is not None and topic_id is None and type(limit) is int and limit >= 1:
            wanted = 500  # over-fetch: results outside the token's scope are dropped below
        results, warnings = await bus.run(
            bus.search,
            query,
            topic_id=topic_id,
            mode=mode,
            limit=wanted,
            model=model,
            include_content=include_content,
            sender=sender,
            message_type=message_type,
            created_after=created_after,
            created_before=created_before,
        )
        results = scope.visible(results, id_of=lambda r: r.topic_id, name_of=lambda r: r.topic_name)
        results = results[:limit]
        out = MessagesSearchOutput(
            query=query,
            mode=mode,
            topic_id=topic_id,
            include_content=include_content,
            results=results,
            count=len(results),
            warnings=warnings or None,
        )
        notes = [w.message or w.code for w in warnings]
        return ok(out, render.search(mode, results, notes=notes, **text_opts))
