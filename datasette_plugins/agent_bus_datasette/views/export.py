"""/…/topics/<topic>/export.{md,json,jsonl}: a topic as a file, with the CLI's export code."""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import Response

from .. import exporting
from .common import json_only, open_bus, resolve_topic, security_headers

EXPORT_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}


@json_only
async def export(datasette: Any, request: Any) -> Response:
    _, bus = await open_bus(datasette, request)
    fmt = request.url_vars["format"]
    topic = await resolve_topic(bus, request.url_vars["topic"])
    body = await bus.run(exporting.export_topic, bus, topic, fmt)
    filename = f"{exporting.safe_filename(topic.name)}-{topic.topic_id}.{fmt}"
    headers = security_headers(datasette)
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(body, headers=headers, content_type=EXPORT_TYPES[fmt])
