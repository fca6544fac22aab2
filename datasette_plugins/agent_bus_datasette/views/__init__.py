"""The plugin's pages, JSON endpoints and write forms, one module per page.

Every page has a JSON twin (``.json``) built from the MCP tools' pydantic models
(`envelopes`); every `BusError` becomes a response in one place
(`common.error_response`), with the same status for HTML and JSON. Reads go
through the `Bus` facade (or ``agent_bus.store.web``) on its worker pool; writes
are POST forms (`compose`, `manage`) checked by ``access.check_write`` first.
"""

from __future__ import annotations

from typing import Any

from . import (
    assets,
    compose,
    export,
    home,
    login,
    manage,
    overview,
    permalink,
    poll,
    search,
    thread,
)
from .common import route

DB = r"(?P<database>[^/]+?)"
TOPIC = r"(?P<topic>[^/]+?)"
JSON = r"(\.(?P<format>json))?"
READ = ("GET", "HEAD")
WRITE = ("POST",)


def routes() -> list[tuple[str, Any, tuple[str, ...]]]:
    """(regex, view, allowed methods); every view's `BusError`s go through `error_response`."""
    table = [
        (r"^/-/agent-bus/-/pygments\.css$", assets.pygments_css, READ),
        (r"^/-/agent-bus/-/login$", login.login, READ + WRITE),
        (r"^/-/agent-bus/-/logout$", login.logout, WRITE),
        (rf"^/-/agent-bus{JSON}$", home.home, READ),
        (rf"^/-/agent-bus/{DB}/search{JSON}$", search.search, READ),
        (
            rf"^/-/agent-bus/{DB}/messages/(?P<message_id>[^/]+?)\.md$",
            permalink.message_markdown,
            READ,
        ),
        (rf"^/-/agent-bus/{DB}/messages/(?P<message_id>[^/]+)$", permalink.permalink, READ),
        (rf"^/-/agent-bus/{DB}/topics/-/create$", manage.create_topic, WRITE),
        (rf"^/-/agent-bus/{DB}/topics/{TOPIC}/poll\.json$", poll.poll, READ),
        (
            rf"^/-/agent-bus/{DB}/topics/{TOPIC}/export(\.(?P<format>md|jsonl|json))?$",
            export.export,
            READ,
        ),
        (rf"^/-/agent-bus/{DB}/topics/{TOPIC}/post{JSON}$", compose.post_message, WRITE),
        (
            rf"^/-/agent-bus/{DB}/topics/{TOPIC}/(?P<action>close|reopen|rename|delete)$",
            manage.topic_action,
            WRITE,
        ),
        (rf"^/-/agent-bus/{DB}/topics/{TOPIC}{JSON}$", thread.thread, READ),
        (rf"^/-/agent-bus/{DB}{JSON}$", overview.overview, READ),
    ]
    return [(regex, route(view), methods) for regex, view, methods in table]
