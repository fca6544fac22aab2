"""/…/messages/<id>: redirect to the thread window around the message."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from datasette.utils.asgi import Response

from .common import NotFound, base, open_bus


async def permalink(datasette: Any, request: Any) -> Response:
    db, bus = await open_bus(datasette, request)
    mid = request.url_vars["message_id"]
    msg = await bus.run(bus.get_message, mid)
    if msg is None:
        raise NotFound(f"No message with id {mid!r}.")
    target = f"{base(datasette, db)}/topics/{msg.topic_id}?{urlencode({'at': msg.seq})}"
    return Response.redirect(f"{target}#m-{msg.seq}")
