"""Topics: create, find, list and close them (MCP tools, CLI and web alike)."""

from __future__ import annotations

from typing import Any

from agent_bus.errors import InvalidArgument, TopicAmbiguous, TopicNotFound
from agent_bus.models import Topic, TopicSummary
from agent_bus.service.checks import (
    MAX_TOPIC_NAME,
    check_bool,
    check_metadata,
    check_name,
    check_text,
    new_id,
    now,
)
from agent_bus.store import queries
from agent_bus.store.database import Database

STATUSES = ("open", "closed", "all")


def require(conn: Any, topic_id: str) -> Topic:
    """The topic inside a transaction, or `TopicNotFound`."""
    topic = queries.get_topic(conn, topic_id)
    if topic is None:
        raise TopicNotFound(f"No topic with topic_id {topic_id!r}.")
    return topic


def get(db: Database, topic_id: object) -> Topic:
    """A topic by exact id (the tools' ``topic_id`` argument)."""
    tid = check_text(topic_id, "topic_id")
    topic = db.read(lambda c: queries.get_topic(c, tid))
    if topic is None:
        raise TopicNotFound(f"No topic with topic_id {tid!r}. Use topic_list to see topics.")
    return topic


def create(
    db: Database, name: object, metadata: object, mode: object, *, max_chars: int
) -> tuple[Topic, bool]:
    """Create a topic, or with mode='reuse' return the newest open one of that name.

    Returns the topic and whether it was created.
    """
    if mode not in ("reuse", "new"):
        raise InvalidArgument("mode must be 'reuse' or 'new'", field="mode")
    meta = check_metadata(metadata, "metadata", max_chars)
    clean = None if name is None else check_name(name, "name", MAX_TOPIC_NAME)

    def tx(conn: Any) -> tuple[Topic, bool]:
        if mode == "reuse" and clean is not None:
            found = queries.newest_topic_named(conn, clean, "open")
            if found is not None:
                return found, False
        topic_id = new_id()
        topic = Topic(
            topic_id=topic_id,
            name=clean or f"topic-{topic_id}",
            status="open",
            created_at=now(),
            metadata=meta,  # type: ignore[arg-type]
        )
        queries.insert_topic(conn, topic)
        return topic, True

    return db.write(tx)


def resolve(db: Database, name: object, allow_closed: object = False) -> Topic:
    """The newest open topic of a name (or closed, when allowed), as ``topic_resolve``."""
    clean = check_name(name, "name", MAX_TOPIC_NAME)
    include_closed = check_bool(allow_closed, "allow_closed")

    def tx(conn: Any) -> Topic | None:
        found = queries.newest_topic_named(conn, clean, "open")
        if found is None and include_closed:
            found = queries.newest_topic_named(conn, clean, "closed")
        return found

    topic = db.read(tx)
    if topic is None:
        hint = "" if include_closed else " (pass allow_closed=true to include closed topics)"
        raise TopicNotFound(f"No open topic named {clean!r}{hint}.")
    return topic


def list_topics(
    db: Database, status: object = "open", name_glob: str | None = None, limit: int | None = None
) -> list[TopicSummary]:
    """Topics with counts and last activity, newest first (``topic_list``, overviews)."""
    if status not in STATUSES:
        raise InvalidArgument("status must be 'open', 'closed' or 'all'", field="status")
    return db.read(
        lambda c: queries.list_topics(c, status=str(status), name_glob=name_glob, limit=limit)
    )


def close(db: Database, topic_id: object, reason: object = None) -> tuple[Topic, bool]:
    """Close a topic; returns it and whether it was already closed."""
    tid = check_text(topic_id, "topic_id")
    why = None
    if reason is not None:
        why = check_text(reason, "reason", allow_empty=True).strip() or None

    def tx(conn: Any) -> tuple[Topic, bool]:
        topic = require(conn, tid)
        if topic.status == "closed":
            return topic, True
        closed_at = now()
        queries.close_topic(conn, tid, closed_at, why)
        update = {"status": "closed", "closed_at": closed_at, "close_reason": why}
        return topic.model_copy(update=update), False

    return db.write(tx)


def reopen(db: Database, topic_id: object) -> tuple[Topic, bool]:
    """Open a closed topic again (a person changed their mind); returns it and whether it
    was already open. Its close time and reason are cleared."""
    tid = check_text(topic_id, "topic_id")

    def tx(conn: Any) -> tuple[Topic, bool]:
        topic = require(conn, tid)
        if topic.status == "open":
            return topic, True
        queries.reopen_topic(conn, tid)
        update = {"status": "open", "closed_at": None, "close_reason": None}
        return topic.model_copy(update=update), False

    return db.write(tx)


def resolve_ref(db: Database, ref: str) -> Topic:
    """A topic by id, id prefix or name for humans' tools.

    A name means the newest open topic of that name; with none open, the one closed
    topic of that name.

    Raises:
        TopicNotFound: nothing matches.
        TopicAmbiguous: only closed topics have that name and there are several, or an
            id prefix matches several topics.
    """
    ref = check_text(ref, "topic").strip()

    def tx(conn: Any) -> Topic:
        topic = queries.get_topic(conn, ref)
        if topic is not None:
            return topic
        named = queries.topics_named(conn, ref)  # newest first
        open_named = [t for t in named if t.status == "open"]
        if open_named:  # the newest open topic of that name, as topic_resolve does
            return open_named[0]
        if len(named) == 1:
            return named[0]
        if named:
            listing = ", ".join(f"{t.topic_id} ({t.status})" for t in named[:10])
            raise TopicAmbiguous(
                f"{len(named)} topics are named {ref!r}: {listing}. Pass a topic id.",
                candidates=[t.topic_id for t in named],
            )
        prefixed = queries.topics_with_id_prefix(conn, ref) if len(ref) >= 4 else []
        if len(prefixed) == 1:
            return prefixed[0]
        if prefixed:
            raise TopicAmbiguous(
                f"{ref!r} is a prefix of several topic ids; type more of it.",
                candidates=[t.topic_id for t in prefixed],
            )
        raise TopicNotFound(f"No topic with id or name {ref!r}. See `agent-bus topics list`.")

    return db.read(tx)
