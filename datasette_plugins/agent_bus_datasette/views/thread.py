"""/-/agent-bus/<db>/topics/<topic>: one conversation, windowed, live while at its end.

The page context is assembled from small parts (``window_context``, ``inspector_context``,
``sidebar_context``) so a new panel is one more function and one more template include.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from datasette.utils.asgi import Response

from agent_bus.models import Message, Topic

from .. import render
from ..access import can_write, default_name, scope_of
from .common import (
    base,
    chrome,
    int_arg,
    json_response,
    open_bus,
    page,
    resolve_topic,
    wants_json,
)
from .envelopes import SenderStat, ThreadOutput, ThreadStats, ThreadWindow
from .messages import activity, decorate, message_views, presence_view, quote_block, recent_topics
from .related import related_context

PAGE = 100
MAX_PAGE = 500
MESSAGE_TYPES = ("message", "question", "answer", "review", "status", "approval", "blocker", "note")
TOPIC_ACTIONS = ("close", "reopen", "rename", "delete")


def read_window(bus: Any, topic: Topic, args: dict[str, int | None], limit: int) -> dict:
    """The messages around ``at``, before ``before``, after ``after``, or the latest."""
    tid = topic.topic_id
    at, before, after = args["at"], args["before"], args["after"]
    if at is not None:
        earlier = bus.messages(tid, before_seq=at, limit=limit // 2, newest_first=True)[::-1]
        later = bus.messages(tid, after_seq=at - 1, limit=limit - len(earlier))
        msgs = earlier + later
    elif before is not None:
        msgs = bus.messages(tid, before_seq=before, limit=limit, newest_first=True)[::-1]
    elif after is not None:
        msgs = bus.messages(tid, after_seq=after, limit=limit)
    else:
        msgs = bus.messages(tid, limit=limit, newest_first=True)[::-1]
    return decorate(bus, tid, msgs)


def window_of(msgs: list[Message], stats: dict[str, Any], limit: int) -> ThreadWindow:
    first = msgs[0].seq if msgs else 0
    last = msgs[-1].seq if msgs else 0
    return ThreadWindow(
        first_seq=first,
        last_seq=last,
        has_earlier=bool(msgs) and first > stats["first_seq"],
        has_later=bool(msgs) and last < stats["last_seq"],
        limit=limit,
    )


def window_context(turl: str, window: ThreadWindow, stats: dict[str, Any]) -> dict[str, Any]:
    """Paging links and whether the page follows new messages live."""
    return {
        "earlier_url": f"{turl}?{urlencode({'before': window.first_seq})}"
        if window.has_earlier
        else None,
        "later_url": f"{turl}?{urlencode({'after': window.last_seq})}"
        if window.has_later
        else None,
        "latest_url": turl if window.has_later else None,
        "live": not window.has_later,
        "last_seq": window.last_seq or stats["last_seq"],
        "poll_url": f"{turl}/poll.json",
    }


def inspector_context(
    datasette: Any, db: Any, topic: Topic, data: dict[str, Any]
) -> dict[str, Any]:
    """The right-hand panel: status, counts, presence, participants, types, data links."""
    now, stats = data["now"], data["stats"]
    return {
        "presence": presence_view(data["peers"], now),
        "senders": [
            {**s, "colour": render.colour(s["sender"]), "ago": render.ago(s["last_at"], now)}
            for s in data["senders"]
        ],
        "types": data["types"],
        "created": render.local_time(topic.created_at),
        "closed": render.local_time(topic.closed_at),
        "last_activity": render.ago(stats["last_message_at"] or topic.created_at, now),
        "table_url": datasette.urls.table(db.name, "messages")
        + "?"
        + urlencode({"topic_id": topic.topic_id, "_sort": "seq"}),
        "topic_metadata": json.dumps(topic.metadata, indent=2, ensure_ascii=False)
        if topic.metadata
        else None,
    }


def sidebar_context(root: str, topic: Topic, topics: list[Any], now: float) -> dict[str, Any]:
    return {
        "sidebar": [
            {
                "t": t,
                "url": f"{root}/topics/{t.topic_id}",
                "ago": render.ago(activity(t), now),
                "current": t.topic_id == topic.topic_id,
            }
            for t in topics
        ]
    }


def compose_context(
    datasette: Any, request: Any, bus: Any, turl: str, topic: Topic, compose: dict[str, Any]
) -> dict[str, Any]:
    """The reply form: who posts, what type, in reply to what, and any error or preview."""
    writable = can_write(datasette, request)
    return {
        "can_write": writable,
        "topic_open": topic.status == "open",
        "compose": {
            "post_url": f"{turl}/post",
            "sender": compose.get("sender") or default_name(request, bus.settings),
            "message_type": compose.get("message_type") or "message",
            "reply_to": compose.get("reply_to") or "",
            "reply_label": compose.get("reply_label"),
            "content": compose.get("content") or "",
            "error": compose.get("error"),
            "preview": compose.get("preview"),
            "types": MESSAGE_TYPES,
        },
        "manage": {action: f"{turl}/{action}" for action in TOPIC_ACTIONS},
    }


async def reply_prefill(bus: Any, topic: Topic, message_id: str | None) -> dict[str, Any]:
    """``?reply_to=<id>`` (the Reply button without JavaScript): target and a quote."""
    if not message_id:
        return {}
    parent = await bus.run(bus.get_message, message_id)
    if parent is None or parent.topic_id != topic.topic_id:
        return {}
    return {
        "reply_to": parent.message_id,
        "reply_label": f"#{parent.seq} {parent.sender}",
        "content": quote_block(parent.content_markdown) + "\n\n",
    }


async def render_thread(
    datasette: Any,
    request: Any,
    db: Any,
    bus: Any,
    topic: Topic,
    *,
    compose: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    """The thread page (or its JSON twin) for the request's window arguments."""
    limit = min(int_arg(request, "limit", PAGE, minimum=1) or PAGE, MAX_PAGE)
    args = {k: int_arg(request, k, None) for k in ("at", "before", "after")}
    data = await bus.run(read_window, bus, topic, args, limit)
    msgs: list[Message] = data["messages"]
    stats = data["stats"]
    window = window_of(msgs, stats, limit)
    root = base(datasette, db)
    turl = f"{root}/topics/{topic.topic_id}"
    if wants_json(request):
        return json_response(
            datasette,
            ThreadOutput(
                database=db.name,
                topic=topic,
                stats=ThreadStats(**stats),
                window=window,
                messages=msgs,
                presence=data["peers"],
                senders=[SenderStat(**s) for s in data["senders"]],
            ),
        )
    if compose is None:
        compose = await reply_prefill(bus, topic, request.args.get("reply_to"))
    scope = scope_of(request)
    topics = await bus.run(recent_topics, bus, scope)
    related = await bus.run(related_context, bus, root, topic.topic_id, scope)
    return await page(
        datasette,
        request,
        "agent_bus_thread.html",
        {
            **chrome(datasette, db),
            "topic": topic,
            "turl": turl,
            "stats": stats,
            "messages": message_views(datasette, db, msgs, data),
            **window_context(turl, window, stats),
            **inspector_context(datasette, db, topic, data),
            **sidebar_context(root, topic, topics, data["now"]),
            **related,
            **compose_context(datasette, request, bus, turl, topic, compose),
            "json_url": f"{turl}.json",
            "export_urls": {fmt: f"{turl}/export.{fmt}" for fmt in ("md", "json", "jsonl")},
            "target": args["at"],
        },
        status=status,
    )


async def thread(datasette: Any, request: Any) -> Response:
    db, bus = await open_bus(datasette, request)
    topic = await resolve_topic(bus, request.url_vars["topic"], scope_of(request))
    return await render_thread(datasette, request, db, bus, topic)
