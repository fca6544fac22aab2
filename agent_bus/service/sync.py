"""sync: send, acknowledge, read and long-poll in one call, plus sending without a join.

One step of `sync` is one write transaction, so a crash leaves all of it or none.
Waiting is an ``await`` on the process-wide change watcher (`agent_bus.wake`),
never a blocking call on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import anyio

from agent_bus.errors import InvalidArgument, TopicClosed
from agent_bus.models import Cursor, Message, OutboxItem, SentMessage, Warning
from agent_bus.service import topics
from agent_bus.service.checks import MAX_AGENT_NAME, check_bool, check_int, check_name, now
from agent_bus.service.messages import insert_messages, new_messages
from agent_bus.store import queries
from agent_bus.store.database import Database

MAX_WAIT_SECONDS = 86400

Step = tuple[list[SentMessage], list[Message], Cursor, bool]


@dataclass
class SyncResult:
    topic_id: str
    agent_name: str
    status: str
    cursor: Cursor
    sent: list[SentMessage]
    received: list[Message]
    has_more: bool
    warnings: list[Warning] = field(default_factory=list)


def check_args(
    max_items: object,
    wait_seconds: object,
    include_self: object,
    auto_advance: object,
    ack_through: object,
    *,
    max_sync_items: int,
) -> None:
    """Check sync's scalar arguments before any step runs."""
    check_int(max_items, "max_items", minimum=1, maximum=max_sync_items)
    check_int(wait_seconds, "wait_seconds", minimum=0, maximum=MAX_WAIT_SECONDS)
    check_bool(include_self, "include_self")
    check_bool(auto_advance, "auto_advance")
    if ack_through is not None:
        check_int(ack_through, "ack_through", minimum=0)
        if auto_advance:
            raise InvalidArgument("ack_through requires auto_advance=false", field="ack_through")


def step(
    db: Database,
    topic_id: str,
    agent_name: str,
    items: list[OutboxItem],
    *,
    max_items: int,
    include_self: bool,
    auto_advance: bool,
    ack_through: int | None,
) -> Step:
    """One atomic step of sync: send, acknowledge, read, advance, touch presence."""

    def tx(conn: Any) -> Step:
        topic = topics.require(conn, topic_id)
        if items and topic.status != "open":
            raise TopicClosed(
                f"Topic {topic.name!r} is closed; nothing was sent. Create or join an open "
                "topic to continue."
            )
        at = now()
        cursor = queries.get_cursor(conn, topic_id, agent_name) or Cursor(last_seq=0, updated_at=at)
        fresh = new_messages(topic_id, agent_name, items, at)
        inserted = insert_messages(conn, topic_id, fresh, now=at)
        last = cursor.last_seq
        if not auto_advance and ack_through is not None:
            if ack_through > inserted.last_seq:
                raise InvalidArgument(
                    f"ack_through ({ack_through}) exceeds the topic's last seq "
                    f"({inserted.last_seq})",
                    field="ack_through",
                )
            last = max(last, ack_through)
        rows = queries.messages_after(
            conn,
            topic_id,
            last,
            exclude_sender=None if include_self else agent_name,
            limit=max_items + 1,
        )
        has_more = len(rows) > max_items
        received = rows[:max_items]
        if auto_advance and received:
            last = max(last, received[-1].seq)
        cursor = queries.upsert_cursor(conn, topic_id, agent_name, last, at)
        return inserted.sent, received, cursor, has_more

    return db.write(tx)


def post(db: Database, topic_id: str, sender: object, items: list[OutboxItem]) -> list[SentMessage]:
    """Store messages as ``sender`` without a join (a person steering from CLI or web)."""
    name = check_name(sender, "sender", MAX_AGENT_NAME)

    def tx(conn: Any) -> list[SentMessage]:
        topic = topics.require(conn, topic_id)
        if topic.status != "open":
            raise TopicClosed(f"Topic {topic.name!r} is closed; nothing was sent.")
        at = now()
        return insert_messages(conn, topic_id, new_messages(topic_id, name, items, at), now=at).sent

    return db.write(tx)


def rewind_cursor(db: Database, topic_id: str, agent_name: str, to_seq: int, if_seq: int) -> bool:
    """Undo a cursor move nobody was told about (see `sync`), unless it moved again since."""
    return db.write(lambda c: queries.rewind_cursor(c, topic_id, agent_name, to_seq, if_seq))


def has_messages_after(db: Database, topic_id: str, after_seq: int, exclude: str | None) -> bool:
    """The cheap read a waiter makes before it pays for a write step."""
    return db.read(lambda c: queries.any_after(c, topic_id, after_seq, exclude))


async def sync(
    db: Database,
    topic_id: str,
    agent_name: str,
    items: list[OutboxItem],
    *,
    max_items: int,
    include_self: bool,
    wait_seconds: int,
    auto_advance: bool,
    ack_through: int | None,
    presence_touch_seconds: float,
) -> SyncResult:
    """sync(): one atomic step, then long-poll until a message arrives or time runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    opts: dict[str, Any] = dict(
        max_items=max_items, include_self=include_self, auto_advance=auto_advance
    )
    exclude = None if include_self else agent_name

    def result(status: str, parts: Step, sent: list[SentMessage]) -> SyncResult:
        _, received, cursor, has_more = parts
        return SyncResult(topic_id, agent_name, status, cursor, sent, received, has_more)

    async def run_step(fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A step on the worker pool that a cancelled caller cannot make lose messages.

        The step commits in its thread even when this call is cancelled meanwhile (the
        client gave up, a timeout fired). Its reply is then never sent, so the cursor
        move is undone: what it read comes with the next sync instead of vanishing.
        """
        task = asyncio.ensure_future(db.run(fn, *args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                done = await task
                if done is not None and done[1] and auto_advance:
                    rewind = done[1][0].seq - 1  # only own messages lie before it
                    await db.run(rewind_cursor, db, topic_id, agent_name, rewind, done[2].last_seq)
            raise

    first = await run_step(step, db, topic_id, agent_name, items, ack_through=ack_through, **opts)
    sent = first[0]
    if any(not s.duplicate for s in sent):
        db.notify_change()
    if first[1] or wait_seconds == 0:
        return result("ready" if first[1] else "empty", first, sent)

    def step_if_pending(after_seq: int, force: bool) -> Step | None:
        """A step when something new is there (or ``force``, to touch presence)."""
        if not force and not has_messages_after(db, topic_id, after_seq, exclude):
            return None
        return step(db, topic_id, agent_name, [], ack_through=None, **opts)

    cursor = first[2]
    next_touch = loop.time() + presence_touch_seconds
    while deadline - loop.time() > 0 and not db.watcher.stopping:  # stopping: shutdown
        generation = db.watcher.generation  # before the check: no missed wake-up
        touch = loop.time() >= next_touch
        # One hop to the worker pool: a cheap read, and the write step only if needed.
        found = await run_step(step_if_pending, cursor.last_seq, touch)
        if found is not None:
            cursor = found[2]
            next_touch = loop.time() + presence_touch_seconds
            if found[1]:
                return result("ready", found, sent)
            continue
        await db.watcher.wait(generation, min(deadline, next_touch) - loop.time())
    last = await run_step(step, db, topic_id, agent_name, [], ack_through=None, **opts)
    return result("ready" if last[1] else "timeout", last, sent)


async def wait_for_messages(db: Database, topic_id: str, after_seq: int, timeout: float) -> bool:
    """Wait (without a cursor) until the topic has a message beyond ``after_seq``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        generation = db.watcher.generation
        if await db.run(has_messages_after, db, topic_id, after_seq, None):
            return True
        remaining = deadline - loop.time()
        if remaining <= 0 or db.watcher.stopping:
            return False
        await db.watcher.wait(generation, remaining)
