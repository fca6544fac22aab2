"""The agent-bus MCP server: the ten tools of the agent-bus-mcp contract (spec v6.3).

Tool bodies validate nothing themselves and contain no SQL: they call the
`Bus` service and render its answer. Errors of the service (`BusError`) and
argument-type errors caught by the SDK become tool results with
``isError: true``, the stable code first in the text and in
``structuredContent.error`` — never a protocol failure, and the server keeps
serving.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import Field, ValidationError

from agent_bus import SPEC_VERSION, __version__
from agent_bus.bus import Bus
from agent_bus.errors import AgentNotJoined, BusError, DbBusy, InvalidArgument
from agent_bus.mcp import render
from agent_bus.models import (
    CursorResetOutput,
    ErrorInfo,
    MessagesSearchOutput,
    Output,
    PingOutput,
    SyncOutput,
    TopicCloseOutput,
    TopicCreateOutput,
    TopicJoinOutput,
    TopicListOutput,
    TopicPresenceOutput,
    TopicResolveOutput,
    Warning,
)
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


def ok(model: Output, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=model.wire()
    )


def error_result(code: str, message: str, extra: dict[str, Any] | None = None) -> CallToolResult:
    payload: dict[str, Any] = {"error": ErrorInfo(code=code, message=message).model_dump()}
    payload.update(extra or {})
    return CallToolResult(
        content=[TextContent(type="text", text=f"{code}: {message}")],
        structured_content=payload,
        is_error=True,
    )


def _bus_error(exc: BaseException | None) -> BusError | None:
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, BusError):
            return exc
        exc = exc.__cause__
        seen += 1
    return None


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"] if p not in ("arguments",)) or "arguments"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


class AgentBusServer(MCPServer):
    """MCPServer whose every failed call carries a stable error code."""

    async def run_stdio_async(self) -> None:
        from mcp.server.stdio import stdio_server

        from agent_bus.mcp.stdio import RepairedStdin

        async with stdio_server(stdin=RepairedStdin()) as (read_stream, write_stream):  # type: ignore[arg-type]
            await self._lowlevel_server.run(
                read_stream, write_stream, self._lowlevel_server.create_initialization_options()
            )

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            bus_exc = _bus_error(exc.__cause__)
            if bus_exc is not None:
                return error_result(bus_exc.code, bus_exc.message, _extras(bus_exc))
            if isinstance(exc.__cause__, ValidationError):
                return error_result(
                    InvalidArgument.code, f"invalid arguments: {_validation_message(exc.__cause__)}"
                )
            cause = exc.__cause__
            if cause is None:  # unknown tool and the like: the SDK's own message says it
                return error_result(InvalidArgument.code, str(exc))
            if _is_busy(cause):
                return error_result(DbBusy.code, "The database is busy; retry the call.")
            logger.exception("tool %s failed", name, exc_info=cause)
            return error_result(
                "INTERNAL_ERROR",
                f"{type(cause).__name__}: {cause}. Nothing was half-written; the server keeps "
                "serving. Please report this.",
            )


def _is_busy(exc: BaseException) -> bool:
    from agent_bus.store.connection import is_busy_error

    return is_busy_error(exc)


def _extras(exc: BusError) -> dict[str, Any]:
    keep = ("requested_agent_name", "suggested_agent_names", "candidates", "field")
    return {k: v for k, v in exc.details.items() if k in keep}


class Identities:
    """Which agent names each MCP session has joined on each topic (in memory).

    Per the contract, identities do not survive a server restart: clients call
    topic_join again (with their reclaim_token) after one.
    """

    def __init__(self) -> None:
        self._names: dict[tuple[int, str], dict[str, str]] = {}

    def remember(self, session: int, topic_id: str, agent_name: str, token: str) -> None:
        names = self._names.setdefault((session, topic_id), {})
        names.pop(agent_name, None)
        names[agent_name] = token  # last joined is the default identity

    def token(self, session: int, topic_id: str, agent_name: str) -> str | None:
        return self._names.get((session, topic_id), {}).get(agent_name)

    def resolve(self, session: int, topic_id: str, agent_name: str | None) -> str:
        names = self._names.get((session, topic_id), {})
        if agent_name is None:
            if not names:
                raise AgentNotJoined(
                    "Not joined to this topic in this session. Call topic_join(agent_name=..., "
                    "topic_id=...) first (pass your reclaim_token to keep an earlier name)."
                )
            return next(reversed(names))
        clean = agent_name.strip() if isinstance(agent_name, str) else agent_name
        if clean not in names:
            raise AgentNotJoined(
                f"This session has not joined the topic as {clean!r}. Call topic_join first "
                "(with your reclaim_token if the name is already yours)."
            )
        return clean


def _session_key(ctx: Context) -> int:
    """Identity of the client connection (one per process on stdio)."""
    try:
        session = ctx.session
    except (LookupError, ValueError, AttributeError):
        return 0
    # The SDK builds a ServerSession per request around one connection object.
    return id(getattr(session, "_connection", session))


def build_server(settings: BusSettings, bus: Bus | None = None) -> AgentBusServer:
    """The MCP server over one bus database."""
    bus = bus or Bus(settings)
    ids = Identities()
    server = AgentBusServer(
        name="agent-bus",
        instructions=INSTRUCTIONS,
        version=__version__,
        lifespan=_background_indexing(bus, settings),
    )
    cap = settings.max_sync_items
    default_items = min(20, cap)
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
        session = _session_key(ctx)
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
        ids.remember(session, joined.topic.topic_id, joined.agent_name, joined.reclaim_token)
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
        agent = ids.resolve(_session_key(ctx), str(topic_id), agent_name)
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
    ) -> Annotated[CallToolResult, MessagesSearchOutput]:
        results, warnings = await bus.run(
            bus.search,
            query,
            topic_id=topic_id,
            mode=mode,
            limit=limit,
            model=model,
            include_content=include_content,
        )
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

    @server.tool(
        description=(
            "Send and receive messages on a joined topic (delta-based, server-side cursor). "
            "Received bodies are in structuredContent.received[*].content_markdown and, maybe "
            "truncated, in the text output. With nothing new and wait_seconds > 0 it waits for "
            "the next message (long-poll)."
        )
    )
    async def sync(
        topic_id: Annotated[str, Field(description="Topic you joined with topic_join.")],
        ctx: Context,
        outbox: Annotated[
            list[dict[str, Any]] | dict[str, Any] | str | None,
            Field(
                description=(
                    "Messages to send. Each item: content_markdown (string, required), "
                    "message_type (string, default 'message'; use 'question' / 'answer'), "
                    "reply_to (message_id in this topic or null), metadata (object or null), "
                    "client_message_id (string or null; idempotency key for retries)."
                ),
                json_schema_extra={
                    "examples": [
                        [
                            {
                                "content_markdown": "Ready for review: see `src/app.py`.",
                                "message_type": "question",
                                "reply_to": None,
                                "metadata": {"files": ["src/app.py"]},
                                "client_message_id": "review-request-1",
                            }
                        ]
                    ]
                },
            ),
        ] = None,
        max_items: Annotated[
            int,
            Field(
                description=(
                    "Maximum number of items to return. Keep this small and no greater than "
                    f"{cap}; loop until has_more=false."
                ),
                ge=1,
                le=cap,
            ),
        ] = default_items,
        include_self: Annotated[bool, Field(description="Also return your own messages.")] = False,
        wait_seconds: Annotated[
            int,
            Field(
                description=(
                    "Long-poll up to this many seconds when nothing is new; 0 = return at once."
                )
            ),
        ] = 60,
        auto_advance: Annotated[
            bool, Field(description="Advance your cursor past what is returned.")
        ] = True,
        ack_through: Annotated[
            int | None,
            Field(description="With auto_advance=false: acknowledge messages up to this seq."),
        ] = None,
        agent_name: Annotated[
            str | None,
            Field(description="Which of your joined names to act as (default: the last joined)."),
        ] = None,
    ) -> Annotated[CallToolResult, SyncOutput]:
        if isinstance(outbox, str):
            try:
                outbox = json.loads(outbox.strip())
            except ValueError:
                raise InvalidArgument(
                    "outbox must be a list of objects; it was a string that is not valid JSON. "
                    "Pass an array directly.",
                    field="outbox",
                ) from None
        bus.check_sync_args(max_items, wait_seconds, include_self, auto_advance, ack_through)
        agent = ids.resolve(_session_key(ctx), str(topic_id), agent_name)
        items = bus.check_outbox(outbox)
        ignored = bus.unknown_outbox_fields(outbox)
        result = await bus.async_sync(
            topic_id,
            agent,
            items,
            max_items=max_items,
            include_self=include_self,
            wait_seconds=wait_seconds,
            auto_advance=auto_advance,
            ack_through=ack_through,
        )
        out = SyncOutput(
            topic_id=result.topic_id,
            agent_name=result.agent_name,
            status=result.status,  # type: ignore[arg-type]
            cursor=result.cursor,
            sent=result.sent,
            received=result.received,
            received_count=len(result.received),
            has_more=result.has_more,
            warnings=(result.warnings + _ignored_warning(ignored)) or None,
        )
        return ok(out, render.sync(result, **text_opts))

    _register_prompts(server)
    server.bus = bus  # type: ignore[attr-defined]
    return server


def _background_indexing(bus: Bus, settings: BusSettings) -> Any:
    """Lifespan: see that queued messages get embedded — never in this process by default.

    With ``embed_service`` on (the default) a small asyncio task looks, every
    ``embed_service_check_seconds``, for due jobs that no live indexing lease covers
    (one indexed SQL probe) and then starts the database's embedding service, detached;
    the model lives only there. With it off, the in-process `BackgroundIndexer` of old.
    Both start ``index_start_delay_seconds`` after start, off the cold-start path.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[dict[str, Any]]:
        worker: list[Any] = []
        task: asyncio.Task[None] | None = None
        handle = None
        if settings.embeddings_autoindex:
            if settings.embed_service and _service_supported():
                task = asyncio.create_task(_watch_index_queue(bus, settings))
            else:

                def start() -> None:
                    from agent_bus.embeddings.worker import (
                        BackgroundIndexer,
                        available_without_import,
                    )

                    if available_without_import(settings.embedding_model):
                        worker.append(BackgroundIndexer(bus).start())

                loop = asyncio.get_running_loop()
                handle = loop.call_later(settings.index_start_delay_seconds, start)
        try:
            yield {}
        finally:
            if handle is not None:
                handle.cancel()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for w in worker:
                await asyncio.to_thread(w.stop)

    return lifespan


def _service_supported() -> bool:
    from agent_bus.embeddings.client import supported

    return supported()


async def _watch_index_queue(bus: Bus, settings: BusSettings) -> None:
    """Start the embedding service when due jobs wait and no live lease holder takes them."""
    await asyncio.sleep(settings.index_start_delay_seconds)
    from agent_bus.embeddings.worker import LEASE_NAME, available_without_import

    if not available_without_import(settings.embedding_model):
        return
    from agent_bus.embeddings import client
    from agent_bus.store import embeddings as estore

    def needed(conn: Any) -> bool:
        return estore.service_needed(conn, LEASE_NAME, time.time())

    while True:
        try:
            if await bus.run(bus.read, needed):
                await bus.run(client.spawn, settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a background check: log, look again later
            logger.warning("embedding service check failed: %s", exc)
        await asyncio.sleep(settings.embed_service_check_seconds)


def _ignored_warning(fields: list[str]) -> list[Warning]:
    if not fields:
        return []
    return [
        Warning(
            code="UNKNOWN_FIELDS_IGNORED",
            message=f"ignored unknown outbox field(s): {', '.join(fields)}",
            context={"fields": fields},
        )
    ]


def _register_prompts(server: MCPServer) -> None:
    try:
        from agent_bus.prompts import register_prompts
    except ImportError:  # prompts module not present in this build
        return
    register_prompts(server)
