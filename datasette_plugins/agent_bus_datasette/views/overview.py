"""/-/agent-bus/<db>: every topic, newest activity first, with counts and presence."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from datasette.utils.asgi import Response

from agent_bus.service.access import Scope
from agent_bus.store import web as store_web

from .. import render
from ..access import can_write, scope_of
from .common import base, chrome, json_response, open_bus, page, wants_json
from .envelopes import OverviewOutput, OverviewTopic
from .messages import PRESENCE_WINDOW, activity, visible_topics

STATUSES = ("open", "closed", "all")


def _overview(bus: Any, status: str, scope: Scope) -> dict[str, Any]:
    now = time.time()
    topics = visible_topics(scope, bus.topic_list(status=status))
    topics = sorted(topics, key=activity, reverse=True)
    present = bus.read(lambda c: store_web.presence_by_topic(c, now - PRESENCE_WINDOW))
    return {"now": now, "topics": topics, "present": present}


async def overview(datasette: Any, request: Any) -> Response:
    db, bus = await open_bus(datasette, request)
    status = request.args.get("status") or "all"
    if status not in STATUSES:
        status = "all"
    scope = scope_of(request)
    data = await bus.run(_overview, bus, status, scope)
    now, present = data["now"], data["present"]
    root = base(datasette, db)
    if wants_json(request):
        topics = [
            OverviewTopic(
                **t.model_dump(),
                last_activity_at=activity(t),
                present=[name for name, _ in present.get(t.topic_id, [])],
                url=f"{root}/topics/{t.topic_id}",
            )
            for t in data["topics"]
        ]
        return json_response(
            datasette, OverviewOutput(database=db.name, status=status, topics=topics)
        )
    rows = [
        {
            "t": t,
            "url": f"{root}/topics/{t.topic_id}",
            "ago": render.ago(activity(t), now),
            "last": render.local_time(activity(t)),
            "created": render.local_time(t.created_at),
            "present": [
                {"name": n, "colour": render.colour(n), "initials": render.initials(n)}
                for n, _ in present.get(t.topic_id, [])
            ],
        }
        for t in data["topics"]
    ]
    return await page(
        datasette,
        request,
        "agent_bus_overview.html",
        {
            **chrome(datasette, db),
            "rows": rows,
            "status": status,
            "counts": {"all": len(rows)},
            "live_total": sum(1 for r in rows if r["present"]),
            "json_url": f"{root}.json?{urlencode({'status': status})}",
            "can_write": can_write(datasette, request),
            "create_url": f"{root}/topics/-/create",
        },
    )
