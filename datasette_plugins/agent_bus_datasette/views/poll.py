"""/…/topics/<topic>/poll.json: the thread page's live updates (long-poll, JSON + HTML)."""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import Response

from agent_bus.models import Message

from ..access import can_write, scope_of
from .common import int_arg, json_only, json_response, open_bus, resolve_topic
from .envelopes import PollOutput
from .messages import decorate, message_views, presence_view
from .thread import MAX_PAGE, PAGE

MAX_WAIT = 25.0


def _poll(bus: Any, topic_id: str, after: int, limit: int) -> dict[str, Any]:
    topic = bus.get_topic(topic_id)
    msgs = bus.messages(topic_id, after_seq=after, limit=limit)
    out = decorate(bus, topic_id, msgs)
    out["topic"] = topic
    return out


@json_only
async def poll(datasette: Any, request: Any) -> Response:
    """Messages after ``after`` (waits up to ``wait`` seconds for one), with their HTML."""
    db, bus = await open_bus(datasette, request)
    topic = await resolve_topic(bus, request.url_vars["topic"], scope_of(request))
    after = int_arg(request, "after", 0) or 0
    wait = min(float(int_arg(request, "wait", 0) or 0), MAX_WAIT)
    limit = min(int_arg(request, "limit", PAGE, minimum=1) or PAGE, MAX_PAGE)
    if wait > 0:
        await bus.wait_for_messages(topic.topic_id, after, wait)
    data = await bus.run(_poll, bus, topic.topic_id, after, limit)
    msgs: list[Message] = data["messages"]
    views = message_views(datasette, db, msgs, data)
    html = ""
    if views:
        context = {
            "messages": views,
            "can_write": can_write(datasette, request),
            "topic_open": data["topic"].status == "open",
        }
        html = await datasette.render_template("agent_bus_messages.html", context, request=request)
    presence_html = await datasette.render_template(
        "agent_bus_presence.html",
        {"presence": presence_view(data["peers"], data["now"])},
        request=request,
    )
    return json_response(
        datasette,
        PollOutput(
            topic_id=topic.topic_id,
            status=data["topic"].status,
            last_seq=msgs[-1].seq if msgs else after,
            has_more=bool(msgs) and msgs[-1].seq < data["stats"]["last_seq"],
            message_count=data["stats"]["message_count"],
            messages=msgs,
            presence=data["peers"],
            html=html,
            presence_html=presence_html,
        ),
    )
