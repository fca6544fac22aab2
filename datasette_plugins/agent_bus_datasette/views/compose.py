"""POST /…/topics/<topic>/post[.json]: a person posts or replies (or previews) from the page.

The body goes through the same validator as ``sync``'s outbox (``Bus.check_outbox``)
and the same insert as ``agent-bus send`` (``Bus.post``), so agents waiting in
``sync`` wake at once. Without JavaScript the form posts here and is redirected back to
the new message; with it, the page posts ``.json`` and the live poll shows the message.
"""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import Response

from agent_bus import admin
from agent_bus.errors import BusError

from .. import render
from ..access import NAME_COOKIE, check_write, scope_of
from .common import base, json_response, open_bus, resolve_topic, status_for, wants_json
from .envelopes import PostOutput, PreviewOutput
from .thread import render_thread

NAME_MAX_AGE = 365 * 24 * 3600


def form_fields(form: dict[str, Any]) -> dict[str, str]:
    return {
        "sender": str(form.get("sender") or "").strip(),
        "message_type": str(form.get("message_type") or "").strip() or "message",
        "reply_to": str(form.get("reply_to") or "").strip(),
        "content": str(form.get("content_markdown") or ""),
        "reply_label": str(form.get("reply_label") or "").strip() or None,
    }


def check(bus: Any, topic_id: str, fields: dict[str, str]) -> list[Any]:
    """The form as outbox items, through sync's own validator (sizes, type, reply target)."""
    item: dict[str, Any] = {
        "content_markdown": fields["content"],
        "message_type": fields["message_type"],
    }
    if fields["reply_to"]:
        item["reply_to"] = admin.reply_ref(bus, topic_id, fields["reply_to"])
    return bus.check_outbox([item])


async def post_message(datasette: Any, request: Any) -> Response:
    db, bus = await open_bus(datasette, request)
    form = await request.post_vars()
    check_write(datasette, request, form)
    scope = scope_of(request)
    topic = await resolve_topic(bus, request.url_vars["topic"], scope)
    fields = form_fields(form)
    preview = form.get("intent") == "preview"
    try:
        if not preview:
            scope.check_agent(fields["sender"])  # a token may post only as its agent names
        items = await bus.run(check, bus, topic.topic_id, fields)
        if preview:
            html = render.markdown_html(items[0].content_markdown)
            if wants_json(request):
                return json_response(datasette, PreviewOutput(html=str(html)))
            return await render_thread(
                datasette, request, db, bus, topic, compose={**fields, "preview": html}
            )
        sent = await bus.run(bus.post, topic.topic_id, fields["sender"], items)
    except BusError as exc:
        if wants_json(request):
            raise
        # Shown above the form with everything typed kept; nothing was stored.
        compose = {**fields, "error": exc.message}
        return await render_thread(
            datasette, request, db, bus, topic, compose=compose, status=status_for(exc)
        )
    msg = sent[0].message
    url = f"{base(datasette, db)}/topics/{topic.topic_id}"
    if wants_json(request):
        response = json_response(
            datasette, PostOutput(topic_id=topic.topic_id, sent=sent, url=f"{url}#m-{msg.seq}")
        )
    else:
        datasette.add_message(request, f"Posted #{msg.seq} as {msg.sender}.")
        response = Response.redirect(f"{url}#m-{msg.seq}", status=303)
    response.set_cookie(NAME_COOKIE, msg.sender, max_age=NAME_MAX_AGE, samesite="strict")
    return response
