"""/…/messages/<id>: redirect to the thread window around the message; ``.md``: its source."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from datasette.utils.asgi import Response

from .common import NotFound, base, open_bus, security_headers

MARKDOWN = "text/markdown; charset=utf-8"


async def permalink(datasette: Any, request: Any) -> Response:
    db, bus = await open_bus(datasette, request)
    mid = request.url_vars["message_id"]
    msg = await bus.run(bus.get_message, mid)
    if msg is None:
        raise NotFound(f"No message with id {mid!r}.")
    target = f"{base(datasette, db)}/topics/{msg.topic_id}?{urlencode({'at': msg.seq})}"
    return Response.redirect(f"{target}#m-{msg.seq}")


async def message_markdown(datasette: Any, request: Any) -> Response:
    """/…/messages/<id>.md: a message's markdown source ("copy as markdown")."""
    _, bus = await open_bus(datasette, request)
    mid = request.url_vars["message_id"]
    msg = await bus.run(bus.get_message, mid)
    if msg is None:
        raise NotFound(f"No message with id {mid!r}.")
    headers = security_headers(datasette)
    return Response(msg.content_markdown, headers=headers, content_type=MARKDOWN)
