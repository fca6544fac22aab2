"""Which agent names each MCP connection has joined on each topic (in memory).

Per the contract, identities do not survive a server restart: clients call
topic_join again (with their reclaim_token) after one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent_bus.errors import AgentNotJoined
from agent_bus.service.bindings import BindingRecorder


class Identities:
    """Joined names per (connection, topic); the last joined is the default identity."""

    def __init__(self) -> None:
        self._names: dict[tuple[int, str], dict[str, str]] = {}
        # Which client session this process serves, for `agent-bus hook` (session bindings).
        self.bindings = BindingRecorder()
        self.sessions: dict[int, Any] = {}  # connection key -> a session to notify it through
        self.on_join: list[Callable[[], None]] = []

    def remember(
        self, session: int, topic_id: str, agent_name: str, token: str, notify: Any = None
    ) -> None:
        names = self._names.setdefault((session, topic_id), {})
        names.pop(agent_name, None)
        names[agent_name] = token  # last joined is the default identity
        if notify is not None:
            self.sessions[session] = notify
        for callback in self.on_join:
            callback()

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


def session_key(ctx: Any) -> int:
    """Identity of the client connection (one per process on stdio)."""
    try:
        session = ctx.session
    except (LookupError, ValueError, AttributeError):
        return 0
    # The SDK builds a ServerSession per request around one connection object.
    return id(getattr(session, "_connection", session))
