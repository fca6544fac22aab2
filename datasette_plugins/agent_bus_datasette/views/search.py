"""/…/search: full-text, semantic or hybrid search across topics (or within one)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from datasette.utils.asgi import Response

from agent_bus.errors import BusError

from .. import render
from ..access import scope_of
from .common import (
    base,
    chrome,
    int_arg,
    json_response,
    open_bus,
    page,
    resolve_topic,
    status_for,
    wants_json,
)
from .envelopes import SearchOutput

SEARCH_MODES = ("hybrid", "fts", "semantic")
MAX_RESULTS = 500


async def search(datasette: Any, request: Any) -> Response:
    db, bus = await open_bus(datasette, request)
    q = (request.args.get("q") or "").strip()
    mode = request.args.get("mode") or "hybrid"
    topic_ref = (request.args.get("topic") or "").strip() or None
    results: list[Any] = []
    warnings: list[Any] = []
    error: BusError | None = None
    topic = None
    scope = scope_of(request)
    try:
        limit = min(int_arg(request, "limit", 50, minimum=1) or 50, MAX_RESULTS)
        if topic_ref:
            topic = await resolve_topic(bus, topic_ref, scope)
        if q:
            # A token limited to some topics: over-fetch, then drop what it may not see.
            wanted = limit if topic or scope.topics is None else MAX_RESULTS
            results, warnings = await bus.run(
                bus.search, q, topic_id=topic.topic_id if topic else None, mode=mode, limit=wanted
            )
            results = scope.visible(
                results, id_of=lambda r: r.topic_id, name_of=lambda r: r.topic_name
            )[:limit]
    except BusError as exc:
        if wants_json(request):
            raise
        error = exc  # shown above the form, with the status the JSON twin would have
    if wants_json(request):
        return json_response(
            datasette,
            SearchOutput(
                query=q,
                mode=mode,
                topic_id=topic.topic_id if topic else None,
                results=results,
                warnings=warnings,
                count=len(results),
            ),
        )
    root = base(datasette, db)
    now = time.time()
    rows = [
        {
            "r": r,
            "snippet": render.snippet_html(r.snippet),
            "href": f"{root}/messages/{r.message_id}",
            "topic_href": f"{root}/topics/{r.topic_id}",
            "ago": render.ago(r.created_at, now),
            "time": render.local_time(r.created_at),
            "colour": render.colour(r.sender),
        }
        for r in results
    ]

    def url(**args: str | None) -> str:
        return f"{root}/search?" + urlencode({k: v for k, v in args.items() if v})

    modes = [
        {"mode": m, "url": url(q=q, mode=m, topic=topic_ref), "current": m == mode}
        for m in SEARCH_MODES
    ]
    return await page(
        datasette,
        request,
        "agent_bus_search.html",
        {
            **chrome(datasette, db),
            "q": q,
            "mode": mode,
            "modes": modes,
            "topic": topic,
            "topic_ref": topic_ref or "",
            "rows": rows,
            "warnings": warnings,
            "error": error.message if error else None,
            "json_url": f"{root}/search.json?"
            + urlencode({k: v for k, v in {"q": q, "mode": mode, "topic": topic_ref}.items() if v}),
        },
        status=status_for(error) if error else 200,
    )
