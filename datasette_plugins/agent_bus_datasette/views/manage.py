"""POST forms that manage topics: create, close (with a reason), reopen, rename, delete.

The same service functions as ``agent-bus topics create/close/rename/delete``
(``Bus.topic_create``, ``Bus.topic_close``, ``Bus.topic_reopen``, ``agent_bus.admin``);
delete needs the topic's name typed exactly. Each answers with a redirect and a flash message.
"""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import Response

from agent_bus import admin
from agent_bus.errors import Forbidden, InvalidArgument

from ..access import check_write, scope_of
from .common import base, open_bus, resolve_topic


async def _start(datasette: Any, request: Any) -> tuple[Any, Any, dict[str, Any]]:
    db, bus = await open_bus(datasette, request)
    form = await request.post_vars()
    check_write(datasette, request, form)
    return db, bus, form


def _done(datasette: Any, request: Any, url: str, message: str) -> Response:
    datasette.add_message(request, message, datasette.INFO)
    return Response.redirect(url, status=303)


async def create_topic(datasette: Any, request: Any) -> Response:
    db, bus, form = await _start(datasette, request)
    name = str(form.get("name") or "").strip()
    if not name:
        raise InvalidArgument("name the new topic (e.g. review-auth)", field="name")
    scope_of(request).check_new_topic(name)
    topic, created = await bus.run(bus.topic_create, name)
    url = f"{base(datasette, db)}/topics/{topic.topic_id}"
    what = "Created" if created else "An open topic of that name exists; opened"
    return _done(datasette, request, url, f"{what} {topic.name}.")


async def topic_action(datasette: Any, request: Any) -> Response:
    db, bus, form = await _start(datasette, request)
    scope = scope_of(request)
    topic = await resolve_topic(bus, request.url_vars["topic"], scope)
    action = request.url_vars["action"]
    if action in ("rename", "delete") and scope.topics is not None:
        # Renaming or deleting changes which tokens see a topic: not for a topic-limited one.
        raise Forbidden(f"a token limited to some topics may not {action} topics")
    root = base(datasette, db)
    url = f"{root}/topics/{topic.topic_id}"
    tid = topic.topic_id
    if action == "close":
        reason = str(form.get("reason") or "").strip() or None
        _, already = await bus.run(bus.topic_close, tid, reason)
        note = "was already closed" if already else "closed" + (f": {reason}" if reason else "")
        return _done(datasette, request, url, f"{topic.name} {note}.")
    if action == "reopen":
        _, already = await bus.run(bus.topic_reopen, tid)
        return _done(
            datasette, request, url, f"{topic.name} {'is open' if already else 'reopened'}."
        )
    if action == "rename":
        rewrite = form.get("rewrite_messages") in ("1", "on", "true")
        report = await bus.run(
            admin.rename_topic, bus, tid, str(form.get("new_name") or ""), rewrite_messages=rewrite
        )
        note = (
            f"Renamed {report.old_name} to {report.topic.name}"
            + (f" ({report.messages_rewritten} messages rewritten)" if rewrite else "")
            if report.changed
            else f"{topic.name} already has that name"
        )
        return _done(datasette, request, url, note + ".")
    # delete: the name typed exactly, as a person would confirm at the CLI's prompt
    if str(form.get("confirm_name") or "") != topic.name:
        raise InvalidArgument(
            f"type the topic's name ({topic.name}) exactly to delete it; nothing was deleted",
            field="confirm_name",
        )
    report = await bus.run(admin.delete_topic, bus, tid)
    return _done(
        datasette,
        request,
        root,
        f"Deleted {report.name}: {report.messages} messages, {report.cursors} cursors.",
    )
