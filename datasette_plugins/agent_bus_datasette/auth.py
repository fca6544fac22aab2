"""Who is asking: the HTTP door's access tokens in front of the web UI.

A request carries a token as ``Authorization: Bearer agb_…`` (scripts, JSON) or as a
session cookie that the login page sets after a person pasted a token. The cookie is
signed with Datasette's own signer (``datasette.sign``) and holds only the token's public
id; every request re-reads that id with ``agent_bus.service.access.active`` (one indexed
read), so revoking or expiring the token ends the session on the next request. Tokens
are verified by ``agent_bus.service.access`` only, never here.

`gate` (our ASGI wrapper) resolves the caller once per request and puts the actor in the
ASGI scope, where the ``actor_from_request`` hook reads it. A remote UI (plugin setting
``require_token``, set by ``agent-bus web --allow-remote``) answers a request without a
valid token with the login page (browsers) or HTTP 401 ``TOKEN_REQUIRED`` JSON (anything
else) before Datasette sees it. A loopback UI lets tokenless requests through, as
before; a token that is presented and fails is a 401 there too.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from datasette.utils.asgi import Request, Response
from itsdangerous import BadSignature

from agent_bus.errors import TokenRequired
from agent_bus.service import access

from .access import PLUGIN
from .state import bus_databases, find, state

ACTOR_KEY = "agent_bus.actor"
SESSION_COOKIE = "ab_session"
SESSION_NAMESPACE = "agent-bus-session"
SESSION_SECONDS = 12 * 3600
LOGIN_PATH = "-/agent-bus/-/login"
LOGOUT_PATH = "-/agent-bus/-/logout"
# Paths a person without a token needs: the login form, logout, and stylesheets/scripts.
OPEN_PREFIXES = ("-/static/", "-/agent-bus/-/static/")
OPEN_PATHS = (LOGIN_PATH, LOGOUT_PATH, "favicon.ico")
DATA_SUFFIXES = (".json", ".jsonl", ".md", ".csv")

NO_TOKEN = (
    "this web UI is served to other machines and needs an access token: sign in at {login} "
    "or send 'Authorization: Bearer agb_…' (the bus's owner creates one with "
    "`agent-bus tokens create LABEL`)"
)
BAD_TOKEN = "the access token is unknown, revoked or expired; nothing was read"
ENDED = "your session ended: its access token was revoked or has expired; sign in again"


def require_token(datasette: Any) -> bool:
    """True for a remote UI: every request needs a token."""
    return bool((datasette.plugin_config(PLUGIN) or {}).get("require_token", False))


def actor_for(info: access.TokenInfo, database: str) -> dict[str, Any]:
    """Datasette's actor for a verified token: its id, label and scope (never the secret)."""
    return {
        "id": f"token:{info.token_id}",
        "display": f"{info.label} (token {info.token_id})",
        "agent_bus": {"token_id": info.token_id, "database": database, **info.scope().as_claims()},
    }


async def _touch(datasette: Any, bus: Any, token_id: str) -> None:
    """Record last use at most once a minute per token (`agent-bus tokens list` shows it)."""
    last_use = state(datasette).last_use
    if last_use.due(token_id):
        await bus.run(last_use.record, bus, token_id)


async def verify_secret(datasette: Any, token: str) -> tuple[access.TokenInfo, str] | None:
    """The token's info and the bus database that issued it, if it is valid now."""
    if access.token_id_of(token) is None:
        return None
    for db in await bus_databases(datasette):
        if db.problem:
            continue
        bus = db.open()
        info = await bus.run(access.verify, bus, token)
        if info is not None:
            await _touch(datasette, bus, info.token_id)
            return info, db.name
    return None


def session_value(datasette: Any, info: access.TokenInfo, database: str) -> tuple[str, int]:
    """The signed cookie value for a login and its lifetime in seconds."""
    now = time.time()
    ends = now + SESSION_SECONDS
    if info.expires_at is not None:
        ends = min(ends, info.expires_at)
    payload = {"t": info.token_id, "d": database, "e": int(ends)}
    return datasette.sign(payload, SESSION_NAMESPACE), max(1, int(ends - now))


async def _from_session(datasette: Any, value: str) -> dict[str, Any] | None:
    try:
        payload = datasette.unsign(value, SESSION_NAMESPACE)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("e"), int):
        return None
    if payload["e"] <= time.time():
        return None
    db = await find(datasette, str(payload.get("d") or ""))
    if db is None or db.problem:
        return None
    bus = db.open()
    info = await bus.run(access.active, bus, payload.get("t"))
    if info is None:
        return None
    await _touch(datasette, bus, info.token_id)
    return actor_for(info, db.name)


async def authenticate(datasette: Any, request: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(actor, failure): the token actor, or None; failure names a presented credential that
    did not verify (``"bearer"`` or ``"session"``)."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        found = await verify_secret(datasette, header[7:].strip())
        return (actor_for(*found), None) if found else (None, "bearer")
    value = request.cookies.get(SESSION_COOKIE)
    if value:
        actor = await _from_session(datasette, value)
        return (actor, None) if actor else (None, "session")
    return None, None


def _relative(datasette: Any, request: Any) -> str:
    """The request's path below Datasette's base URL, without the leading slash."""
    prefix = datasette.urls.path("/")
    path = request.path
    return path[len(prefix) :] if path.startswith(prefix) else path.lstrip("/")


def is_open(datasette: Any, request: Any) -> bool:
    rel = _relative(datasette, request)
    return rel in OPEN_PATHS or rel.startswith(OPEN_PREFIXES)


def wants_page(request: Any) -> bool:
    """A browser navigating (HTML), as opposed to a script or the page's own fetches."""
    if request.method not in ("GET", "HEAD", "POST"):
        return False
    if request.path.endswith(DATA_SUFFIXES) or "_format" in request.args:
        return False
    return "text/html" in request.headers.get("accept", "")


def safe_next(datasette: Any, target: str | None) -> str:
    """A same-site path to return to after login (never another host)."""
    home = datasette.urls.path("-/agent-bus")
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return home
    if any(ch in target for ch in "\r\n\t"):
        return home
    return target


def login_url(datasette: Any, next_path: str | None = None, *, ended: bool = False) -> str:
    args = {"next": next_path} if next_path else {}
    if ended:
        args["ended"] = "1"
    base = datasette.urls.path(LOGIN_PATH)
    return f"{base}?{urlencode(args)}" if args else base


def clear_session(datasette: Any, response: Response) -> None:
    response.set_cookie(
        SESSION_COOKIE, "", max_age=0, expires=0, path=datasette.urls.path("/"), httponly=True
    )


def refusal(datasette: Any, request: Any, failure: str | None) -> Response:
    """The answer to a request without a valid token: login page or 401 JSON, never data."""
    if failure != "bearer" and wants_page(request):
        if request.method == "POST":  # a form sent after the session ended: back to its page
            ref = urlsplit(request.headers.get("referer") or "")
            target = ref.path + (f"?{ref.query}" if ref.query else "")
            if ref.netloc != request.host:
                target = None
            response = Response.redirect(
                login_url(datasette, safe_next(datasette, target), ended=bool(failure)),
                status=303,
            )
        else:
            target = request.path + (f"?{request.query_string}" if request.query_string else "")
            response = Response.redirect(
                login_url(datasette, target, ended=bool(failure)), status=302
            )
    else:
        message = {
            "bearer": BAD_TOKEN,
            "session": ENDED,
            None: NO_TOKEN.format(login=datasette.urls.path(LOGIN_PATH)),
        }[failure]
        error = TokenRequired(message)
        response = Response(
            json.dumps({"error": {"code": error.code, "message": error.message}}),
            status=401,
            content_type="application/json; charset=utf-8",
            headers={"WWW-Authenticate": 'Bearer realm="agent-bus"', "Cache-Control": "no-store"},
        )
    if failure == "session":
        clear_session(datasette, response)
    return response


def gate(datasette: Any, app: Any) -> Any:
    """ASGI wrapper: the actor in the scope, or a refusal before Datasette runs."""

    async def gated(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        request = Request(scope, receive)
        if is_open(datasette, request):
            await app(scope, receive, send)
            return
        actor, failure = await authenticate(datasette, request)
        if failure or (actor is None and require_token(datasette)):
            await refusal(datasette, request, failure).asgi_send(send)
            return
        await app(dict(scope, **{ACTOR_KEY: actor}), receive, send)

    return gated
