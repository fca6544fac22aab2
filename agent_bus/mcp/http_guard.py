"""What the SDK's HTTP app does not do: per-token rate limits, long-poll caps, access log.

One SQLite file has one writer at a time, so one runaway agent must not flood
it: each credential gets a token bucket (``http_rate_per_second``, burst
``http_rate_burst``) and at most ``http_max_long_polls`` waiting ``sync`` calls
at once. Over the limit the request is answered 429 with ``Retry-After`` and
``{"error": {"code": "RATE_LIMITED", …}}`` and never reaches the server.

A credential is keyed by a hash of the bearer token as sent (so nobody can
spend another token's budget without its secret), or by the MCP session id or
the peer address when there is none. The access log names the token by its
public id only; headers and bodies are never logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from agent_bus.errors import RateLimited

access_log = logging.getLogger("agent_bus.http.access")

_BUCKETS_MAX = 10_000  # forget the least recently used credentials beyond this


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class HttpGuard:
    """ASGI middleware around the SDK's streamable HTTP app."""

    def __init__(
        self,
        app: Any,
        *,
        rate_per_second: float,
        burst: int,
        max_long_polls: int,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.rate = rate_per_second
        self.burst = burst
        self.max_long_polls = max_long_polls
        self.max_body = max_body_bytes
        self.calls_in_flight = 0
        self._buckets: dict[str, _Bucket] = {}
        self._polls: dict[str, int] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status: list[int] = [0]

        async def send_watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        key = _credential(scope)
        rpc = ""
        long_poll = False
        try:
            wait = self._take(key)
            if wait is not None:
                await _too_many(send_watch, wait, "too many requests for this token")
                return
            if scope["method"] == "POST":
                body, receive = await _peek(receive, scope, self.max_body)
                rpc, long_poll = _describe(body)
            if long_poll:
                if self._polls.get(key, 0) >= self.max_long_polls:
                    await _too_many(
                        send_watch,
                        1.0,
                        f"this token already holds {self.max_long_polls} waiting sync calls",
                    )
                    return
                self._polls[key] = self._polls.get(key, 0) + 1
            counted = scope["method"] == "POST"  # not the idle GET event streams
            self.calls_in_flight += counted
            try:
                await self.app(scope, receive, send_watch)
            finally:
                self.calls_in_flight -= counted
                if long_poll:
                    self._polls[key] -= 1
                    if not self._polls[key]:
                        del self._polls[key]
        finally:
            _log(scope, status[0], started, rpc)

    def _take(self, key: str) -> float | None:
        """Spend one request of ``key``'s budget; seconds to wait when it is empty."""
        if self.rate <= 0:
            return None
        now = time.monotonic()
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        self._buckets[key] = bucket  # most recently used last
        if len(self._buckets) > _BUCKETS_MAX:
            del self._buckets[next(iter(self._buckets))]
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.rate


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _credential(scope: dict[str, Any]) -> str:
    auth = _header(scope, b"authorization")
    if auth and auth.lower().startswith("bearer "):
        return "t:" + hashlib.sha256(auth[7:].encode("utf-8", "replace")).hexdigest()[:32]
    session = _header(scope, b"mcp-session-id")
    if session:
        return "s:" + session[:64]
    client = scope.get("client") or ("?", 0)
    return f"a:{client[0]}"


async def _peek(receive: Any, scope: dict[str, Any], limit: int) -> tuple[bytes | None, Any]:
    """Read a body of at most ``limit`` bytes and a ``receive`` that replays it.

    Larger bodies are not read here: they go on to the SDK, which answers 413.
    """
    declared = _header(scope, b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None, receive
    chunks: deque[dict[str, Any]] = deque()
    size = 0
    body = bytearray()
    while True:
        message = await receive()
        chunks.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if size > limit:
            break
        body.extend(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> dict[str, Any]:
        if chunks:
            return chunks.popleft()
        return await receive()

    return (bytes(body) if size <= limit else None), replay


def _describe(body: bytes | None) -> tuple[str, bool]:
    """The JSON-RPC method (and tool) for the log, and whether it is a waiting sync."""
    if not body:
        return "", False
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return "(not JSON)", False
    messages = payload if isinstance(payload, list) else [payload]
    names: list[str] = []
    long_poll = False
    for msg in messages[:10]:
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            continue
        method = msg["method"][:64]
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        if method == "tools/call" and isinstance(params.get("name"), str):
            tool = params["name"][:64]
            names.append(f"{method} {tool}")
            args = params.get("arguments") if isinstance(params.get("arguments"), dict) else {}
            if tool == "sync" and args.get("wait_seconds", 60) != 0:
                long_poll = True
        else:
            names.append(method)
    return ",".join(names), long_poll


async def _too_many(send: Any, wait: float, why: str) -> None:
    retry_after = max(1, math.ceil(wait))
    error = RateLimited(f"{why}; retry after {retry_after} s")
    body = json.dumps({"error": {"code": error.code, "message": error.message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _log(scope: dict[str, Any], status: int, started: float, rpc: str) -> None:
    user = scope.get("user")
    token = getattr(getattr(user, "access_token", None), "client_id", None) or "-"
    client = scope.get("client") or ("-", 0)
    ms = (time.monotonic() - started) * 1000
    access_log.info(
        '%s token=%s "%s %s" %s %.0fms %s',
        client[0],
        token,
        scope.get("method", "-"),
        scope.get("path", "-"),
        status or "-",
        ms,
        rpc or "-",
    )
