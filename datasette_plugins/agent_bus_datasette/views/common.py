"""What every page shares: URLs, security headers, responses, argument parsing, and the
one place a `BusError` becomes an HTTP response (HTML or JSON alike)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from datasette.utils.asgi import Base400, Response

from agent_bus.errors import (
    BusError,
    Forbidden,
    InternalError,
    InvalidArgument,
    SchemaMismatch,
    TopicAmbiguous,
    TopicClosed,
    TopicNotFound,
)
from agent_bus.models import ErrorInfo, Output, Topic
from agent_bus.service.access import Scope

from ..access import claims_of, scope_of
from ..state import BusDatabase, find, state

logger = logging.getLogger(__name__)

NO_DB = "No agent-bus database by that name is attached."


class NotFound(BusError):
    """A database or message the URL names does not exist (web only)."""

    code = "NOT_FOUND"


STATUS_BY_CODE = {
    NotFound.code: 404,
    TopicNotFound.code: 404,
    InvalidArgument.code: 400,
    TopicAmbiguous.code: 400,
    TopicClosed.code: 409,
    SchemaMismatch.code: 409,
    Forbidden.code: 403,
    "DB_BUSY": 503,
    "EMBEDDINGS_UNAVAILABLE": 503,  # this server lacks the model; the request is fine
}
TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 409: "Conflict"}


def status_for(exc: BusError) -> int:
    return STATUS_BY_CODE.get(exc.code, 500)


def base(datasette: Any, db: BusDatabase) -> str:
    return datasette.urls.path(f"-/agent-bus/{db.route}")


def static(datasette: Any, name: str) -> str:
    return datasette.urls.path(f"-/agent-bus/-/static/{name}")


def wants_json(request: Any) -> bool:
    return request.url_vars.get("format") == "json"


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


async def page(
    datasette: Any, request: Any, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    # Datasette's own tables and SQL are closed to a token limited to some topics.
    context = {"raw_data": scope_of(request).topics is None, **context}
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html, status=status, headers=security_headers(datasette))


def json_response(datasette: Any, data: Output | dict[str, Any], status: int = 200) -> Response:
    body = data.wire() if isinstance(data, Output) else data
    return Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status=status,
        headers=security_headers(datasette),
        content_type="application/json; charset=utf-8",
    )


async def error_response(
    datasette: Any,
    request: Any,
    exc: BusError,
    *,
    as_json: bool,
    db: BusDatabase | None = None,
) -> Response:
    """The one translation of a `BusError` at the web's edge: same status for HTML and JSON.

    JSON is the MCP tools' error envelope ``{"error": {"code", "message"}}``; HTML is a
    short page (no traceback), or the schema-problem page for a bus of another version.
    """
    status = status_for(exc)
    if as_json:
        return json_response(
            datasette, Output(error=ErrorInfo(code=exc.code, message=exc.message)), status
        )
    if isinstance(exc, SchemaMismatch) and db is not None:
        return await page(
            datasette,
            request,
            "agent_bus_problem.html",
            {**chrome(datasette, db), "problem": exc.message},
            status=status,
        )
    context = {
        "title": TITLES.get(status, "Error"),
        "message": exc.message,
        "code": exc.code,
        "back_url": same_site_referer(request),
    }
    return await page(datasette, request, "agent_bus_error.html", context, status=status)


def same_site_referer(request: Any) -> str | None:
    """The page a refused form came from, to offer a way back (only our own pages)."""
    referer = request.headers.get("referer") or ""
    parts = urlsplit(referer)
    if parts.scheme in ("http", "https") and parts.netloc == request.host:
        return referer
    return None


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


def chrome(datasette: Any, db: BusDatabase) -> dict[str, Any]:
    """Template variables of the page frame (links, assets) shared by every page."""
    root = base(datasette, db)
    return {
        "db": db,
        "root": root,
        "css_url": static(datasette, "agent-bus.css"),
        "js_url": static(datasette, "agent-bus.js"),
        "theme_js_url": static(datasette, "agent-bus-theme.js"),
        "pygments_url": datasette.urls.path("-/agent-bus/-/pygments.css"),
        "search_url": f"{root}/search",
        "datasette_db_url": datasette.urls.database(db.name),
        "logout_url": datasette.urls.path("-/agent-bus/-/logout"),
    }


async def open_bus(datasette: Any, request: Any) -> tuple[BusDatabase, Any]:
    """The request's bus database and its `Bus`.

    Raises:
        NotFound: no agent-bus database by that name; SchemaMismatch: another schema version.
    """
    db = await find(datasette, request.url_vars["database"])
    if db is None:
        raise NotFound(NO_DB)
    claims = claims_of(request.actor)
    if claims is not None and claims.get("database") not in (None, db.name):
        raise Forbidden(f"token {claims.get('token_id')} belongs to another bus database")
    if db.problem:
        raise SchemaMismatch(db.problem)
    return db, db.open()


async def resolve_topic(bus: Any, ref: str, scope: Scope) -> Topic:
    """The topic ``ref`` names (id, id prefix or name), if ``scope`` covers it.

    Raises:
        TopicNotFound, TopicAmbiguous; Forbidden: outside a token's topics (the same
        answer whether or not the topic exists).
    """
    return await bus.run(scope.guard_ref, bus.resolve_ref, ref)


def route(view: Any) -> Any:
    """Wrap a view so every `BusError` it raises becomes `error_response` (one edge), and
    any other exception an ``INTERNAL_ERROR`` (a 500 with the same envelope)."""

    async def handler(datasette: Any, request: Any) -> Response:
        try:
            return await view(datasette, request)
        except BusError as exc:
            db = None
            if isinstance(exc, SchemaMismatch):
                db = await find(datasette, request.url_vars.get("database", ""))
            return await error_response(
                datasette, request, exc, as_json=view_wants_json(view, request), db=db
            )
        except Base400:
            raise  # Datasette's own 4xx: its page, its status
        except Exception as exc:  # the edge: a bug or storage failure keeps its code too
            logger.exception("agent-bus web: %s failed", request.path)
            internal = InternalError(f"{type(exc).__name__}: {exc}")
            return await error_response(
                datasette, request, internal, as_json=view_wants_json(view, request)
            )

    handler.__name__ = getattr(view, "__name__", "view")
    handler.__doc__ = view.__doc__
    return handler


def view_wants_json(view: Any, request: Any) -> bool:
    """JSON errors for ``.json`` URLs and for endpoints that only ever answer JSON."""
    return wants_json(request) or getattr(view, "json_only", False)


def json_only(view: Any) -> Any:
    """Mark an endpoint (poll, export) whose errors are JSON even without ``.json``."""
    view.json_only = True
    return view
