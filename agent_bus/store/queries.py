"""Every SQL statement of the bus core, parameterised, on a given connection.

Functions here neither open connections nor decide business rules; they read
and write rows and turn them into models. The caller owns the transaction.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from agent_bus.models import Cursor, Message, Topic, TopicSummary

_TOPIC_COLS = "topic_id, name, status, created_at, closed_at, close_reason, metadata_json"
# The columns `message_from_row` reads, in order (also used by ``store.web``).
MESSAGE_COLS = (
    "message_id, topic_id, seq, sender, message_type, reply_to, content_markdown, "
    "metadata_json, client_message_id, created_at"
)


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _loads(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:  # hand-edited row: keep it readable rather than failing the read
        return {"_raw": raw}


def topic_from_row(row: sqlite3.Row) -> Topic:
    return Topic(
        topic_id=row["topic_id"],
        name=row["name"],
        status=row["status"],
        created_at=row["created_at"],
        closed_at=row["closed_at"],
        close_reason=row["close_reason"],
        metadata=_loads(row["metadata_json"]),
    )


def message_from_row(row: sqlite3.Row) -> Message:
    return Message(
        message_id=row["message_id"],
        topic_id=row["topic_id"],
        seq=row["seq"],
        sender=row["sender"],
        message_type=row["message_type"],
        reply_to=row["reply_to"],
        content_markdown=row["content_markdown"],
        metadata=_loads(row["metadata_json"]),
        client_message_id=row["client_message_id"],
        created_at=row["created_at"],
    )


# --- topics -----------------------------------------------------------------


def get_topic(conn: sqlite3.Connection, topic_id: str) -> Topic | None:
    row = conn.execute(
        f"SELECT {_TOPIC_COLS} FROM topics WHERE topic_id = ?", (topic_id,)
    ).fetchone()
    return None if row is None else topic_from_row(row)


def newest_topic_named(conn: sqlite3.Connection, name: str, status: str) -> Topic | None:
    row = conn.execute(
        f"SELECT {_TOPIC_COLS} FROM topics WHERE name = ? AND status = ? "
        "ORDER BY created_at DESC, rowid DESC LIMIT 1",
        (name, status),
    ).fetchone()
    return None if row is None else topic_from_row(row)


def topics_named(conn: sqlite3.Connection, name: str) -> list[Topic]:
    rows = conn.execute(
        f"SELECT {_TOPIC_COLS} FROM topics WHERE name = ? ORDER BY created_at DESC, rowid DESC",
        (name,),
    ).fetchall()
    return [topic_from_row(r) for r in rows]


def topics_with_id_prefix(conn: sqlite3.Connection, prefix: str) -> list[Topic]:
    rows = conn.execute(
        f"SELECT {_TOPIC_COLS} FROM topics WHERE substr(topic_id, 1, ?) = ? LIMIT 10",
        (len(prefix), prefix),
    ).fetchall()
    return [topic_from_row(r) for r in rows]


def insert_topic(conn: sqlite3.Connection, topic: Topic) -> None:
    conn.execute(
        f"INSERT INTO topics({_TOPIC_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            topic.topic_id,
            topic.name,
            topic.status,
            topic.created_at,
            topic.closed_at,
            topic.close_reason,
            dumps(topic.metadata),
        ),
    )
    conn.execute(
        "INSERT INTO topic_seq(topic_id, next_seq, updated_at) VALUES (?, 1, ?)",
        (topic.topic_id, topic.created_at),
    )


def close_topic(
    conn: sqlite3.Connection, topic_id: str, closed_at: float, reason: str | None
) -> None:
    conn.execute(
        "UPDATE topics SET status = 'closed', closed_at = ?, close_reason = ? WHERE topic_id = ?",
        (closed_at, reason, topic_id),
    )


def reopen_topic(conn: sqlite3.Connection, topic_id: str) -> None:
    conn.execute(
        "UPDATE topics SET status = 'open', closed_at = NULL, close_reason = NULL "
        "WHERE topic_id = ?",
        (topic_id,),
    )


def rename_topic(conn: sqlite3.Connection, topic_id: str, new_name: str) -> None:
    conn.execute("UPDATE topics SET name = ? WHERE topic_id = ?", (new_name, topic_id))


def list_topics(
    conn: sqlite3.Connection,
    *,
    status: str = "all",
    name_glob: str | None = None,
    limit: int | None = None,
) -> list[TopicSummary]:
    where: list[str] = []
    params: list[Any] = []
    if status in ("open", "closed"):
        where.append("t.status = ?")
        params.append(status)
    if name_glob:
        where.append("t.name GLOB ?")
        params.append(name_glob)
    sql = (
        f"SELECT {', '.join('t.' + c.strip() for c in _TOPIC_COLS.split(','))}, "
        "COALESCE(s.next_seq, 1) - 1 AS last_seq, "
        "(SELECT COUNT(*) FROM messages m WHERE m.topic_id = t.topic_id) AS message_count, "
        "(SELECT MAX(created_at) FROM messages m WHERE m.topic_id = t.topic_id) AS last_message_at "
        "FROM topics t LEFT JOIN topic_seq s ON s.topic_id = t.topic_id"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY t.created_at DESC, t.rowid DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    out = []
    for row in conn.execute(sql, params).fetchall():
        base = topic_from_row(row)
        out.append(
            TopicSummary(
                **base.model_dump(),
                message_count=row["message_count"],
                last_seq=row["last_seq"],
                last_message_at=row["last_message_at"],
            )
        )
    return out


def delete_topic(conn: sqlite3.Connection, topic_id: str) -> int:
    """Delete a topic and everything hanging off it; returns the messages removed."""
    n = conn.execute("SELECT COUNT(*) FROM messages WHERE topic_id = ?", (topic_id,)).fetchone()[0]
    for table in ("messages", "cursors", "agent_name_reservations", "topic_seq"):
        conn.execute(f"DELETE FROM {table} WHERE topic_id = ?", (topic_id,))  # noqa: S608
    conn.execute("DELETE FROM topics WHERE topic_id = ?", (topic_id,))
    return n


# --- identities ---------------------------------------------------------------


def get_reservation(conn: sqlite3.Connection, topic_id: str, agent_name: str) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT reclaim_token_hash FROM agent_name_reservations "
        "WHERE topic_id = ? AND agent_name = ?",
        (topic_id, agent_name),
    ).fetchone()


def insert_reservation(
    conn: sqlite3.Connection, topic_id: str, agent_name: str, token_hash: str, now: float
) -> None:
    conn.execute(
        "INSERT INTO agent_name_reservations"
        "(topic_id, agent_name, reclaim_token_hash, created_at, last_claimed_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (topic_id, agent_name, token_hash, now, now),
    )


def touch_reservation(conn: sqlite3.Connection, topic_id: str, agent_name: str, now: float) -> None:
    conn.execute(
        "UPDATE agent_name_reservations SET last_claimed_at = ? "
        "WHERE topic_id = ? AND agent_name = ?",
        (now, topic_id, agent_name),
    )


def reserved_names(conn: sqlite3.Connection, topic_id: str) -> set[str]:
    rows = conn.execute(
        "SELECT agent_name FROM agent_name_reservations WHERE topic_id = ?", (topic_id,)
    ).fetchall()
    return {r[0] for r in rows}


# --- cursors ------------------------------------------------------------------


def get_cursor(conn: sqlite3.Connection, topic_id: str, agent_name: str) -> Cursor | None:
    row = conn.execute(
        "SELECT last_seq, updated_at FROM cursors WHERE topic_id = ? AND agent_name = ?",
        (topic_id, agent_name),
    ).fetchone()
    return None if row is None else Cursor(last_seq=row[0], updated_at=row[1])


def upsert_cursor(
    conn: sqlite3.Connection, topic_id: str, agent_name: str, last_seq: int, now: float
) -> Cursor:
    conn.execute(
        "INSERT INTO cursors(topic_id, agent_name, last_seq, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(topic_id, agent_name) DO UPDATE SET last_seq = excluded.last_seq, "
        "updated_at = excluded.updated_at",
        (topic_id, agent_name, last_seq, now),
    )
    return Cursor(last_seq=last_seq, updated_at=now)


def rewind_cursor(
    conn: sqlite3.Connection, topic_id: str, agent_name: str, to_seq: int, if_seq: int
) -> bool:
    """Move a cursor back to ``to_seq`` only if it still stands at ``if_seq``."""
    cur = conn.execute(
        "UPDATE cursors SET last_seq = ? WHERE topic_id = ? AND agent_name = ? AND last_seq = ?",
        (to_seq, topic_id, agent_name, if_seq),
    )
    return cur.rowcount == 1


def presence(
    conn: sqlite3.Connection, topic_id: str, since: float, limit: int
) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT agent_name, last_seq, updated_at FROM cursors "
        "WHERE topic_id = ? AND updated_at >= ? ORDER BY updated_at DESC LIMIT ?",
        (topic_id, since, limit),
    ).fetchall()


# --- messages -----------------------------------------------------------------


def last_seq(conn: sqlite3.Connection, topic_id: str) -> int:
    row = conn.execute("SELECT next_seq FROM topic_seq WHERE topic_id = ?", (topic_id,)).fetchone()
    if row is not None:
        return row[0] - 1
    row = conn.execute("SELECT MAX(seq) FROM messages WHERE topic_id = ?", (topic_id,)).fetchone()
    return row[0] or 0


def set_next_seq(conn: sqlite3.Connection, topic_id: str, next_seq: int, now: float) -> None:
    conn.execute(
        "INSERT INTO topic_seq(topic_id, next_seq, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT(topic_id) DO UPDATE SET next_seq = excluded.next_seq, "
        "updated_at = excluded.updated_at",
        (topic_id, next_seq, now),
    )


def existing_message_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(f"SELECT message_id FROM messages WHERE message_id IN ({marks})", chunk)
        found.update(r[0] for r in rows)
    return found


def used_seqs(conn: sqlite3.Connection, topic_id: str, seqs: list[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(seqs), 500):
        chunk = seqs[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT seq FROM messages WHERE topic_id = ? AND seq IN ({marks})",
            [topic_id, *chunk],
        )
        found.update(r[0] for r in rows)
    return found


def max_seq(conn: sqlite3.Connection, topic_id: str) -> int:
    row = conn.execute("SELECT MAX(seq) FROM messages WHERE topic_id = ?", (topic_id,)).fetchone()
    return row[0] or 0


def message_by_client_id(
    conn: sqlite3.Connection, topic_id: str, sender: str, client_message_id: str
) -> Message | None:
    row = conn.execute(
        f"SELECT {MESSAGE_COLS} FROM messages "
        "WHERE topic_id = ? AND sender = ? AND client_message_id = ?",
        (topic_id, sender, client_message_id),
    ).fetchone()
    return None if row is None else message_from_row(row)


def get_message(conn: sqlite3.Connection, message_id: str) -> Message | None:
    row = conn.execute(
        f"SELECT {MESSAGE_COLS} FROM messages WHERE message_id = ?", (message_id,)
    ).fetchone()
    return None if row is None else message_from_row(row)


def message_in_topic(conn: sqlite3.Connection, topic_id: str, message_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM messages WHERE message_id = ? AND topic_id = ?", (message_id, topic_id)
    ).fetchone()
    return row is not None


def insert_message(conn: sqlite3.Connection, m: Message) -> None:
    conn.execute(
        f"INSERT INTO messages({MESSAGE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            m.message_id,
            m.topic_id,
            m.seq,
            m.sender,
            m.message_type,
            m.reply_to,
            m.content_markdown,
            dumps(m.metadata),
            m.client_message_id,
            m.created_at,
        ),
    )


def messages_after(
    conn: sqlite3.Connection,
    topic_id: str,
    after_seq: int,
    *,
    exclude_sender: str | None = None,
    limit: int,
) -> list[Message]:
    sql = f"SELECT {MESSAGE_COLS} FROM messages WHERE topic_id = ? AND seq > ?"
    params: list[Any] = [topic_id, after_seq]
    if exclude_sender is not None:
        sql += " AND sender <> ?"
        params.append(exclude_sender)
    sql += " ORDER BY seq LIMIT ?"
    params.append(limit)
    return [message_from_row(r) for r in conn.execute(sql, params).fetchall()]


def any_after(
    conn: sqlite3.Connection, topic_id: str, after_seq: int, exclude_sender: str | None
) -> bool:
    sql = "SELECT 1 FROM messages WHERE topic_id = ? AND seq > ?"
    params: list[Any] = [topic_id, after_seq]
    if exclude_sender is not None:
        sql += " AND sender <> ?"
        params.append(exclude_sender)
    return conn.execute(sql + " LIMIT 1", params).fetchone() is not None


def messages_range(
    conn: sqlite3.Connection,
    topic_id: str,
    *,
    after_seq: int = 0,
    before_seq: int | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[Message]:
    sql = f"SELECT {MESSAGE_COLS} FROM messages WHERE topic_id = ? AND seq > ?"
    params: list[Any] = [topic_id, after_seq]
    if before_seq is not None:
        sql += " AND seq < ?"
        params.append(before_seq)
    sql += " ORDER BY seq DESC" if newest_first else " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [message_from_row(r) for r in conn.execute(sql, params).fetchall()]


def fts_search(
    conn: sqlite3.Connection,
    match: str,
    *,
    topic_id: str | None,
    limit: int,
    filters: Any = None,
) -> list[sqlite3.Row]:
    """Messages matching an FTS5 expression, best bm25 first, with a highlighted snippet.

    Across topics FTS5 ranks and cuts to ``limit`` first; only those rows are joined and
    get a snippet (a snippet or a join per match costs most of the query on a big bus).
    """
    columns = (
        "SELECT m.message_id, m.topic_id, t.name AS topic_name, m.seq, m.sender, "
        "m.message_type, m.created_at, m.content_markdown, "
        "snippet(messages_fts, 0, '**', '**', '…', 16) AS snippet, "
    )
    if topic_id is None and filters is None:
        sql = (
            columns + "hits.rank AS rank FROM (SELECT rowid, rank FROM messages_fts "
            "WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?) AS hits "
            "JOIN messages_fts ON messages_fts.rowid = hits.rowid "
            "JOIN messages m ON m.rowid = hits.rowid "
            "JOIN topics t ON t.topic_id = m.topic_id "
            "WHERE messages_fts MATCH ? ORDER BY hits.rank"
        )
        return conn.execute(sql, (match, limit, match)).fetchall()
    where, params = ("", []) if filters is None else filters.sql("m")
    if topic_id is not None:
        where, params = " AND m.topic_id = ?" + where, [topic_id, *params]
    sql = (
        columns + "bm25(messages_fts) AS rank "
        "FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid "
        "JOIN topics t ON t.topic_id = m.topic_id "
        f"WHERE messages_fts MATCH ?{where} ORDER BY rank LIMIT ?"
    )
    return conn.execute(sql, (match, *params, limit)).fetchall()
