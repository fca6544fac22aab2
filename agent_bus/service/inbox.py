"""Unread state per identity: counts and a short digest, newest first.

Used by the hook door (one short process, no pydantic) and by any door that
wants "what is waiting for this agent". Takes an open ``sqlite3.Connection``
so that the hook can call it without the pooled database handle.
"""

from __future__ import annotations

from collections import namedtuple

from agent_bus.store import inbox as q

TYPE_CHECKING = False
if TYPE_CHECKING:  # the hook process skips importing typing helpers
    import sqlite3
    from collections.abc import Iterable

FIRST_LINE_CHARS = 160
DIGEST_ITEMS = 3


DigestItem = namedtuple("DigestItem", "seq sender message_type first_line created_at")

_TopicInbox = namedtuple(
    "_TopicInbox",
    "topic_id topic_name agent_name status cursor unread capped senders items",
)


class TopicInbox(_TopicInbox):
    """What one identity (topic + agent name) has not read yet.

    ``senders`` maps sender -> unread count (most first); ``items`` are the newest
    unread messages, newest first. Named tuples, not dataclasses: the hook process
    must not pay for importing ``dataclasses``/``inspect``.
    """

    __slots__ = ()

    @property
    def newest_seq(self) -> int:
        return self.items[0].seq if self.items else self.cursor


def first_line(text: str, limit: int = FIRST_LINE_CHARS) -> str:
    """The first non-blank line, at most ``limit`` characters (an ellipsis marks a cut)."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
    return ""


def unread(
    conn: sqlite3.Connection,
    identities: Iterable[tuple[str, str]],
    *,
    digest_items: int = DIGEST_ITEMS,
    include_closed: bool = False,
) -> list[TopicInbox]:
    """Unread counts and digests of ``identities`` that have something unread.

    Messages count when their seq is above the identity's cursor and another
    peer sent them. Identities that are not joined (no cursor) are skipped;
    closed topics too unless ``include_closed``. Topics come newest first.
    """
    found: list[TopicInbox] = []
    for topic_id, agent_name in dict.fromkeys(identities):
        state = q.identity_state(conn, topic_id, agent_name)
        if state is None:
            continue
        name, status, cursor = state
        if status != "open" and not include_closed:
            continue
        senders = q.unread_by_sender(conn, topic_id, agent_name, cursor)
        total = sum(senders.values())
        if not total:
            continue
        rows = q.newest_unread(conn, topic_id, agent_name, cursor, digest_items)
        items = [DigestItem(s, snd, typ, first_line(body), at) for s, snd, typ, body, at in rows]
        found.append(
            TopicInbox(
                topic_id=topic_id,
                topic_name=name,
                agent_name=agent_name,
                status=status,
                cursor=cursor,
                unread=min(total, q.UNREAD_CAP),
                capped=total > q.UNREAD_CAP,
                senders=dict(sorted(senders.items(), key=lambda kv: (-kv[1], kv[0]))),
                items=items,
            )
        )
    found.sort(key=lambda box: box.items[0].created_at if box.items else 0.0, reverse=True)
    return found


def describe(box: TopicInbox) -> str:
    """One topic's digest as text an agent reads: count, senders, lines, what to call."""
    count = f"{box.unread}+" if box.capped else str(box.unread)
    noun = "message" if box.unread == 1 and not box.capped else "messages"
    counted = len(box.senders) > 1 and not box.capped
    senders = ", ".join(f"{s} ({n})" if counted else s for s, n in box.senders.items())
    lines = [
        f"{count} unread {noun} on topic {box.topic_name!r} for you as {box.agent_name!r}, "
        f"from {senders}:"
    ]
    for item in box.items:
        lines.append(f"  #{item.seq} {item.sender} [{item.message_type}]: {item.first_line}")
    if box.capped:
        lines.append("  … and many more")
    elif box.unread > len(box.items):
        lines.append(f"  … and {box.unread - len(box.items)} more")
    lines.append(
        f'Call sync(topic_id="{box.topic_id}", agent_name="{box.agent_name}", wait_seconds=0) '
        "to read them, and repeat while has_more is true."
    )
    return "\n".join(lines)


def describe_all(boxes: list[TopicInbox]) -> str:
    """Every topic's digest, prefixed so the agent knows where the note comes from."""
    return "agent-bus: peers wrote to you.\n" + "\n\n".join(describe(b) for b in boxes)
