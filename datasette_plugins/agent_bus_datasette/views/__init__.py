"""The plugin's pages and JSON endpoints, one module per page.

Every page has a JSON twin (``.json``) built from the MCP tools' pydantic models
(`envelopes`); every `BusError` becomes a response in one place
(`common.error_response`), with the same status for HTML and JSON. Reads go
through the `Bus` facade (or ``agent_bus.store.web``) on its worker pool.
"""

from __future__ import annotations

from typing import Any

from . import assets, export, home, overview, permalink, poll, search, thread
from .common import route

DB = r"(?P<database>[^/]+?)"
TOPIC = r"(?P<topic>[^/]+?)"
JSON = r"(\.(?P<format>json))?"


def routes() -> list[tuple[str, Any]]:
    """(regex, view) pairs; every view's `BusError`s go through `error_response`."""
    table = [
        (r"^/-/agent-bus/-/pygments\.css$", assets.pygments_css),
        (rf"^/-/agent-bus{JSON}$", home.home),
        (rf"^/-/agent-bus/{DB}/search{JSON}$", search.search),
        (rf"^/-/agent-bus/{DB}/messages/(?P<message_id>[^/]+)$", permalink.permalink),
        (rf"^/-/agent-bus/{DB}/topics/{TOPIC}/poll\.json$", poll.poll),
        (rf"^/-/agent-bus/{DB}/topics/{TOPIC}/export\.(?P<format>md|jsonl|json)$", export.export),
        (rf"^/-/agent-bus/{DB}/topics/{TOPIC}{JSON}$", thread.thread),
        (rf"^/-/agent-bus/{DB}{JSON}$", overview.overview),
    ]
    return [(regex, route(view)) for regex, view in table]
