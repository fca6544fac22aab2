"""Read-only queries the web UI needs beyond the core's (presence across topics,
reply links, thread bounds), plus the SQL of the canned queries Datasette shows.

Every statement is parameterised; lists of ids travel as one JSON array
parameter (``json_each``), so no SQL text is ever built from user input.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from agent_bus.models import Message
from agent_bus.store.queries import MESSAGE_COLS, message_from_row

# Canned queries offered in Datasette (read-only SQL; ":name" are Datasette parameters).
OPEN_QUESTIONS_SQL = """\
select m.message_id, t.name as topic, m.seq, m.sender,
  datetime(m.created_at, 'unixepoch', 'localtime') as asked_at, m.content_markdown
from messages m join topics t on t.topic_id = m.topic_id
where m.message_type = 'question'
  and not exists (
    select 1 from messages r where r.topic_id = m.topic_id and r.reply_to = m.message_id
  )
order by m.created_at desc
limit 200"""

RECENT_ACTIVITY_SQL = """\
select t.name as topic, t.status, count(m.message_id) as messages,
  datetime(max(m.created_at), 'unixepoch', 'localtime') as last_message_at
from topics t left join messages m on m.topic_id = t.topic_id
group by t.topic_id
order by max(coalesce(m.created_at, t.created_at)) desc"""

MESSAGES_BY_SENDER_SQL = """\
select m.sender, count(*) as messages, count(distinct m.topic_id) as topics,
  datetime(max(m.created_at), 'unixepoch', 'localtime') as last_message_at
from messages m
group by m.sender
order by messages desc"""

PRESENT_PEERS_SQL = """\
select t.name as topic, c.agent_name, c.last_seq,
  datetime(c.updated_at, 'unixepoch', 'localtime') as seen_at,
  cast(strftime('%s', 'now') - c.updated_at as integer) as age_seconds
from cursors c join topics t on t.topic_id = c.topic_id
where c.updated_at >= strftime('%s', 'now') - cast(:window_seconds as integer)
order by c.updated_at desc"""


def bus_identity(conn: sqlite3.Connection) -> tuple[str | None, int | None]:
    """(meta.app, meta.schema_version) of a database, (None, None) when it has no meta."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if has_meta is None:
        return None, None
    rows = dict(
        conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('app', 'schema_version')"
        ).fetchall()
    )
    try:
        version = int(rows["schema_version"]) if "schema_version" in rows else None
    except (TypeError, ValueError):
        version = None
    return rows.get("app"), version


def presence_by_topic(conn: sqlite3.Connection, since: float) -> dict[str, list[tuple[str, float]]]:
    """Peers whose cursor moved since ``since``, per topic, most recent first."""
    out: dict[str, list[tuple[str, float]]] = {}
    rows = conn.execute(
        "SELECT topic_id, agent_name, updated_at FROM cursors WHERE updated_at >= ? "
        "ORDER BY updated_at DESC",
        (since,),
    ).fetchall()
    for row in rows:
        out.setdefault(row["topic_id"], []).append((row["agent_name"], row["updated_at"]))
    return out


def messages_by_ids(conn: sqlite3.Connection, message_ids: list[str]) -> dict[str, Message]:
    if not message_ids:
        return {}
    rows = conn.execute(
        f"SELECT {MESSAGE_COLS} FROM messages WHERE message_id IN (SELECT value FROM json_each(?))",
        (json.dumps(message_ids),),
    ).fetchall()
    return {r["message_id"]: message_from_row(r) for r in rows}


def replies_to(
    conn: sqlite3.Connection, topic_id: str, message_ids: list[str]
) -> dict[str, list[tuple[str, int, str]]]:
    """For each message id, its replies as (message_id, seq, sender) in seq order."""
    if not message_ids:
        return {}
    rows = conn.execute(
        "SELECT reply_to, message_id, seq, sender FROM messages "
        "WHERE topic_id = ? AND reply_to IN (SELECT value FROM json_each(?)) ORDER BY seq",
        (topic_id, json.dumps(message_ids)),
    ).fetchall()
    out: dict[str, list[tuple[str, int, str]]] = {}
    for row in rows:
        out.setdefault(row["reply_to"], []).append((row["message_id"], row["seq"], row["sender"]))
    return out


def thread_stats(conn: sqlite3.Connection, topic_id: str) -> dict[str, Any]:
    """Message count, first/last seq and last activity of a topic (index-only reads)."""
    row = conn.execute(
        "SELECT COUNT(*) AS n, MIN(seq) AS first_seq, MAX(seq) AS last_seq, "
        "(SELECT created_at FROM messages WHERE topic_id = ?1 ORDER BY seq DESC LIMIT 1) "
        "AS last_at FROM messages WHERE topic_id = ?1",
        (topic_id,),
    ).fetchone()
    return {
        "message_count": row["n"],
        "first_seq": row["first_seq"] or 0,
        "last_seq": row["last_seq"] or 0,
        "last_message_at": row["last_at"],
    }


def senders(conn: sqlite3.Connection, topic_id: str) -> list[dict[str, Any]]:
    """Who wrote in a topic: name, message count and last message time."""
    rows = conn.execute(
        "SELECT sender, COUNT(*) AS n, MAX(created_at) AS last_at FROM messages "
        "WHERE topic_id = ? GROUP BY sender ORDER BY n DESC, sender",
        (topic_id,),
    ).fetchall()
    return [{"sender": r["sender"], "messages": r["n"], "last_at": r["last_at"]} for r in rows]


def type_counts(conn: sqlite3.Connection, topic_id: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT message_type, COUNT(*) FROM messages WHERE topic_id = ? "
        "GROUP BY message_type ORDER BY COUNT(*) DESC",
        (topic_id,),
    ).fetchall()
    return {r[0]: r[1] for r in rows}
