"""``agent-bus doctor --url URL``: can this agent reach a remote bus, from its side?

Checks in order, stopping at the first failure: the TCP connection, TLS (for
https), authentication (is a token required, is ours accepted) and an MCP round
trip (initialize, then ``ping`` a few times) with its time. The token is read
from an environment variable, as the client configs do, and never printed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from agent_bus.cli._common import JsonOption, echo, emit_json
from agent_bus.errors import InvalidArgument

PINGS = 5
TIMEOUT = 10.0
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "agent-bus-doctor", "version": "1"},
    },
}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def doctor(
    url: Annotated[
        str, typer.Option(help="The server's MCP URL, e.g. https://bus.example.com/mcp.")
    ],
    token_env: Annotated[
        str, typer.Option(help="Environment variable holding the bearer token.")
    ] = "AGENT_BUS_TOKEN",
    as_json: JsonOption = False,
) -> None:
    """Check a remote `agent-bus mcp --http` server: reachability, TLS, auth, round trip.

    Exit status 1 when a check fails. Local databases: see `agent-bus db check`.

    Examples:

        AGENT_BUS_TOKEN=agb_... agent-bus doctor --url https://bus.example.com/mcp

        agent-bus doctor --url http://127.0.0.1:8766/mcp --json
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument("--url must be an http:// or https:// URL", field="url")
    token = os.environ.get(token_env) or None
    checks = run_checks(url, token, token_env)
    if as_json:
        emit_json(
            {"url": url, "ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
        )
    else:
        for c in checks:
            echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def run_checks(url: str, token: str | None, token_env: str) -> list[Check]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    checks: list[Check] = []
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            connect_ms = (time.perf_counter() - started) * 1000
            checks.append(Check("reachability", True, f"{host}:{port} in {connect_ms:.1f} ms"))
            if parts.scheme == "https":
                checks.append(_tls(sock, host))
    except OSError as exc:
        checks.append(Check("reachability", False, f"{host}:{port}: {exc.strerror or exc}"))
    if not all(c.ok for c in checks):
        return checks
    checks.append(_auth(url, token, token_env))
    if checks[-1].ok:
        checks.append(asyncio.run(_round_trip(url, token)))
    return checks


def _tls(sock: socket.socket, host: str) -> Check:
    context = ssl.create_default_context()
    try:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            cert = tls.getpeercert() or {}
            until = cert.get("notAfter", "?")
            return Check("tls", True, f"{tls.version()}, certificate valid until {until}")
    except ssl.SSLError as exc:
        if exc.reason == "WRONG_VERSION_NUMBER":
            return Check("tls", False, "the server does not speak TLS on this port (http://?)")
        return Check("tls", False, f"{exc.reason or exc} (is the certificate trusted here?)")
    except OSError as exc:
        return Check("tls", False, str(exc))


def _post(url: str, token: str | None) -> Any:
    import httpx2

    headers = {"Accept": "application/json, text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx2.post(url, json=INIT, headers=headers, timeout=TIMEOUT)


def _auth(url: str, token: str | None, token_env: str) -> Check:
    try:
        anonymous = _post(url, None)
        required = anonymous.status_code == 401
        if not token:
            if required:
                return Check("auth", False, f"the server requires a token; set {token_env}")
            return _status_check(anonymous, "no token required (a loopback server without tokens)")
        mine = _post(url, token)
    except Exception as exc:  # noqa: BLE001 - the edge: report any transport failure as a check
        return Check("auth", False, f"{type(exc).__name__}: {exc}")
    if mine.status_code == 401:
        return Check(
            "auth", False, f"the token in {token_env} was refused (wrong, revoked or expired)"
        )
    how = "token accepted" if required else "token not needed (server has no tokens)"
    return _status_check(mine, how)


def _status_check(response: Any, ok_text: str) -> Check:
    if response.status_code == 421:
        return Check("auth", False, "Host refused (421): start the server with --allowed-host")
    if response.status_code >= 400:
        return Check("auth", False, f"HTTP {response.status_code}: {response.text[:200]}")
    return Check("auth", True, ok_text)


async def _round_trip(url: str, token: str | None) -> Check:
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    times: list[float] = []
    try:
        async with httpx2.AsyncClient(headers=headers, timeout=TIMEOUT) as client:
            async with streamable_http_client(url, http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    info = await session.initialize()
                    for _ in range(PINGS):
                        started = time.perf_counter()
                        result = await session.call_tool("ping", {})
                        times.append((time.perf_counter() - started) * 1000)
                        if result.is_error:
                            return Check("round trip", False, "ping answered an error")
    except Exception as exc:  # noqa: BLE001 - the edge: any failure is the answer
        return Check("round trip", False, f"{type(exc).__name__}: {exc}")
    server = f"{info.server_info.name} {info.server_info.version}"
    return Check(
        "round trip",
        True,
        f"{server}; ping p50 {statistics.median(times):.1f} ms over {PINGS} calls",
    )


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
