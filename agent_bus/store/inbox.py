"""SQL for unread counts and digests (the hook door and the inbox service).

Plain ``sqlite3`` and no model imports: the hook process imports this module
and is judged in milliseconds. Every statement walks the unique
``(topic_id, seq)`` index from the identity's cursor, and counts are capped so
that a cursor far behind never turns a hook into a table scan.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # the hook process skips importing typing helpers
    import sqlite3

UNREAD_CAP = 100
"""Counting stops past this many (callers say "100+"): each counted row costs a table
lookup for its sender, and measured on 50 topics far behind, 1000 took ~15-23 ms, 100 ~8 ms."""


def identity_state(
    conn: sqlite3.Connection, topic_id: str, agent_name: str
) -> tuple[str, str, int] | None:
    """(topic name, status, cursor) of a joined identity, None when not joined.

    Joining reserves the name; the cursor row appears with the first sync (0 until then).
    """
    row = conn.execute(
        "SELECT t.name, t.status, COALESCE(c.last_seq, 0) FROM agent_name_reservations r "
        "JOIN topics t ON t.topic_id = r.topic_id "
        "LEFT JOIN cursors c ON c.topic_id = r.topic_id AND c.agent_name = r.agent_name "
        "WHERE r.topic_id = ? AND r.agent_name = ?",
        (topic_id, agent_name),
    ).fetchone()
    return None if row is None else (row[0], row[1], int(row[2]))


def unread_by_sender(
    conn: sqlite3.Connection, topic_id: str, agent_name: str, after_seq: int, cap: int | None = None
) -> dict[str, int]:
    """Unread messages per sender (others' only), counting at most ``cap`` + 1 in all.

    The one extra row tells a caller that there are more than ``cap``.
    """
    cap = (UNREAD_CAP if cap is None else cap) + 1
    rows = conn.execute(
        "SELECT sender, COUNT(*) FROM ("
        "  SELECT sender FROM messages WHERE topic_id = ? AND seq > ? AND sender <> ? LIMIT ?"
        ") GROUP BY sender",
        (topic_id, after_seq, agent_name, cap),
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def newest_unread(
    conn: sqlite3.Connection, topic_id: str, agent_name: str, after_seq: int, limit: int
) -> list[tuple[int, str, str, str, float]]:
    """(seq, sender, type, head of body, created_at) of the newest unread, newest first."""
    rows = conn.execute(
        "SELECT seq, sender, message_type, substr(content_markdown, 1, 600), created_at "
        "FROM messages WHERE topic_id = ? AND seq > ? AND sender <> ? "
        "ORDER BY seq DESC LIMIT ?",
        (topic_id, after_seq, agent_name, limit),
    ).fetchall()
    return [(int(r[0]), r[1], r[2], r[3], float(r[4])) for r in rows]


def open_identities_of(conn: sqlite3.Connection, agent_name: str) -> list[tuple[str, str]]:
    """Every open topic ``agent_name`` has joined (the ``--agent`` override)."""
    rows = conn.execute(
        "SELECT r.topic_id, r.agent_name FROM agent_name_reservations r "
        "JOIN topics t ON t.topic_id = r.topic_id "
        "WHERE r.agent_name = ? AND t.status = 'open'",
        (agent_name,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def topic_id_for(conn: sqlite3.Connection, ref: str) -> str | None:
    """A topic id from an id or a name (newest open topic of that name first)."""
    row = conn.execute("SELECT topic_id FROM topics WHERE topic_id = ?", (ref,)).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT topic_id FROM topics WHERE name = ? "
            "ORDER BY status = 'open' DESC, created_at DESC LIMIT 1",
            (ref,),
        ).fetchone()
    return None if row is None else row[0]
