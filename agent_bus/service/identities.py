"""Identities on a topic: reserving an agent name, its cursor, and who is around."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from agent_bus.errors import AgentNameInUse, InvalidArgument
from agent_bus.models import Cursor, PresencePeer, Topic
from agent_bus.service import topics
from agent_bus.service.checks import (
    MAX_AGENT_NAME,
    check_int,
    check_name,
    check_text,
    hash_token,
    now,
)
from agent_bus.store import queries
from agent_bus.store.database import Database

ROLE_SUGGESTIONS = ("reviewer", "implementer", "architect", "researcher", "tester")


@dataclass
class Joined:
    topic: Topic
    agent_name: str
    reclaim_token: str
    reclaimed: bool


def suggest_names(agent_name: str, taken: set[str]) -> list[str]:
    """Free names close to a taken one, for `AGENT_NAME_IN_USE`."""
    candidates = [f"{agent_name} {role}" for role in ROLE_SUGGESTIONS]
    candidates += [f"{agent_name}-{n}" for n in range(2, 6)]
    return [c for c in candidates if c not in taken and len(c) <= MAX_AGENT_NAME][:6]


def join(
    db: Database,
    agent_name: object,
    *,
    topic_id: object = None,
    name: object = None,
    allow_closed: object = False,
    reclaim_token: object = None,
) -> Joined:
    """Reserve (or reclaim with its token) an agent name on a topic."""
    agent = check_name(agent_name, "agent_name", MAX_AGENT_NAME)
    token = None
    if reclaim_token is not None:
        token = check_text(reclaim_token, "reclaim_token").strip()
    if topic_id and name:
        raise InvalidArgument("Provide exactly one of topic_id or name, not both", field="topic_id")
    if not topic_id and not name:
        raise InvalidArgument("Provide exactly one of topic_id or name", field="topic_id")
    topic = topics.get(db, topic_id) if topic_id else topics.resolve(db, name, allow_closed)

    def tx(conn: Any) -> Joined:
        topics.require(conn, topic.topic_id)
        at = now()
        row = queries.get_reservation(conn, topic.topic_id, agent)
        if row is None:
            new_token = token or secrets.token_urlsafe(24)
            queries.insert_reservation(conn, topic.topic_id, agent, hash_token(new_token), at)
            return Joined(topic, agent, new_token, reclaimed=False)
        if token is not None and hmac.compare_digest(row[0], hash_token(token)):
            queries.touch_reservation(conn, topic.topic_id, agent, at)
            return Joined(topic, agent, token, reclaimed=True)
        taken = queries.reserved_names(conn, topic.topic_id)
        raise AgentNameInUse(
            f'agent_name "{agent}" is already reserved on this topic. Pass the reclaim_token '
            "from your earlier topic_join to take it back, or choose another name.",
            requested_agent_name=agent,
            suggested_agent_names=suggest_names(agent, taken),
        )

    return db.write(tx)


def cursor_reset(db: Database, topic_id: object, agent_name: str, last_seq: object = 0) -> Cursor:
    """Move an identity's cursor (0 replays the whole topic)."""
    tid = check_text(topic_id, "topic_id")
    seq = check_int(last_seq, "last_seq", minimum=0)

    def tx(conn: Any) -> Cursor:
        topics.require(conn, tid)
        top = queries.last_seq(conn, tid)
        if seq > top:
            raise InvalidArgument(
                f"last_seq must be <= the topic's last seq ({top})", field="last_seq"
            )
        return queries.upsert_cursor(conn, tid, agent_name, seq, now())

    return db.write(tx)


def presence(
    db: Database, topic_id: object, window_seconds: object = 300, limit: object = 200
) -> tuple[float, list[PresencePeer]]:
    """Agents whose cursor moved within the window, most recent first."""
    tid = check_text(topic_id, "topic_id")
    window = check_int(window_seconds, "window_seconds", minimum=1)
    lim = check_int(limit, "limit", minimum=1)
    at = now()

    def tx(conn: Any) -> list[PresencePeer]:
        topics.require(conn, tid)
        return [
            PresencePeer(
                agent_name=r["agent_name"],
                last_seq=r["last_seq"],
                updated_at=r["updated_at"],
                age_seconds=max(0.0, at - r["updated_at"]),
            )
            for r in queries.presence(conn, tid, at - window, lim)
        ]

    return at, db.read(tx)
