"""Messages in commit order across every topic: what changed since a point, for push.

A message's rowid only grows (the table is never rewritten in place), so "rowid >
last seen" is every message committed since, by any process, in one indexed range
read — what resource updates and channel notifications need after a wake.
"""

from __future__ import annotations

import sqlite3

from agent_bus.models import Message
from agent_bus.store.queries import MESSAGE_COLS, message_from_row


def high_water(conn: sqlite3.Connection) -> int:
    """The newest message's rowid (0 when there is none)."""
    return int(conn.execute("SELECT coalesce(max(rowid), 0) FROM messages").fetchone()[0])


def messages_since(conn: sqlite3.Connection, rowid: int, limit: int) -> list[tuple[int, Message]]:
    """Up to ``limit`` messages committed after ``rowid``, oldest first, with their rowids."""
    rows = conn.execute(
        f"SELECT rowid AS rid, {MESSAGE_COLS} FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?",
        (rowid, limit),
    ).fetchall()
    return [(int(r["rid"]), message_from_row(r)) for r in rows]
