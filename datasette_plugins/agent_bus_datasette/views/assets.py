"""Generated stylesheets (Pygments colours for code blocks, light and dark)."""

from __future__ import annotations

from typing import Any

from datasette.utils.asgi import Response

from .. import render


async def pygments_css(datasette: Any, request: Any) -> Response:
    return Response(
        render.pygments_css(),
        content_type="text/css; charset=utf-8",
        headers={"Cache-Control": "max-age=3600"},
    )
