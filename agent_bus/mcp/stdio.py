"""Reading JSON-RPC lines from stdin so that no input can stall a client.

The SDK's reader drops a line its JSON parser rejects without answering, and
that parser rejects lone UTF-16 surrogate escapes (``"\\ud800"``), which are
legal JSON. A client that sent one would wait forever. Here such text is
replaced by U+FFFD — the same policy the SDK applies to invalid UTF-8 bytes —
so the request is answered like any other.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


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
    except ValueError:
        return line  # malformed anyway; the SDK reports it
    return json.dumps(_clean(parsed), ensure_ascii=False) + "\n"


class RepairedStdin:
    """An async line iterator over the process's stdin for `stdio_server(stdin=...)`."""

    def __init__(self) -> None:
        text = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        self._file = anyio.wrap_file(text)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async for line in self._file:
            yield repair_line(line)
