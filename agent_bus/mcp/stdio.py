"""Reading JSON-RPC lines from stdin so that no input can stall a client.

The SDK's reader drops, unanswered, every line it cannot decode into a
JSON-RPC message: text that is not JSON, JSON nested deeper than its parser
allows, or a message of the wrong shape. The client then waits forever. Here
each line is decoded first exactly as the SDK will decode it; a line that
fails is answered with a JSON-RPC error (-32700 parse error when the text is
not JSON, -32600 invalid request otherwise) carrying the request's id when it
can be read, and the session goes on.

The SDK's parser also rejects lone UTF-16 surrogate escapes (``"\\ud800"``),
which are legal JSON: such text is replaced by U+FFFD — the policy the SDK
applies to invalid UTF-8 bytes — so the request is answered like any other.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage

logger = logging.getLogger(__name__)

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# JSON strings and brackets: enough to find the top-level "id" of any text.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]')
_KEY_COLON = re.compile(r"\s*:\s*")
_ID_VALUE = re.compile(r'-?\d+(?![.eE\d])|"(?:[^"\\]|\\.)*"')


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def repair_line(line: str) -> str:
    """The same JSON-RPC line with lone surrogates replaced; other lines unchanged."""
    if not _SURROGATE_ESCAPE.search(line):
        return line
    try:
        parsed = json.loads(line)
    except (ValueError, RecursionError):
        return line  # malformed anyway; rejection() answers it
    return json.dumps(_clean(parsed), ensure_ascii=False) + "\n"


def top_level_id(line: str) -> str | int | None:
    """The ``id`` member of the outermost JSON object in ``line``, if it can be read.

    Works on text no JSON parser accepts (truncated, or nested too deep): it
    tracks bracket depth over string tokens only, so it never recurses.
    """
    depth = 0
    for match in _TOKEN.finditer(line):
        token = match.group()
        if token in "{[":
            depth += 1
        elif token in "}]":
            depth -= 1
        elif depth == 1 and token == '"id"':
            colon = _KEY_COLON.match(line, match.end())
            if colon is None:
                continue
            value = _ID_VALUE.match(line, colon.end())
            if value is None:
                return None
            with contextlib.suppress(ValueError):
                parsed = json.loads(value.group())
                return parsed if isinstance(parsed, str | int) else None
            return None
    return None


def rejection(line: str) -> types.JSONRPCError | None:
    """The error answering ``line``, or None when the SDK will accept it."""
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        return None
    except ValueError:  # pydantic's ValidationError is a ValueError
        pass
    try:
        json.loads(line)
        code, message = types.INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 message"
    except RecursionError:
        code = types.INVALID_REQUEST
        message = "Invalid request: JSON nested too deeply to be read"
    except ValueError:
        code, message = types.PARSE_ERROR, "Parse error: the line is not valid JSON"
    if len(line) > 200_000 and code == types.INVALID_REQUEST:
        message += " (or too large)"
    return types.JSONRPCError(
        jsonrpc="2.0", id=top_level_id(line), error=types.ErrorData(code=code, message=message)
    )


class CheckedStdin:
    """An async line iterator over stdin for `stdio_server(stdin=...)` that answers bad lines.

    Lines the SDK would drop are answered through the server's write stream
    (given by `answer_through` once the transport is open) and not passed on.
    """

    def __init__(self) -> None:
        text = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        self._file = anyio.wrap_file(text)
        self._write: Any = None
        self._ready = anyio.Event()

    def answer_through(self, write_stream: Any) -> None:
        self._write = write_stream
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        await self._ready.wait()
        async for raw in self._file:
            if not raw.strip():
                continue
            line = repair_line(raw)
            error = rejection(line)
            if error is None:
                yield line
                continue
            logger.info("answered a malformed request line: %s", error.error.message)
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                await self._write.send(SessionMessage(error))
