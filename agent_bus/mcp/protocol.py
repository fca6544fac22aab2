"""Protocol-level mistakes of a client answered as -32602 (invalid params), quietly.

The SDK reports an unknown prompt as error code 0 with a traceback on stderr,
accepts any pagination cursor, and says only "Invalid request parameters" for
malformed params. Per the MCP spec each is the client's mistake: -32602 with a
message that says what was wrong, and nothing in the server's log but a line.
"""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import ValidationError

logger = logging.getLogger(__name__)

# List methods this server answers in one page: it never hands out a cursor.
_LIST_METHODS = ("tools/list", "prompts/list", "resources/list", "resources/templates/list")


class ProtocolErrors:
    """Server middleware mapping client mistakes to INVALID_PARAMS with a clear message."""

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.request_id is None:  # notifications are never answered
            return await call_next(ctx)
        params = ctx.params if isinstance(ctx.params, dict) else {}
        cursor = params.get("cursor")
        if ctx.method in _LIST_METHODS and cursor is not None:
            raise _invalid(
                f"Unknown cursor {cursor!r}: {ctx.method} answers in one page and never "
                "returns nextCursor; call it without a cursor.",
                cursor=cursor,
            )
        try:
            return await call_next(ctx)
        except MCPError:
            raise
        except ValidationError as exc:
            raise _invalid(f"Invalid params for {ctx.method}: {_fields(exc)}") from None
        except ValueError as exc:
            # The SDK's prompt lookup raises a bare ValueError for an unknown name.
            if ctx.method != "prompts/get" or not str(exc).startswith("Unknown prompt"):
                raise
            name = params.get("name")
            logger.info("prompts/get of unknown prompt %r", name)
            raise _invalid(
                f"Unknown prompt {name!r}; prompts/list names the prompts this server has.",
                name=name,
            ) from None


def _invalid(message: str, **data: Any) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=message, data=data or None)


def _fields(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "params"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
