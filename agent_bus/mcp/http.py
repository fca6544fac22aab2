"""The MCP server over streamable HTTP (``agent-bus mcp --http``), run by uvicorn.

The same `build_server` as stdio, served by the SDK's streamable HTTP app at
``/mcp``: one process, many sessions, one change watcher and one connection
pool. The SDK does the security it has: bearer auth (`BusTokenVerifier`
behind its `RequireAuthMiddleware`, 401 with ``WWW-Authenticate``), the
session-to-token binding, DNS-rebinding protection (`TransportSecuritySettings`)
and the body size limit (413). What it lacks is in `agent_bus.mcp.http_guard`:
per-token rate limits and long-poll caps (429 with ``Retry-After``) and an
access log without secrets.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from agent_bus.errors import InvalidArgument, TokenRequired
from agent_bus.mcp.scoping import SCOPE_CLAIM
from agent_bus.service import access
from agent_bus.settings import BusSettings

logger = logging.getLogger("agent_bus.http")

MCP_PATH = "/mcp"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class StartupRefused(InvalidArgument):
    """The server would start unsafely (a public bind, half a TLS pair) or cannot listen."""


@dataclass
class HttpOptions:
    host: str = "127.0.0.1"
    port: int = 8766
    allow_remote: bool = False
    certfile: Path | None = None
    keyfile: Path | None = None
    allowed_hosts: list[str] = field(default_factory=list)


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BusTokenVerifier:
    """The SDK's `TokenVerifier` over our ``access_tokens`` table.

    Called by the SDK for every HTTP request, so a revoked or expired token fails on
    its next request. The scope rides in the `AccessToken` claims; the secret does not
    (``token`` holds the public id).
    """

    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self._last_use = access.LastUse()

    async def verify_token(self, token: str) -> AccessToken | None:
        if access.token_id_of(token) is None:
            return None
        info = await self.bus.run(access.verify, self.bus, token)
        if info is None:
            return None
        if self._last_use.due(info.token_id):
            await self.bus.run(self._last_use.record, self.bus, info.token_id)
        return AccessToken(
            token=info.token_id,
            client_id=info.token_id,
            subject=info.token_id,
            scopes=[],
            expires_at=None if info.expires_at is None else int(info.expires_at),
            claims={SCOPE_CLAIM: info.scope().as_claims()},
        )


def allowed_hosts(opts: HttpOptions) -> list[str]:
    """Host header values accepted (with and without a port), loopback names always."""
    names = {"127.0.0.1", "localhost", "[::1]"}
    host = opts.host.strip("[]")
    if host in ("0.0.0.0", "::"):
        names.update({socket.gethostname(), socket.getfqdn(), "host.docker.internal"})
    elif host:
        names.add(f"[{host}]" if ":" in host else host)
    names.update(h.strip() for h in opts.allowed_hosts if h.strip())
    out: list[str] = []
    for name in sorted(names):
        out += [name, f"{name}:*"]
    return out


def transport_security(opts: HttpOptions) -> TransportSecuritySettings:
    hosts = allowed_hosts(opts)
    bare = [h for h in hosts if not h.endswith(":*")]
    origins = [f"{scheme}://{h}" for scheme in ("http", "https") for h in bare]
    origins += [o + ":*" for o in origins]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def check_startup(opts: HttpOptions, usable_tokens: int) -> bool:
    """Whether tokens are required; raises `StartupRefused` for an unsafe start and
    `TokenRequired` for a non-loopback bind without a usable token."""
    if not is_loopback(opts.host) and not opts.allow_remote:
        raise StartupRefused(
            f"{opts.host} is not a loopback address: pass --allow-remote to serve other "
            "machines (tokens required), or bind 127.0.0.1."
        )
    if not is_loopback(opts.host) and usable_tokens == 0:
        raise TokenRequired(
            "a non-loopback bind needs at least one access token: create one with "
            "`agent-bus tokens create LABEL` and give it to the remote agent."
        )
    if (opts.certfile is None) != (opts.keyfile is None):
        raise StartupRefused("--certfile and --keyfile go together")
    return usable_tokens > 0


def build_app(server: Any, settings: BusSettings, opts: HttpOptions, *, require_tokens: bool):
    """The ASGI app: the SDK's streamable HTTP app wrapped in our guard.

    With ``require_tokens`` the server gets the SDK's bearer auth; the MCPServer must
    have been built with the same verifier (see `server_auth`).
    """
    from agent_bus.mcp.http_guard import HttpGuard

    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(opts),
        max_request_body_size=settings.http_max_body_bytes,
        session_idle_timeout=settings.http_session_idle_seconds,
        host=opts.host,
    )
    return HttpGuard(
        app,
        rate_per_second=settings.http_rate_per_second,
        burst=settings.http_rate_burst,
        max_long_polls=settings.http_max_long_polls,
        max_body_bytes=settings.http_max_body_bytes,
    )


def server_auth(bus: Any, base_url: str) -> dict[str, Any]:
    """MCPServer keyword arguments for bearer auth with our tokens.

    No OAuth server stands behind the tokens, so no protected-resource metadata is
    advertised (``resource_server_url=None``): clients are configured with a static
    bearer header and never start an OAuth flow. ``issuer_url`` is required by the SDK
    and names this server.
    """
    return {
        "token_verifier": BusTokenVerifier(bus),
        "auth": AuthSettings(issuer_url=base_url, resource_server_url=None),
    }


def _bind(opts: HttpOptions) -> socket.socket:
    family = socket.AF_INET6 if ":" in opts.host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((opts.host.strip("[]"), opts.port))
    except OSError as exc:
        sock.close()
        raise StartupRefused(f"cannot listen on {opts.host}:{opts.port}: {exc.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve_http(settings: BusSettings, opts: HttpOptions) -> int:
    """Run until SIGINT/SIGTERM; returns the exit status."""
    import uvicorn

    from agent_bus.bus import Bus
    from agent_bus.mcp.server import build_server

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    for noisy in ("mcp", "uvicorn.error", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    bus = Bus(settings)
    try:
        bus.ensure_ready()
        require_tokens = check_startup(opts, access.usable_count(bus))
        sock = _bind(opts)
    except (StartupRefused, TokenRequired) as exc:
        bus.close()
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    scheme = "https" if opts.certfile else "http"
    shown = f"[{opts.host}]" if ":" in opts.host else opts.host
    base_url = f"{scheme}://{shown}:{port}"
    extra = server_auth(bus, base_url) if require_tokens else {}
    server = build_server(settings, bus, **extra)
    # Agents over HTTP are nobody's child processes here: their joins bind no client session.
    server.identities.bindings.disable()  # type: ignore[attr-defined]
    app = build_app(server, settings, opts, require_tokens=require_tokens)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="on",
        ssl_certfile=str(opts.certfile) if opts.certfile else None,
        ssl_keyfile=str(opts.keyfile) if opts.keyfile else None,
        timeout_graceful_shutdown=None,
    )
    runner = _make_server(config, bus=bus, guard=app, grace=settings.http_shutdown_grace_seconds)
    auth = "bearer tokens required" if require_tokens else "no tokens (loopback only)"
    print(f"agent-bus mcp: serving {base_url}{MCP_PATH} ({auth})", file=sys.stderr, flush=True)
    # uvicorn re-raises the signal that stopped it; make SIGTERM end like Ctrl-C, so the
    # bus is closed and the exit status is 0.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(runner.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        bus.close()
    return 0


def _make_server(config: Any, *, bus: Any, guard: Any, grace: float) -> Any:
    """uvicorn's server, whose shutdown first ends every long-poll.

    A waiting ``sync`` answers at once (status ``timeout``) instead of holding the
    shutdown for up to its ``wait_seconds``; calls in flight get ``grace`` seconds to
    answer, then what is left (idle event streams) is cancelled.
    """
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            for srv in self.servers:
                srv.close()
            _end_waits(bus)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace
            while guard.calls_in_flight and loop.time() < deadline:
                await asyncio.sleep(0.02)
            self.config.timeout_graceful_shutdown = 0  # type: ignore[assignment]
            await super().shutdown(sockets)

    return Server(config)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _end_waits(bus: Any) -> None:
    watcher = getattr(bus, "watcher", None)
    stop = getattr(watcher, "stop_waits", None)
    if stop is not None:
        stop()
