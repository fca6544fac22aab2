"""SQL of the administrative operations (delete, rename, stats, checks, import).

Like ``queries``, functions here take a connection and never decide rules;
the caller (``agent_bus.admin``) owns the transaction. Tables that other
features may add later (``embeddings``, ``embedding_jobs``, llm's
``collections``) are looked up before they are touched.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

# Our own tables that hang off a topic by a ``topic_id`` column, deleted with it.
TOPIC_TABLES = ("messages", "cursors", "agent_name_reservations", "topic_seq")


def table_names(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    return {r[0] for r in rows}


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    # PRAGMA arguments cannot be bound; ``table`` comes from sqlite_master, never from a user.
    return {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}


def _extra_tables_with(conn: sqlite3.Connection, column: str) -> list[str]:
    """Tables outside our core schema (e.g. an embeddings job queue) having ``column``."""
    core = set(TOPIC_TABLES) | {"topics", "meta"}
    found = []
    for name in sorted(table_names(conn)):
        if name in core or name.startswith("messages_fts") or name.startswith("sqlite_"):
            continue
        row = conn.execute("SELECT type FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        if row is None or row[0] != "table":
            continue
        try:
            if column in columns(conn, name):
                found.append(name)
        except sqlite3.DatabaseError:  # a virtual table whose module is not loaded here
            continue
    return found


def count_topic_rows(conn: sqlite3.Connection, topic_id: str) -> dict[str, int]:
    """Rows per table that belong to one topic (before deleting it)."""
    out = {}
    for table in TOPIC_TABLES:
        out[table] = conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE topic_id = ?", (topic_id,)
        ).fetchone()[0]
    return out


def delete_embeddings_of_topic(conn: sqlite3.Connection, topic_id: str) -> int:
    """Delete embedding rows and jobs of a topic's messages, where such tables exist.

    llm's ``embeddings`` table keys rows by ``id`` (a message id, or ``<message_id>:<chunk>``
    for chunks); any other table with a ``message_id`` or ``topic_id`` column (a job queue)
    is cleaned by that column.
    """
    removed = 0
    tables = table_names(conn)
    if "embeddings" in tables and "id" in columns(conn, "embeddings"):
        removed += conn.execute(
            "DELETE FROM embeddings "
            "WHERE id IN (SELECT message_id FROM messages WHERE topic_id = ?)"
            " OR substr(id, 1, instr(id, ':') - 1) IN "
            "(SELECT message_id FROM messages WHERE topic_id = ?)",
            (topic_id, topic_id),
        ).rowcount
    for table in _extra_tables_with(conn, "topic_id"):
        removed += conn.execute(f'DELETE FROM "{table}" WHERE topic_id = ?', (topic_id,)).rowcount
    for table in _extra_tables_with(conn, "message_id"):
        if "topic_id" in columns(conn, table):
            continue  # done above
        removed += conn.execute(
            f'DELETE FROM "{table}" WHERE message_id IN '
            "(SELECT message_id FROM messages WHERE topic_id = ?)",
            (topic_id,),
        ).rowcount
    return removed


def delete_topic_rows(conn: sqlite3.Connection, topic_id: str) -> None:
    """Delete the topic and its rows in our tables (FTS rows go with them by trigger)."""
    for table in TOPIC_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE topic_id = ?", (topic_id,))
    conn.execute("DELETE FROM topics WHERE topic_id = ?", (topic_id,))


def topic_name_pattern(name: str) -> re.Pattern[str]:
    """Whole-name occurrences of a topic name in text.

    A match is not preceded or followed by a word character, ``-``, ``/`` or
    ``.``, so renaming ``api`` leaves "rapid", "api-v2", "docs/api" and
    "api.md" alone while "the api topic" and "(api)" are rewritten.
    """
    return re.compile(r"(?<![\w./-])" + re.escape(name) + r"(?![\w./-])")


def rewrite_topic_name_in_messages(
    conn: sqlite3.Connection, topic_id: str, old: str, new: str, now: float
) -> int:
    """Replace whole-name occurrences of ``old`` by ``new`` in the topic's message bodies.

    Returns the number of messages changed. The FTS index follows through the
    ``messages`` update triggers; when the embedding queue exists, each changed
    message is queued again (attempts and failure reset) so its vector is rebuilt.
    """
    pattern = topic_name_pattern(old)
    candidates = conn.execute(
        "SELECT message_id, content_markdown FROM messages "
        "WHERE topic_id = ? AND instr(content_markdown, ?) > 0",
        (topic_id, old),
    ).fetchall()
    changed = []
    for message_id, body in candidates:
        rewritten = pattern.sub(lambda _m: new, body)  # a function: ``new`` is not a template
        if rewritten != body:
            changed.append((rewritten, message_id))
    if not changed:
        return 0
    conn.executemany("UPDATE messages SET content_markdown = ? WHERE message_id = ?", changed)
    if "embedding_jobs" in table_names(conn):
        conn.executemany(
            "INSERT INTO embedding_jobs(message_id, enqueued_at, next_attempt_at) "
            "VALUES (?, ?, ?) ON CONFLICT(message_id) DO UPDATE SET "
            "enqueued_at = excluded.enqueued_at, attempts = 0, "
            "next_attempt_at = excluded.next_attempt_at, last_error = NULL, failed_at = NULL",
            [(message_id, now, now) for _, message_id in changed],
        )
    return len(changed)


def orphan_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows whose topic no longer exists, per table (all zero in a healthy bus)."""
    out = {}
    for table in TOPIC_TABLES:
        out[table] = conn.execute(
            f"SELECT COUNT(*) FROM {table} x "
            "WHERE NOT EXISTS (SELECT 1 FROM topics t WHERE t.topic_id = x.topic_id)"
        ).fetchone()[0]
    out["messages_fts"] = conn.execute(
        "SELECT COUNT(*) FROM messages_fts_docsize f "
        "WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.rowid = f.id)"
    ).fetchone()[0]
    return out


def stats(conn: sqlite3.Connection) -> dict[str, Any]:
    """Counts of the main tables and storage figures."""
    one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    out: dict[str, Any] = {
        "topics_open": one("SELECT COUNT(*) FROM topics WHERE status = 'open'"),
        "topics_closed": one("SELECT COUNT(*) FROM topics WHERE status = 'closed'"),
        "messages": one("SELECT COUNT(*) FROM messages"),
        "senders": one("SELECT COUNT(DISTINCT sender) FROM messages"),
        "cursors": one("SELECT COUNT(*) FROM cursors"),
        "reservations": one("SELECT COUNT(*) FROM agent_name_reservations"),
        "first_message_at": one("SELECT MIN(created_at) FROM messages"),
        "last_message_at": one("SELECT MAX(created_at) FROM messages"),
        "page_size": one("PRAGMA page_size"),
        "page_count": one("PRAGMA page_count"),
        "freelist_count": one("PRAGMA freelist_count"),
    }
    tables = table_names(conn)
    out["embeddings"] = one("SELECT COUNT(*) FROM embeddings") if "embeddings" in tables else None
    return out


def integrity_check(conn: sqlite3.Connection) -> list[str]:
    """``PRAGMA integrity_check`` lines (``["ok"]`` when healthy)."""
    return [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]


def foreign_key_problems(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute("PRAGMA foreign_key_check").fetchall()]


def fts_integrity(conn: sqlite3.Connection) -> None:
    """Raise ``sqlite3.DatabaseError`` when the FTS index disagrees with ``messages``.

    ``rank = 1`` makes FTS5 compare the index with the external content table too.
    """
    conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)")


def fts_counts(conn: sqlite3.Connection) -> tuple[int, int]:
    """(messages, indexed documents)."""
    m = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    # messages_fts itself reads through to the content table; docsize has one row per document
    f = conn.execute("SELECT COUNT(*) FROM messages_fts_docsize").fetchone()[0]
    return m, f


def fts_rebuild(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO messages_fts(messages_fts) VALUES('rebuild')")


def fts_optimize(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO messages_fts(messages_fts) VALUES('optimize')")


def seq_problems(conn: sqlite3.Connection) -> list[tuple[str, int, int]]:
    """Topics whose ``topic_seq.next_seq`` is not above their highest message seq."""
    rows = conn.execute(
        "SELECT m.topic_id, MAX(m.seq) AS top, COALESCE(s.next_seq, 0) AS next_seq "
        "FROM messages m LEFT JOIN topic_seq s ON s.topic_id = m.topic_id "
        "GROUP BY m.topic_id HAVING COALESCE(s.next_seq, 0) <= MAX(m.seq)"
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def peer_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Agents per topic: names reserved by a join or holding a cursor."""
    rows = conn.execute(
        "SELECT topic_id, COUNT(DISTINCT agent_name) FROM ("
        "SELECT topic_id, agent_name FROM agent_name_reservations "
        "UNION SELECT topic_id, agent_name FROM cursors) GROUP BY topic_id"
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def message_id_at_seq(conn: sqlite3.Connection, topic_id: str, seq: int) -> str | None:
    row = conn.execute(
        "SELECT message_id FROM messages WHERE topic_id = ? AND seq = ?", (topic_id, seq)
    ).fetchone()
    return None if row is None else row[0]
