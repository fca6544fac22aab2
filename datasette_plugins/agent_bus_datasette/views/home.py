"""/-/agent-bus: the one bus database's overview, or a list of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasette.utils.asgi import Response

from .. import auth
from ..state import bus_databases
from .common import base, json_response, page, wants_json
from .envelopes import DatabaseEntry, HomeOutput


async def home(datasette: Any, request: Any) -> Response:
    dbs = await bus_databases(datasette)
    if wants_json(request):
        remote = auth.require_token(datasette)  # people elsewhere need no path on this disk
        entries = [
            DatabaseEntry(
                name=d.name,
                path=Path(d.path).name if remote else d.path,
                schema_version=d.version,
                url=base(datasette, d),
                problem=d.problem,
            )
            for d in dbs
        ]
        return json_response(datasette, HomeOutput(databases=entries))
    if len(dbs) == 1:
        return Response.redirect(base(datasette, dbs[0]))
    return await page(
        datasette,
        request,
        "agent_bus_home.html",
        {"dbs": [{"db": d, "url": base(datasette, d)} for d in dbs]},
    )
