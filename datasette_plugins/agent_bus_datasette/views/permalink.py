"""/…/messages/<id>: redirect to the thread window around the message; ``.md``: its source."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from datasette.utils.asgi import Response

from agent_bus.models import Message
from agent_bus.service.access import Scope

from ..access import scope_of
from ..state import BusDatabase
from .common import NotFound, base, open_bus, security_headers

MARKDOWN = "text/markdown; charset=utf-8"


async def find_message(datasette: Any, request: Any) -> tuple[BusDatabase, Message]:
    """The message the URL names. Raises: NotFound."""
    db, bus = await open_bus(datasette, request)
    mid = request.url_vars["message_id"]
    msg = await bus.run(bus.get_message, mid)
    scope = scope_of(request)
    if msg is None or (scope.topics is not None and not await bus.run(_covers, bus, scope, msg)):
        raise NotFound(f"No message with id {mid!r}.")  # outside a token's topics: the same
    return db, msg


def _covers(bus: Any, scope: Scope, msg: Message) -> bool:
    topic = bus.get_topic(msg.topic_id)
    return scope.allows(topic.topic_id, topic.name)


async def permalink(datasette: Any, request: Any) -> Response:
    db, msg = await find_message(datasette, request)
    target = f"{base(datasette, db)}/topics/{msg.topic_id}?{urlencode({'at': msg.seq})}"
    return Response.redirect(f"{target}#m-{msg.seq}")


async def message_markdown(datasette: Any, request: Any) -> Response:
    """/…/messages/<id>.md: a message's markdown source ("copy as markdown")."""
    _, msg = await find_message(datasette, request)
    headers = security_headers(datasette)
    return Response(msg.content_markdown, headers=headers, content_type=MARKDOWN)
