"""Messages as the templates show them: shared by the thread page and its live poll.

Reads run on the bus's worker pool; ``decorate`` gathers in one read transaction
what a window of messages needs around it (quoted parents, replies, counts).
"""

from __future__ import annotations

import json
from typing import Any

from agent_bus.models import Message, TopicSummary
from agent_bus.service.access import Scope
from agent_bus.store import web as store_web

from .. import render
from ..state import BusDatabase
from .common import base

PRESENCE_WINDOW = 300
QUOTE_CHARS = 220


def activity(topic: TopicSummary) -> float:
    return topic.last_message_at or topic.created_at


def decorate(bus: Any, tid: str, msgs: list[Message]) -> dict[str, Any]:
    """Parents, replies, stats, senders, types and presence around a window of messages."""
    ids = [m.message_id for m in msgs]
    in_window = {m.message_id: m for m in msgs}
    wanted = sorted({m.reply_to for m in msgs if m.reply_to and m.reply_to not in in_window})

    def tx(conn: Any) -> dict[str, Any]:
        parents = dict(in_window)
        parents.update(store_web.messages_by_ids(conn, wanted))
        return {
            "parents": parents,
            "replies": store_web.replies_to(conn, tid, ids),
            "stats": store_web.thread_stats(conn, tid),
            "senders": store_web.senders(conn, tid),
            "types": store_web.type_counts(conn, tid),
        }

    out = bus.read(tx)
    out["messages"] = msgs
    out["now"], out["peers"] = bus.topic_presence(tid, window_seconds=PRESENCE_WINDOW)
    return out


def quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat[:QUOTE_CHARS] + ("…" if len(flat) > QUOTE_CHARS else "")


def quote_block(text: str, limit: int = 400) -> str:
    """The start of a message as a markdown quote (``> `` lines), for a reply."""
    lines: list[str] = []
    used = 0
    for line in text.strip().splitlines():
        if used + len(line) > limit:
            lines.append(line[: max(0, limit - used)].rstrip() + "…")
            break
        lines.append(line)
        used += len(line)
    return "\n".join(("> " + line).rstrip() for line in lines)


def message_view(
    root: str,
    msg: Message,
    *,
    parents: dict[str, Message],
    replies: dict[str, list[tuple[str, int, str]]],
    window: set[int],
    now: float,
) -> dict[str, Any]:
    """What the message template needs: the model plus rendered, escaped parts."""
    parent = parents.get(msg.reply_to) if msg.reply_to else None
    parent_view = None
    if msg.reply_to:
        if parent is None:
            parent_view = {"missing": True, "message_id": msg.reply_to}
        else:
            parent_view = {
                "missing": False,
                "seq": parent.seq,
                "sender": parent.sender,
                "href": f"#m-{parent.seq}"
                if parent.seq in window
                else f"{root}/messages/{parent.message_id}",
                "quote": quote(parent.content_markdown),
            }
    reply_links = [
        {
            "seq": seq,
            "sender": sender,
            "href": f"#m-{seq}" if seq in window else f"{root}/messages/{mid}",
        }
        for mid, seq, sender in replies.get(msg.message_id, [])
    ]
    extra = {
        "message_id": msg.message_id,
        "client_message_id": msg.client_message_id,
        "metadata": msg.metadata,
    }
    return {
        "m": msg,
        "body": render.markdown_html(msg.content_markdown),
        "time": render.local_time(msg.created_at),
        "iso": render.iso_time(msg.created_at),
        "ago": render.ago(msg.created_at, now),
        "initials": render.initials(msg.sender),
        "colour": render.colour(msg.sender),
        "permalink": f"{root}/messages/{msg.message_id}",
        "parent": parent_view,
        "replies": reply_links,
        "details": json.dumps(
            {k: v for k, v in extra.items() if v is not None}, indent=2, ensure_ascii=False
        ),
        "has_metadata": bool(msg.metadata),
    }


def message_views(
    datasette: Any, db: BusDatabase, msgs: list[Message], data: dict[str, Any]
) -> list[dict[str, Any]]:
    """Template views of a window of messages; ``data`` is what `decorate` returned."""
    root = base(datasette, db)
    window = {m.seq for m in msgs}
    return [
        message_view(
            root,
            m,
            parents=data["parents"],
            replies=data["replies"],
            window=window,
            now=data["now"],
        )
        for m in msgs
    ]


def presence_view(peers: list[Any], now: float) -> list[dict[str, Any]]:
    return [
        {
            "agent_name": p.agent_name,
            "last_seq": p.last_seq,
            "ago": render.ago(p.updated_at, now),
            "colour": render.colour(p.agent_name),
            "initials": render.initials(p.agent_name),
        }
        for p in peers
    ]


def recent_topics(bus: Any, scope: Scope, limit: int = 50) -> list[TopicSummary]:
    """Topics by latest activity (the thread page's sidebar), those ``scope`` covers."""
    topics = visible_topics(scope, bus.topic_list(status="all"))
    return sorted(topics, key=activity, reverse=True)[:limit]


def visible_topics(scope: Scope, topics: list[TopicSummary]) -> list[TopicSummary]:
    return scope.visible(topics, id_of=lambda t: t.topic_id, name_of=lambda t: t.name)
