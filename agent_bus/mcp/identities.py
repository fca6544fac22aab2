"""Which agent names each MCP connection has joined on each topic (in memory).

Per the contract, identities do not survive a server restart: clients call
topic_join again (with their reclaim_token) after one.

A connection is held weakly: when the SDK drops it (stdio end of input, an HTTP
session's DELETE or idle timeout), a finalizer forgets its names and tells
`on_forget` listeners, so a long-running HTTP server does not keep every session
it ever served, and a new connection can never inherit a dead one's key.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from mcp.server.connection import Connection

from agent_bus.errors import AgentNotJoined
from agent_bus.service.bindings import BindingRecorder


class Identities:
    """Joined names per (connection, topic); the last joined is the default identity."""

    def __init__(self) -> None:
        self._names: dict[tuple[int, str], dict[str, str]] = {}
        # Which client session this process serves, for `agent-bus hook` (session bindings).
        self.bindings = BindingRecorder()
        # connection key -> a weak reference to the SDK connection (a strong one otherwise)
        self._connections: dict[int, Callable[[], Any]] = {}
        self.on_join: list[Callable[[], None]] = []
        self.on_forget: list[Callable[[int], None]] = []

    def remember(
        self, session: int, topic_id: str, agent_name: str, token: str, notify: Any = None
    ) -> None:
        """Record a join; ``notify`` is the connection (`connection_of`) to push to."""
        names = self._names.setdefault((session, topic_id), {})
        names.pop(agent_name, None)
        names[agent_name] = token  # last joined is the default identity
        if notify is not None:
            self.track(session, notify)
        for callback in self.on_join:
            callback()

    def track(self, key: int, connection: Any) -> None:
        """Hold ``connection`` weakly under ``key``; forget the key once it is collected."""
        if key in self._connections:
            return
        if isinstance(connection, Connection):
            self._connections[key] = weakref.ref(connection)
            weakref.finalize(connection, self.forget, key)
        else:  # not the SDK's connection object (a per-request session): keep it, as before
            self._connections[key] = lambda: connection

    def connection(self, key: int) -> Any:
        """The live connection of ``key`` to notify, or None."""
        ref = self._connections.get(key)
        return ref() if ref is not None else None

    @property
    def connected(self) -> int:
        return len(self._connections)

    def forget(self, key: int) -> None:
        """Drop everything about a connection that has ended."""
        self._connections.pop(key, None)
        for pair in [pair for pair in self._names if pair[0] == key]:
            del self._names[pair]
        for callback in self.on_forget:
            callback(key)

    def joined(self, topic_id: str) -> list[tuple[int, set[str]]]:
        """Each connection joined to ``topic_id`` with the names it joined as."""
        return [(s, set(names)) for (s, t), names in self._names.items() if t == topic_id and names]

    def token(self, session: int, topic_id: str, agent_name: str) -> str | None:
        return self._names.get((session, topic_id), {}).get(agent_name)

    def served(self) -> set[tuple[str, str]]:
        """Every (topic_id, agent_name) some connection of this server has joined."""
        return {(topic, name) for (_, topic), names in self._names.items() for name in names}

    def resolve(self, session: int, topic_id: str, agent_name: str | None) -> str:
        names = self._names.get((session, topic_id), {})
        if agent_name is None:
            if not names:
                raise AgentNotJoined(
                    "Not joined to this topic in this session. Call topic_join(agent_name=..., "
                    "topic_id=...) first (pass your reclaim_token to keep an earlier name)."
                )
            return next(reversed(names))
        clean = agent_name.strip() if isinstance(agent_name, str) else agent_name
        if clean not in names:
            raise AgentNotJoined(
                f"This session has not joined the topic as {clean!r}. Call topic_join first "
                "(with your reclaim_token if the name is already yours)."
            )
        return clean


def connection_of(ctx: Any) -> Any:
    """The client connection behind a request (None outside a request).

    The SDK builds a ServerSession per request around one connection object, which
    lives as long as the client's session does.
    """
    try:
        session = ctx.session
    except (LookupError, ValueError, AttributeError):
        return None
    return getattr(session, "_connection", session)


def session_key(ctx: Any) -> int:
    """Identity of the client connection (one per process on stdio)."""
    connection = connection_of(ctx)
    return 0 if connection is None else id(connection)
