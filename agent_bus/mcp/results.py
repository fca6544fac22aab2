"""Tool results: a success with its structured model, or a failure with a stable code.

Every failed tool call — a `BusError` of the service, arguments the SDK rejects,
a busy database, a bug — becomes a result with ``isError: true``, the code first
in the text and in ``structuredContent.error``; never a protocol failure.
"""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError

from agent_bus.errors import BusError, DbBusy, InvalidArgument
from agent_bus.models import ErrorInfo, Output, Warning

logger = logging.getLogger(__name__)


def ok(model: Output, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=model.wire()
    )


def error_result(code: str, message: str, extra: dict[str, Any] | None = None) -> CallToolResult:
    payload: dict[str, Any] = {"error": ErrorInfo(code=code, message=message).model_dump()}
    payload.update(extra or {})
    return CallToolResult(
        content=[TextContent(type="text", text=f"{code}: {message}")],
        structured_content=payload,
        is_error=True,
    )


def tool_failure(name: str, exc: ToolError) -> CallToolResult:
    """The error result for a tool call the SDK reported as failed."""
    bus_exc = _bus_error(exc.__cause__)
    if bus_exc is not None:
        return error_result(bus_exc.code, bus_exc.message, _extras(bus_exc))
    if isinstance(exc.__cause__, ValidationError):
        return error_result(
            InvalidArgument.code, f"invalid arguments: {validation_message(exc.__cause__)}"
        )
    cause = exc.__cause__
    if cause is None:  # unknown tool and the like: the SDK's own message says it
        return error_result(InvalidArgument.code, str(exc))
    if _is_busy(cause):
        return error_result(DbBusy.code, "The database is busy; retry the call.")
    logger.exception("tool %s failed", name, exc_info=cause)
    return error_result(
        "INTERNAL_ERROR",
        f"{type(cause).__name__}: {cause}. Nothing was half-written; the server keeps "
        "serving. Please report this.",
    )


def validation_message(exc: ValidationError) -> str:
    """Where and why pydantic rejected arguments, in one line (at most five fields)."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"] if p not in ("arguments",)) or "arguments"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def ignored_warning(fields: list[str]) -> list[Warning]:
    """The UNKNOWN_FIELDS_IGNORED warning for outbox fields sync did not store."""
    if not fields:
        return []
    return [
        Warning(
            code="UNKNOWN_FIELDS_IGNORED",
            message=f"ignored unknown outbox field(s): {', '.join(fields)}",
            context={"fields": fields},
        )
    ]


def _bus_error(exc: BaseException | None) -> BusError | None:
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, BusError):
            return exc
        exc = exc.__cause__
        seen += 1
    return None


def _is_busy(exc: BaseException) -> bool:
    from agent_bus.store.connection import is_busy_error

    return is_busy_error(exc)


def _extras(exc: BusError) -> dict[str, Any]:
    keep = ("requested_agent_name", "suggested_agent_names", "candidates", "field")
    return {k: v for k, v in exc.details.items() if k in keep}
