"""Topics as MCP resources: ``agent-bus://topics/{topic_id}``, a readable digest.

``resources/list`` names the open topics (newest first); ``resources/read`` of
one answers a short Markdown digest of its latest messages. An unknown topic is
the client's mistake: -32602, like any unknown resource URI.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import Resource

from agent_bus.bus import Bus
from agent_bus.errors import BusError
from agent_bus.models import Message, Topic
from agent_bus.store import queries

URI_PREFIX = "agent-bus://topics/"
TEMPLATE = URI_PREFIX + "{topic_id}"
DIGEST_MESSAGES = 20
BODY_CHARS = 600
LIST_LIMIT = 200


def topic_uri(topic_id: str) -> str:
    return URI_PREFIX + topic_id


def topic_of(uri: str) -> str | None:
    """The topic id of a topic resource URI, else None."""
    return uri[len(URI_PREFIX) :] if uri.startswith(URI_PREFIX) else None


def register_resources(server: MCPServer, bus: Bus) -> None:
    """Add the topic resource template to ``server``."""

    @server.resource(
        TEMPLATE,
        name="topic",
        title="agent-bus topic",
        description=(
            f"The latest {DIGEST_MESSAGES} messages of a topic as Markdown (bodies cut at "
            f"{BODY_CHARS} characters). Read messages with sync; subscribe to hear of new ones."
        ),
        mime_type="text/markdown",
    )
    async def topic_resource(topic_id: str) -> str:
        try:
            topic, latest = await bus.run(_latest, bus, topic_id)
        except BusError as exc:
            raise ResourceNotFoundError(
                f"Unknown resource {topic_uri(topic_id)}: {exc.message}"
            ) from None
        return digest(topic, latest)


async def list_topic_resources(bus: Bus) -> list[Resource]:
    """One resource per open topic, newest first (at most LIST_LIMIT)."""
    topics = await bus.run(bus.topic_list, "open", None, LIST_LIMIT)
    return [
        Resource(
            uri=topic_uri(t.topic_id),
            name=t.name,
            title=f"Topic {t.name}",
            description=f"{t.message_count} messages, last #{t.last_seq}",
            mime_type="text/markdown",
        )
        for t in topics
    ]


def _latest(bus: Bus, topic_id: str) -> tuple[Topic, list[Message]]:
    topic = bus.get_topic(topic_id)
    latest = bus.db.read(
        lambda c: queries.messages_range(
            c, topic.topic_id, limit=DIGEST_MESSAGES, newest_first=True
        )
    )
    return topic, latest[::-1]


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def digest(topic: Topic, messages: list[Message]) -> str:
    """The Markdown a client shows for a topic resource."""
    lines = [f"# {topic.name}", "", f"topic_id `{topic.topic_id}` · {topic.status}"]
    if not messages:
        lines += ["", "No messages yet."]
    for m in messages:
        body = m.content_markdown
        if len(body) > BODY_CHARS:
            body = body[:BODY_CHARS].rstrip() + " …"
        reply = f" ↩ {m.reply_to}" if m.reply_to else ""
        lines += ["", f"## #{m.seq} {m.sender} · {m.message_type} · {_utc(m.created_at)}{reply}"]
        lines += ["", body]
    lines += ["", f"Read and answer with sync(topic_id={topic.topic_id!r}) after topic_join."]
    return "\n".join(lines) + "\n"
