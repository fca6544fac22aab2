"""`agent-bus web`: Datasette on the bus database with our plugin and metadata.

Datasette (and uvicorn) are imported here only when the web UI starts, never
on the stdio server's path. With ``allow_remote`` the UI is for remote people: every
request needs one of the bus's access tokens (the plugin's ``auth`` module), and it
refuses to start while none exists.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any

from agent_bus.errors import TokenRequired
from agent_bus.settings import BusSettings

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
PLUGIN_MODULE = "agent_bus_datasette"


class WebError(Exception):
    """The web UI cannot start as asked (e.g. a public address without allow_remote)."""


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_plugin() -> Any:
    """Import our Datasette plugin and register it unless its entry point already did."""
    try:
        import agent_bus_datasette as plugin
    except ImportError:
        # A source checkout run before the package was (re)installed.
        source = Path(__file__).resolve().parent.parent / "datasette_plugins"
        if not (source / PLUGIN_MODULE).is_dir():
            raise
        sys.path.insert(0, str(source))
        import agent_bus_datasette as plugin
    from datasette.plugins import pm

    if not pm.is_registered(plugin):
        pm.register(plugin, name="agent_bus")
    return plugin


def build_metadata(
    db_name: str,
    base_url: str = "/",
    *,
    anonymous_writes: bool = True,
    require_token: bool = False,
) -> dict[str, Any]:
    """Instance metadata: our title, the bus database's tables, facets and queries,
    whether visitors without a token may post and manage topics (loopback only), and
    whether every request needs a token (a remote UI)."""
    from agent_bus_datasette.metadata import database_metadata

    return {
        "title": "agent-bus",
        "description": "Conversations of the AI coding agents on this machine.",
        "databases": {db_name: database_metadata(f"{base_url.rstrip('/')}/-/agent-bus/{db_name}")},
        "plugins": {
            "agent-bus": {"anonymous_writes": anonymous_writes, "require_token": require_token}
        },
    }


def build_datasette(
    settings: BusSettings,
    *,
    base_url: str = "/",
    anonymous_writes: bool = True,
    require_token: bool = False,
) -> Any:
    """A Datasette instance on the bus database (created if missing), plugin loaded.

    ``anonymous_writes`` is false when the UI is served beyond loopback: then only actors
    whose scope allows writing (``access.actor_may_write``) see and use the write forms.
    ``require_token``: every request needs an access token (login page, or a 401).
    """
    from agent_bus.bus import Bus

    bus = Bus(settings)
    try:
        bus.ensure_ready()  # creates the schema on a fresh machine; refuses foreign files
    finally:
        bus.close()
    load_plugin()
    from datasette.app import Datasette

    path = Path(settings.db)
    return Datasette(
        [str(path)],
        metadata=build_metadata(
            path.stem, base_url, anonymous_writes=anonymous_writes, require_token=require_token
        ),
        settings={"base_url": base_url},
        secret=settings.web_secret.get_secret_value() if settings.web_secret else None,
    )


def run_web(
    settings: BusSettings,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = True,
    allow_remote: bool = False,
) -> None:
    """Serve the web UI until interrupted.

    ``allow_remote`` serves remote people (directly on ``host``, or behind a reverse proxy
    on loopback): every request then needs an access token.

    Raises:
        WebError: ``host`` is not a loopback address and ``allow_remote`` is false.
        TokenRequired: ``allow_remote`` while the bus has no usable access token.
    """
    if not is_loopback(host) and not allow_remote:
        raise WebError(
            f"refusing to listen on {host}: the web UI without tokens shows every "
            "conversation. Use 127.0.0.1, or pass --allow-remote (every request then needs "
            "an access token)."
        )
    tokens = usable_tokens(settings)
    if allow_remote and tokens == 0:
        raise TokenRequired(
            "--allow-remote needs at least one usable access token, and the bus has none: "
            "create one with `agent-bus tokens create LABEL` (add --read-only, --topic NAME "
            "or --agent NAME to limit it) and give it to the person who will sign in."
        )
    import uvicorn

    ds = build_datasette(settings, anonymous_writes=not allow_remote, require_token=allow_remote)
    # Bound here, before the URL is printed: with port 0 the system picks a free port and
    # the line below names it (scripts and tests read it; no pick-then-bind race).
    sock = _listen(host, port)
    port = sock.getsockname()[1]
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in url_host:
        url_host = f"[{url_host}]"
    url = f"http://{url_host}:{port}/-/agent-bus"
    print(f"agent-bus web UI on {url} (Ctrl+C to stop)", file=sys.stderr, flush=True)
    if allow_remote:
        print(
            f"every request needs an access token ({tokens} usable; sign in at "
            f"{url}/-/login). Plain HTTP shows tokens and pages to anyone on the path: "
            "off this machine, put a TLS reverse proxy in front.",
            file=sys.stderr,
            flush=True,
        )
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    try:
        # Open long-polls (live threads) must not hold Ctrl+C for their full 20 s.
        config = uvicorn.Config(
            ds.app(),
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        from agent_bus_datasette.state import close

        close(ds)


def usable_tokens(settings: BusSettings) -> int:
    """Access tokens that could sign in now (the bus is created if missing)."""
    from agent_bus.bus import Bus
    from agent_bus.service import access

    bus = Bus(settings)
    try:
        bus.ensure_ready()
        return access.usable_count(bus)
    finally:
        bus.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port), as uvicorn binds it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise WebError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise WebError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
