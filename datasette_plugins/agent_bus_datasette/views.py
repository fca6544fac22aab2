"""The plugin's pages and JSON endpoints. Read-only: nothing here writes.

Every page has a JSON twin (``.json``) built from the same pydantic models as
the MCP tools and the CLI. Reads go through the `Bus` service (or the web
queries in ``agent_bus.store.web``) on its worker pool, never on the event
loop.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from datasette.utils.asgi import Response
from markupsafe import Markup

from agent_bus.errors import BusError, InvalidArgument, TopicAmbiguous, TopicNotFound
from agent_bus.models import Message, Topic, TopicSummary
from agent_bus.store import web as store_web

from . import render
from .state import BusDatabase, bus_databases, find, state

PAGE = 100
MAX_PAGE = 500
PRESENCE_WINDOW = 300
MAX_WAIT = 25.0
QUOTE_CHARS = 220
SEARCH_MODES = ("hybrid", "fts", "semantic")
NO_DB = "No agent-bus database by that name is attached."


# --- helpers ------------------------------------------------------------------------


def base(datasette: Any, db: BusDatabase) -> str:
    return datasette.urls.path(f"-/agent-bus/{db.route}")


def static(datasette: Any, name: str) -> str:
    return datasette.urls.path(f"-/agent-bus/-/static/{name}")


def security_headers(datasette: Any) -> dict[str, str]:
    hashes = " ".join(f"'{h}'" for h in state(datasette).csp_script_hashes)
    return {
        "Content-Security-Policy": (
            "default-src 'none'; "
            f"script-src 'self' {hashes}; "
            "style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


async def page(datasette: Any, request: Any, template: str, context: dict[str, Any]) -> Response:
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html, headers=security_headers(datasette))


def json_response(datasette: Any, data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data, ensure_ascii=False, default=str),
        status=status,
        headers=security_headers(datasette),
        content_type="application/json; charset=utf-8",
    )


def error_json(datasette: Any, exc: BusError, status: int) -> Response:
    return json_response(
        datasette, {"error": {"code": exc.code, "message": exc.message}}, status=status
    )


def status_for(exc: BusError) -> int:
    if isinstance(exc, TopicNotFound):
        return 404
    if isinstance(exc, InvalidArgument | TopicAmbiguous):
        return 400
    return 500


def int_arg(request: Any, name: str, default: int | None, *, minimum: int = 0) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidArgument(f"{name} must be an integer", field=name) from None
    if value < minimum:
        raise InvalidArgument(f"{name} must be >= {minimum}", field=name)
    return value


async def not_found(
    datasette: Any, request: Any, message: str, *, as_json: bool, code: str = "NOT_FOUND"
) -> Response:
    """A 404 as JSON ``{"error": …}`` or as a page (not an exception: no traceback noise)."""
    if as_json:
        return json_response(datasette, {"error": {"code": code, "message": message}}, 404)
    html = await datasette.render_template(
        "agent_bus_error.html", {"title": "Not found", "message": message}, request=request
    )
    return Response.html(html, status=404, headers=security_headers(datasette))


def message_view(
    datasette: Any,
    db: BusDatabase,
    msg: Message,
    *,
    parents: dict[str, Message],
    replies: dict[str, list[tuple[str, int, str]]],
    window: set[int],
    now: float,
) -> dict[str, Any]:
    """What the message template needs: the model plus rendered, escaped parts."""
    root = base(datasette, db)
    parent = parents.get(msg.reply_to) if msg.reply_to else None
    parent_view = None
    if msg.reply_to:
        if parent is None:
            parent_view = {"missing": True, "message_id": msg.reply_to}
        else:
            text = " ".join(parent.content_markdown.split())
            parent_view = {
                "missing": False,
                "seq": parent.seq,
                "sender": parent.sender,
                "href": f"#m-{parent.seq}"
                if parent.seq in window
                else f"{root}/messages/{parent.message_id}",
                "quote": text[:QUOTE_CHARS] + ("…" if len(text) > QUOTE_CHARS else ""),
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


def activity(topic: TopicSummary) -> float:
    return topic.last_message_at or topic.created_at


# --- reads (run on the bus's worker pool) ---------------------------------------------


def _overview(bus: Any, status: str) -> dict[str, Any]:
    now = time.time()
    topics = sorted(bus.topic_list(status=status), key=activity, reverse=True)
    present = bus.read(lambda c: store_web.presence_by_topic(c, now - PRESENCE_WINDOW))
    return {"now": now, "topics": topics, "present": present}


def _thread(bus: Any, topic: Topic, request_args: dict[str, int | None], limit: int) -> dict:
    tid = topic.topic_id
    at, before, after = request_args["at"], request_args["before"], request_args["after"]
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
    return _decorate(bus, tid, msgs)


def _decorate(bus: Any, tid: str, msgs: list[Message]) -> dict[str, Any]:
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


def _sidebar(bus: Any) -> list[TopicSummary]:
    return sorted(bus.topic_list(status="all"), key=activity, reverse=True)[:50]


# --- routes ---------------------------------------------------------------------------


async def home(datasette: Any, request: Any) -> Response:
    """/-/agent-bus: the one bus database's overview, or a list of them."""
    dbs = await bus_databases(datasette)
    as_json = request.url_vars.get("format") == "json"
    if as_json:
        return json_response(
            datasette,
            {
                "databases": [
                    {
                        "name": d.name,
                        "path": d.path,
                        "schema_version": d.version,
                        "url": base(datasette, d),
                        "problem": d.problem,
                    }
                    for d in dbs
                ]
            },
        )
    if len(dbs) == 1:
        return Response.redirect(base(datasette, dbs[0]))
    return await page(
        datasette,
        request,
        "agent_bus_home.html",
        {"dbs": [{"db": d, "url": base(datasette, d)} for d in dbs]},
    )


async def overview(datasette: Any, request: Any) -> Response:
    as_json = request.url_vars.get("format") == "json"
    db = await find(datasette, request.url_vars["database"])
    if db is None:
        return await not_found(datasette, request, NO_DB, as_json=as_json)
    status = request.args.get("status") or "all"
    if status not in ("open", "closed", "all"):
        status = "all"
    if db.problem:
        return await problem_page(datasette, request, db, as_json)
    bus = db.open()
    data = await bus.run(_overview, bus, status)
    now, present = data["now"], data["present"]
    if as_json:
        return json_response(
            datasette,
            {
                "database": db.name,
                "status": status,
                "topics": [
                    {
                        **t.model_dump(mode="json"),
                        "last_activity_at": activity(t),
                        "present": [name for name, _ in present.get(t.topic_id, [])],
                        "url": f"{base(datasette, db)}/topics/{t.topic_id}",
                    }
                    for t in data["topics"]
                ],
            },
        )
    root = base(datasette, db)
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
    counts = {"all": len(rows)}
    return await page(
        datasette,
        request,
        "agent_bus_overview.html",
        {
            **chrome(datasette, db),
            "rows": rows,
            "status": status,
            "counts": counts,
            "live_total": sum(1 for r in rows if r["present"]),
            "json_url": f"{root}.json?{urlencode({'status': status})}",
        },
    )


def chrome(datasette: Any, db: BusDatabase) -> dict[str, Any]:
    root = base(datasette, db)
    return {
        "db": db,
        "root": root,
        "css_url": static(datasette, "agent-bus.css"),
        "js_url": static(datasette, "agent-bus.js"),
        "pygments_url": datasette.urls.path("-/agent-bus/-/pygments.css"),
        "search_url": f"{root}/search",
        "datasette_db_url": datasette.urls.database(db.name),
    }


async def problem_page(datasette: Any, request: Any, db: BusDatabase, as_json: bool) -> Response:
    if as_json:
        return json_response(
            datasette,
            {"error": {"code": "DB_SCHEMA_MISMATCH", "message": db.problem}},
            status=409,
        )
    return await page(
        datasette,
        request,
        "agent_bus_problem.html",
        {**chrome(datasette, db), "problem": db.problem},
    )


async def resolve_topic(bus: Any, ref: str) -> Topic:
    return await bus.run(bus.resolve_ref, ref)


async def bus_for(datasette: Any, request: Any, *, as_json: bool) -> tuple[Any, Any, Any]:
    """The request's bus database and its `Bus`, or the response that says why there is none."""
    db = await find(datasette, request.url_vars["database"])
    if db is None:
        return None, None, await not_found(datasette, request, NO_DB, as_json=as_json)
    if db.problem:
        return db, None, await problem_page(datasette, request, db, as_json)
    return db, db.open(), None


async def thread(datasette: Any, request: Any) -> Response:
    as_json = request.url_vars.get("format") == "json"
    db, bus, failure = await bus_for(datasette, request, as_json=as_json)
    if failure is not None:
        return failure
    try:
        topic = await resolve_topic(bus, request.url_vars["topic"])
        limit = min(int_arg(request, "limit", PAGE, minimum=1) or PAGE, MAX_PAGE)
        args = {k: int_arg(request, k, None) for k in ("at", "before", "after")}
    except BusError as exc:
        if as_json:
            return error_json(datasette, exc, status_for(exc))
        return await not_found(datasette, request, exc.message, as_json=False, code=exc.code)
    data = await bus.run(_thread, bus, topic, args, limit)
    msgs: list[Message] = data["messages"]
    stats = data["stats"]
    first = msgs[0].seq if msgs else 0
    last = msgs[-1].seq if msgs else 0
    has_earlier = bool(msgs) and first > stats["first_seq"]
    has_later = bool(msgs) and last < stats["last_seq"]
    root = base(datasette, db)
    turl = f"{root}/topics/{topic.topic_id}"
    if as_json:
        return json_response(
            datasette,
            {
                "database": db.name,
                "topic": topic.model_dump(mode="json"),
                "stats": stats,
                "window": {
                    "first_seq": first,
                    "last_seq": last,
                    "has_earlier": has_earlier,
                    "has_later": has_later,
                    "limit": limit,
                },
                "messages": [m.model_dump(mode="json") for m in msgs],
                "presence": [p.model_dump(mode="json") for p in data["peers"]],
                "senders": data["senders"],
            },
        )
    views = message_views(datasette, db, msgs, data)
    sidebar = await bus.run(_sidebar, bus)
    now = data["now"]
    return await page(
        datasette,
        request,
        "agent_bus_thread.html",
        {
            **chrome(datasette, db),
            "topic": topic,
            "turl": turl,
            "stats": stats,
            "messages": views,
            "presence": presence_view(data["peers"], now),
            "senders": [
                {**s, "colour": render.colour(s["sender"]), "ago": render.ago(s["last_at"], now)}
                for s in data["senders"]
            ],
            "types": data["types"],
            "created": render.local_time(topic.created_at),
            "closed": render.local_time(topic.closed_at),
            "last_activity": render.ago(stats["last_message_at"] or topic.created_at, now),
            "earlier_url": f"{turl}?{urlencode({'before': first})}" if has_earlier else None,
            "later_url": f"{turl}?{urlencode({'after': last})}" if has_later else None,
            "latest_url": turl if has_later else None,
            "live": not has_later,
            "last_seq": last or stats["last_seq"],
            "poll_url": f"{turl}/poll.json",
            "json_url": f"{turl}.json",
            "export_urls": {fmt: f"{turl}/export.{fmt}" for fmt in ("md", "json", "jsonl")},
            "table_url": datasette.urls.table(db.name, "messages")
            + "?"
            + urlencode({"topic_id": topic.topic_id, "_sort": "seq"}),
            "topic_metadata": json.dumps(topic.metadata, indent=2, ensure_ascii=False)
            if topic.metadata
            else None,
            "sidebar": [
                {
                    "t": t,
                    "url": f"{root}/topics/{t.topic_id}",
                    "ago": render.ago(activity(t), now),
                    "current": t.topic_id == topic.topic_id,
                }
                for t in sidebar
            ],
            "target": args["at"],
        },
    )


def message_views(
    datasette: Any, db: BusDatabase, msgs: list[Message], data: dict[str, Any]
) -> list[dict[str, Any]]:
    """Template views of a window of messages (thread page and poll share it).

    ``data`` is what ``_decorate`` returned: reply links, replies and the time.
    """
    window = {m.seq for m in msgs}
    return [
        message_view(
            datasette,
            db,
            m,
            parents=data["parents"],
            replies=data["replies"],
            window=window,
            now=data["now"],
        )
        for m in msgs
    ]


def _poll(bus: Any, topic_id: str, after: int, limit: int) -> dict[str, Any]:
    topic = bus.get_topic(topic_id)
    msgs = bus.messages(topic_id, after_seq=after, limit=limit)
    out = _decorate(bus, topic_id, msgs)
    out["topic"] = topic
    return out


async def poll(datasette: Any, request: Any) -> Response:
    """Messages after ``after`` (waits up to ``wait`` seconds for one), with their HTML."""
    db, bus, failure = await bus_for(datasette, request, as_json=True)
    if failure is not None:
        return failure
    try:
        topic = await resolve_topic(bus, request.url_vars["topic"])
        after = int_arg(request, "after", 0) or 0
        wait = min(float(int_arg(request, "wait", 0) or 0), MAX_WAIT)
        limit = min(int_arg(request, "limit", PAGE, minimum=1) or PAGE, MAX_PAGE)
    except BusError as exc:
        return error_json(datasette, exc, status_for(exc))
    if wait > 0:
        await bus.wait_for_messages(topic.topic_id, after, wait)
    data = await bus.run(_poll, bus, topic.topic_id, after, limit)
    msgs: list[Message] = data["messages"]
    views = message_views(datasette, db, msgs, data)
    html = ""
    if views:
        html = await datasette.render_template(
            "agent_bus_messages.html", {"messages": views}, request=request
        )
    presence = presence_view(data["peers"], data["now"])
    presence_html = await datasette.render_template(
        "agent_bus_presence.html", {"presence": presence}, request=request
    )
    return json_response(
        datasette,
        {
            "topic_id": topic.topic_id,
            "status": data["topic"].status,
            "last_seq": msgs[-1].seq if msgs else after,
            "has_more": bool(msgs) and msgs[-1].seq < data["stats"]["last_seq"],
            "message_count": data["stats"]["message_count"],
            "messages": [m.model_dump(mode="json") for m in msgs],
            "presence": [p.model_dump(mode="json") for p in data["peers"]],
            "html": html,
            "presence_html": presence_html,
        },
    )


async def permalink(datasette: Any, request: Any) -> Response:
    """/…/messages/<id>: redirect to the thread window around the message."""
    db, bus, failure = await bus_for(datasette, request, as_json=False)
    if failure is not None:
        return failure
    mid = request.url_vars["message_id"]
    msg = await bus.run(bus.get_message, mid)
    if msg is None:
        return await not_found(datasette, request, f"No message with id {mid!r}.", as_json=False)
    target = f"{base(datasette, db)}/topics/{msg.topic_id}?{urlencode({'at': msg.seq})}"
    return Response.redirect(f"{target}#m-{msg.seq}")


async def search(datasette: Any, request: Any) -> Response:
    as_json = request.url_vars.get("format") == "json"
    db, bus, failure = await bus_for(datasette, request, as_json=as_json)
    if failure is not None:
        return failure
    q = (request.args.get("q") or "").strip()
    mode = request.args.get("mode") or "hybrid"
    topic_ref = (request.args.get("topic") or "").strip() or None
    results: list[Any] = []
    warnings: list[Any] = []
    error = None
    topic = None
    try:
        limit = min(int_arg(request, "limit", 50, minimum=1) or 50, MAX_PAGE)
        if topic_ref:
            topic = await resolve_topic(bus, topic_ref)
        if q:
            results, warnings = await bus.run(
                bus.search,
                q,
                topic_id=topic.topic_id if topic else None,
                mode=mode,
                limit=limit,
            )
    except BusError as exc:
        if as_json:
            return error_json(datasette, exc, status_for(exc))
        error = exc.message
    if as_json:
        return json_response(
            datasette,
            {
                "query": q,
                "mode": mode,
                "topic_id": topic.topic_id if topic else None,
                "results": [r.model_dump(mode="json") for r in results],
                "warnings": [w.model_dump(mode="json") for w in warnings],
                "count": len(results),
            },
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
    modes = [
        {
            "mode": m,
            "url": f"{root}/search?"
            + urlencode({k: v for k, v in {"q": q, "mode": m, "topic": topic_ref}.items() if v}),
            "current": m == mode,
        }
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
            "error": error,
            "json_url": f"{root}/search.json?"
            + urlencode({k: v for k, v in {"q": q, "mode": mode, "topic": topic_ref}.items() if v}),
        },
    )


EXPORT_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}


async def export(datasette: Any, request: Any) -> Response:
    """A whole topic as markdown, JSON or JSONL, with the CLI's own export code."""
    db, bus, failure = await bus_for(datasette, request, as_json=True)
    if failure is not None:
        return failure
    fmt = request.url_vars["format"]
    try:
        topic = await resolve_topic(bus, request.url_vars["topic"])
    except BusError as exc:
        return error_json(datasette, exc, status_for(exc))
    from . import exporting

    body = await bus.run(exporting.export_topic, bus, topic, fmt)
    filename = f"{exporting.safe_filename(topic.name)}-{topic.topic_id}.{fmt}"
    headers = security_headers(datasette)
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(body, headers=headers, content_type=EXPORT_TYPES[fmt])


async def pygments_css(datasette: Any, request: Any) -> Response:
    return Response(
        render.pygments_css(),
        content_type="text/css; charset=utf-8",
        headers={"Cache-Control": "max-age=3600"},
    )


def as_markup(html: str) -> Markup:
    return Markup(html)
