"""The sync tool: send and receive on a joined topic, long-polling when nothing is new."""

import json
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from agent_bus.bus import Bus
from agent_bus.errors import InvalidArgument
from agent_bus.mcp import render, session_binding
from agent_bus.mcp.identities import Identities, session_key
from agent_bus.mcp.progress import with_progress
from agent_bus.mcp.results import ignored_warning, ok
from agent_bus.models import SyncOutput
from agent_bus.settings import BusSettings


def register_sync(server: MCPServer, bus: Bus, settings: BusSettings, ids: Identities) -> None:
    """Add the sync tool to ``server``."""
    cap = settings.max_sync_items
    default_items = min(20, cap)
    default_wait = settings.sync_default_wait_seconds
    progress_every = settings.sync_progress_seconds
    text_opts = dict(
        include_bodies=settings.tool_text_include_bodies, max_chars=settings.tool_text_max_chars
    )

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
                    "Long-poll up to this many seconds when nothing is new; 0 = return at once. "
                    f"Omitted: {default_wait} s, within every client's default request timeout."
                )
            ),
        ] = default_wait,
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
        agent = ids.resolve(session_key(ctx), str(topic_id), agent_name)
        items = bus.check_outbox(outbox)
        ignored = bus.unknown_outbox_fields(outbox)
        await session_binding.record(bus, ids.bindings, ctx, str(topic_id), agent)
        waiting = bus.async_sync(
            topic_id,
            agent,
            items,
            max_items=max_items,
            include_self=include_self,
            wait_seconds=wait_seconds,
            auto_advance=auto_advance,
            ack_through=ack_through,
        )
        result = await with_progress(
            ctx, progress_every, wait_seconds, f"waiting for messages on {topic_id}", waiting
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
            warnings=(result.warnings + ignored_warning(ignored)) or None,
        )
        return ok(out, render.sync(result, **text_opts))
