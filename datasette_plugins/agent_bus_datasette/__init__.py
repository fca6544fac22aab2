"""agent-bus for Datasette: threads, presence, search and export of agent conversations.

Activates on any attached database whose ``meta`` table says ``app =
'agent-bus'`` and leaves every other database alone. Pages read; a few POST forms
(post, reply, manage topics) write through the same service calls as the CLI, for
actors that may write (``access.can_write``). Plain Datasette (tables, facets, SQL,
JSON) stays underneath. Access tokens (``auth``) decide who gets in when the UI is
served remote, and a token's scope decides what it sees: our pages filter by topic,
and Datasette's raw tables and SQL, which cannot be filtered, are closed to a token
limited to some topics (``permission_allowed``).

Datasette 1.0 notes: ``get_metadata`` becomes configuration (``datasette.yaml``
/ ``set_*`` APIs), ``row_actions`` replaces the seq-cell link, and
``menu_links``/``table_actions`` return ``{"href", "label"}`` the same way.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from datasette import hookimpl
from datasette.utils.asgi import Response, asgi_static
from markupsafe import Markup, escape

from . import auth, render, views
from . import metadata as bus_metadata
from .access import claims_of
from .state import bus_databases, known_bus_names, state

STATIC_DIR = Path(__file__).parent / "static"
SECRET_TABLE = "agent_name_reservations"
SECRET_COLUMN = "reclaim_token_hash"
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


# Hashes of the HTTP door's access tokens (random secrets, but still nobody's business).
SECRETS = {(SECRET_TABLE, SECRET_COLUMN), ("access_tokens", "secret_hash")}


def _hide_secrets(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
    """SQLite authorizer: reading a token hash column yields NULL, in every query."""
    if action == sqlite3.SQLITE_READ and (arg1, arg2) in SECRETS:
        return sqlite3.SQLITE_IGNORE
    return sqlite3.SQLITE_OK


@hookimpl
def prepare_connection(conn: sqlite3.Connection) -> None:
    # Applied to every Datasette connection: on databases without that table it never fires.
    conn.set_authorizer(_hide_secrets)


# What Datasette's own views do with a database; none can be limited to some topics.
RAW_ACTIONS = frozenset(
    {
        "view-database",
        "view-database-download",
        "view-table",
        "view-query",
        "execute-sql",
        # Datasette's instance pages (/, /-/databases, /-/settings, /-/threads …): they
        # show file paths, sizes and table counts of every database.
        "view-instance",
    }
)


@hookimpl
def asgi_wrapper(datasette: Any) -> Any:
    return lambda app: auth.gate(datasette, app)


@hookimpl(tryfirst=True)
def actor_from_request(datasette: Any, request: Any) -> dict[str, Any] | None:
    """The token actor `auth.gate` verified for this request (None: no token given)."""
    return request.scope.get(auth.ACTOR_KEY)


@hookimpl(trylast=True)  # called last, so our refusal is the answer Datasette keeps
def permission_allowed(datasette: Any, actor: Any, action: str, resource: Any) -> bool | None:
    claims = claims_of(actor)
    if claims is not None and claims.get("topics") is not None and action in RAW_ACTIONS:
        return False
    return None


@hookimpl
def startup(datasette: Any) -> Any:
    async def inner() -> None:
        await bus_databases(datasette)
        # Datasette's base template has one inline script (closing open menus); allow
        # exactly that script by hash so our pages can forbid every other inline script.
        rendered = await datasette.jinja_env.get_template("_close_open_menus.html").render_async()
        st = state(datasette)
        st.csp_script_hashes = [
            "sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode()
            for s in _SCRIPT.findall(rendered)
        ]

    return inner


@hookimpl
def get_metadata(datasette: Any, key: str, database: str | None, table: str | None) -> Any:
    names = known_bus_names(datasette)
    if not names:
        return None
    out: dict[str, Any] = {}
    for name, (_, found) in state(datasette).checked.items():
        if found is not None:
            ui = datasette.urls.path(f"-/agent-bus/{found.route}")
            out[name] = bus_metadata.database_metadata(ui)
    return {"databases": out}


def _only(methods: tuple[str, ...], view: Any) -> Any:
    """Pages answer GET/HEAD only and write forms POST only (405 otherwise)."""

    async def guarded(datasette: Any, request: Any) -> Any:
        if request.method not in methods:
            allow = ", ".join(m for m in methods if m != "HEAD")
            return Response.text("405 Method Not Allowed", status=405, headers={"Allow": allow})
        return await view(datasette, request)

    return guarded


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [(r"^/-/agent-bus/-/static/(?P<path>.*)$", asgi_static(str(STATIC_DIR)))] + [
        (regex, _only(methods, view)) for regex, view, methods in views.routes()
    ]


@hookimpl
def menu_links(datasette: Any) -> Any:
    async def inner() -> list[dict[str, str]]:
        dbs = await bus_databases(datasette)
        links = []
        for d in dbs:
            suffix = f" ({d.name})" if len(dbs) > 1 else ""
            root = datasette.urls.path(f"-/agent-bus/{d.route}")
            links.append({"href": root, "label": f"Agent-bus topics{suffix}"})
            links.append({"href": f"{root}/search", "label": f"Agent-bus search{suffix}"})
        return links

    return inner


def _actions(datasette: Any, database: str, table: str | None) -> list[dict[str, str]]:
    for name, (_, found) in state(datasette).checked.items():
        if name == database and found is not None:
            root = datasette.urls.path(f"-/agent-bus/{found.route}")
            links = [
                {"href": root, "label": "Open as agent-bus threads"},
                {"href": f"{root}/search", "label": "Search agent-bus messages"},
            ]
            return links if table in (None, "topics", "messages", "cursors") else []
    return []


@hookimpl
def table_actions(datasette: Any, database: str, table: str) -> list[dict[str, str]]:
    return _actions(datasette, database, table)


@hookimpl
def database_actions(datasette: Any, database: str) -> list[dict[str, str]]:
    return _actions(datasette, database, None)


@hookimpl
def extra_css_urls(database: str | None, table: str | None, datasette: Any) -> list[str]:
    if database in known_bus_names(datasette) and table == "messages":
        return [
            datasette.urls.path("-/agent-bus/-/static/agent-bus.css"),
            datasette.urls.path("-/agent-bus/-/pygments.css"),
        ]
    return []


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Any:
    if table not in ("messages", "topics") or database not in known_bus_names(datasette):
        return None
    found = state(datasette).checked[database][1]
    root = datasette.urls.path(f"-/agent-bus/{found.route}")
    if table == "messages" and column == "content_markdown" and isinstance(value, str):
        return Markup('<div class="ab-body ab-cell">{}</div>').format(render.markdown_html(value))
    if table == "messages" and column == "seq" and "message_id" in row.keys():
        href = f"{root}/messages/{quote(str(row['message_id']), safe='')}"
        return Markup('<a href="{}" title="Open in its thread">#{}&nbsp;→&nbsp;thread</a>').format(
            href, value
        )
    if table == "topics" and column == "name" and "topic_id" in row.keys():
        href = f"{root}/topics/{quote(str(row['topic_id']), safe='')}"
        return Markup('<a href="{}" title="Read the thread">{}</a>').format(href, escape(value))
    return None
