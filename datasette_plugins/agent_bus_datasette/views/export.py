"""/…/topics/<topic>/export.{md,json,jsonl}[?from=N&to=M]: a topic, or a range of it, as a
file, with the CLI's export code."""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import Response

from agent_bus.errors import InvalidArgument
from agent_bus.export import normalize_format

from .. import exporting
from ..access import scope_of
from .common import int_arg, json_only, open_bus, resolve_topic, security_headers

EXPORT_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}


@json_only
async def export(datasette: Any, request: Any) -> Response:
    _, bus = await open_bus(datasette, request)
    fmt = request.url_vars.get("format") or normalize_format(request.args.get("format") or "md")
    topic = await resolve_topic(bus, request.url_vars["topic"], scope_of(request))
    first = int_arg(request, "from", None, minimum=1)
    last = int_arg(request, "to", None, minimum=1)
    if first is not None and last is not None and last < first:
        raise InvalidArgument("to must be >= from (a range of message seqs)", field="to")
    body = await bus.run(exporting.export_topic, bus, topic, fmt, first, last)
    span = f"-{first or 1}-{last}" if last is not None else (f"-from-{first}" if first else "")
    filename = f"{exporting.safe_filename(topic.name)}-{topic.topic_id}{span}.{fmt}"
    headers = security_headers(datasette)
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(body, headers=headers, content_type=EXPORT_TYPES[fmt])
