"""SQL of semantic search: the embedding job queue, the indexing lease, llm's vector tables.

The queue (``embedding_jobs``) and the lease (``embedding_leases``) are ours
(migration 8). ``collections`` and ``embeddings`` belong to llm: they are
created by ``llm.Collection`` and rows are written in exactly llm's format
(little-endian float32 blobs, md5 content hash, unix ``updated``), so ``llm
similar`` reads what we write and we read what ``llm embed-multi`` writes.
An embedding row's ``id`` is the message id for a message's first chunk and
``<message_id>:<n>`` for chunk n > 0.

Functions take a connection; callers own the transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

MAX_ERROR_CHARS = 500


def chunk_id(message_id: str, index: int) -> str:
    return message_id if index == 0 else f"{message_id}:{index}"


def split_chunk_id(row_id: str) -> tuple[str, int]:
    """(message_id, chunk index) of an embedding row id."""
    head, sep, tail = row_id.rpartition(":")
    if sep and tail.isdigit():
        return head, int(tail)
    return row_id, 0


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


# --- job queue ---------------------------------------------------------------------------------


@dataclass
class Job:
    message_id: str
    attempts: int
    content: str | None  # None: the message is gone (deleted topic)
    topic_id: str | None
    topic_name: str | None = None
    message_type: str | None = None
    reply_first_line: str | None = None  # of the message this one replies to


# What a message is embedded with besides its text (see indexer.embedding_text).
_CONTEXT_COLUMNS = (
    "t.name, m.message_type, "
    "(SELECT substr(r.content_markdown, 1, 300) FROM messages r "
    "WHERE r.message_id = m.reply_to)"
)
_CONTEXT_JOINS = "LEFT JOIN topics t ON t.topic_id = m.topic_id "


def _job(message_id: str, attempts: int, context: Any) -> Job:
    """A job from (content, topic_id, topic name, message type, replied-to text) columns."""
    content, topic_id, topic_name, message_type, reply = context
    first = reply.strip().splitlines()[0] if reply and reply.strip() else None
    return Job(message_id, attempts, content, topic_id, topic_name, message_type, first)


def due_jobs(conn: sqlite3.Connection, now: float, limit: int) -> list[Job]:
    rows = conn.execute(
        "SELECT j.message_id, j.attempts, m.content_markdown, m.topic_id, "
        + _CONTEXT_COLUMNS
        + " FROM embedding_jobs j LEFT JOIN messages m ON m.message_id = j.message_id "
        + _CONTEXT_JOINS
        + "WHERE j.failed_at IS NULL AND j.next_attempt_at <= ? "
        "ORDER BY j.next_attempt_at LIMIT ?",
        (now, limit),
    ).fetchall()
    return [_job(r[0], r[1], r[2:]) for r in rows]


def next_due_at(conn: sqlite3.Connection) -> float | None:
    row = conn.execute(
        "SELECT MIN(next_attempt_at) FROM embedding_jobs WHERE failed_at IS NULL"
    ).fetchone()
    return row[0]


def delete_jobs(conn: sqlite3.Connection, message_ids: Sequence[str]) -> None:
    conn.executemany("DELETE FROM embedding_jobs WHERE message_id = ?", [(m,) for m in message_ids])


def record_failure(
    conn: sqlite3.Connection,
    message_id: str,
    *,
    attempts: int,
    error: str,
    next_attempt_at: float,
    failed_at: float | None,
) -> None:
    conn.execute(
        "UPDATE embedding_jobs SET attempts = ?, last_error = ?, next_attempt_at = ?, "
        "failed_at = ? WHERE message_id = ?",
        (attempts, error[:MAX_ERROR_CHARS], next_attempt_at, failed_at, message_id),
    )


def enqueue_missing(conn: sqlite3.Connection, collection_id: int | None, now: float) -> int:
    """Queue every message that has no first-chunk row in the collection (all if None)."""
    if collection_id is None:
        sql = (
            "INSERT OR IGNORE INTO embedding_jobs(message_id, enqueued_at, next_attempt_at) "
            "SELECT message_id, ?, ? FROM messages"
        )
        return conn.execute(sql, (now, now)).rowcount
    sql = (
        "INSERT OR IGNORE INTO embedding_jobs(message_id, enqueued_at, next_attempt_at) "
        "SELECT m.message_id, ?, ? FROM messages m WHERE NOT EXISTS ("
        "SELECT 1 FROM embeddings e WHERE e.collection_id = ? AND e.id = m.message_id)"
    )
    return conn.execute(sql, (now, now, collection_id)).rowcount


PASSAGES_DONE = "passages_done_for_collection"
"""meta key: the id of the bundled model's collection in which no message is left that an
older version embedded without passages (the background refresh pass has finished)."""


def passages_done(conn: sqlite3.Connection, collection_id: int) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (PASSAGES_DONE,)).fetchone()
    return row is not None and row[0] == str(collection_id)


def mark_passages_done(conn: sqlite3.Connection, collection_id: int) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (PASSAGES_DONE, str(collection_id)),
    )


_WITHOUT_PASSAGES = (
    "trim(m.content_markdown, char(32, 9, 10, 13)) != '' "
    "AND EXISTS (SELECT 1 FROM embeddings e WHERE e.collection_id = :cid AND e.id = m.message_id) "
    "AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.collection_id = :cid "
    # The message's other rows: ids between 'id:' and 'id;' (';' follows ':').
    "  AND e.id > m.message_id || ':' AND e.id < m.message_id || ';' "
    "  AND json_valid(e.metadata) AND json_extract(e.metadata, '$.passage') = 1)"
)
"""A message the collection holds without a passage row: embedded by a version before
passages (a blank message has none)."""


def _messages_after(
    conn: sqlite3.Connection, where: str, collection_id: int, after_rowid: int, limit: int
) -> list[tuple[int, Job]]:
    """(rowid, job) of the messages after ``after_rowid`` that match ``where`` (SQL on
    ``m``, the collection as ``:cid``), in rowid order."""
    rows = conn.execute(
        "SELECT m.rowid, m.message_id, m.content_markdown, m.topic_id, "
        + _CONTEXT_COLUMNS
        + " FROM messages m "
        + _CONTEXT_JOINS
        + f"WHERE m.rowid > :after AND {where} ORDER BY m.rowid LIMIT :limit",
        {"after": after_rowid, "cid": collection_id, "limit": limit},
    ).fetchall()
    return [(r[0], _job(r[1], 0, r[2:])) for r in rows]


def without_passages(
    conn: sqlite3.Connection, collection_id: int, after_rowid: int, limit: int
) -> list[tuple[int, Job]]:
    """Messages after ``after_rowid`` (rowid order) embedded without passages."""
    return _messages_after(conn, _WITHOUT_PASSAGES, collection_id, after_rowid, limit)


def count_without_passages(conn: sqlite3.Connection, collection_id: int) -> int:
    return conn.execute(
        f"SELECT COUNT(*) FROM messages m WHERE {_WITHOUT_PASSAGES}", {"cid": collection_id}
    ).fetchone()[0]


_MISSING = (
    "NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.collection_id = :cid AND e.id = m.message_id)"
)
"""A message without a vector (a first row) in the collection."""


def missing_count(conn: sqlite3.Connection, collection_id: int) -> int:
    return conn.execute(
        f"SELECT COUNT(*) FROM messages m WHERE {_MISSING}", {"cid": collection_id}
    ).fetchone()[0]


def missing_messages(
    conn: sqlite3.Connection, collection_id: int, after_rowid: int, limit: int
) -> list[tuple[int, Job]]:
    """Messages without a vector in the collection, in rowid order after ``after_rowid``."""
    return _messages_after(conn, _MISSING, collection_id, after_rowid, limit)


def enqueue_all(conn: sqlite3.Connection, now: float) -> int:
    """Queue every message again (rebuild); resets failed jobs."""
    conn.execute("DELETE FROM embedding_jobs")
    return enqueue_missing(conn, None, now)


def retry_failed(conn: sqlite3.Connection, now: float) -> int:
    return conn.execute(
        "UPDATE embedding_jobs SET failed_at = NULL, attempts = 0, next_attempt_at = ? "
        "WHERE failed_at IS NOT NULL",
        (now,),
    ).rowcount


def job_counts(conn: sqlite3.Connection, now: float) -> dict[str, int]:
    row = conn.execute(
        "SELECT "
        "COALESCE(SUM(failed_at IS NULL AND attempts = 0), 0), "
        "COALESCE(SUM(failed_at IS NULL AND attempts > 0), 0), "
        "COALESCE(SUM(failed_at IS NOT NULL), 0), "
        "COALESCE(SUM(failed_at IS NULL AND next_attempt_at <= ?), 0) "
        "FROM embedding_jobs",
        (now,),
    ).fetchone()
    return {"queued": row[0], "retrying": row[1], "failed": row[2], "due": row[3]}


def failed_jobs(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT message_id, attempts, last_error, failed_at FROM embedding_jobs "
        "WHERE failed_at IS NOT NULL OR attempts > 0 ORDER BY failed_at IS NULL, message_id "
        "LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {"message_id": r[0], "attempts": r[1], "last_error": r[2], "failed_at": r[3]} for r in rows
    ]


def pending_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM embedding_jobs WHERE failed_at IS NULL").fetchone()[0]


def has_due_job(conn: sqlite3.Connection, now: float) -> bool:
    """A queued job is due (one index probe)."""
    row = conn.execute(
        "SELECT EXISTS(SELECT 1 FROM embedding_jobs WHERE failed_at IS NULL "
        "AND next_attempt_at <= ?)",
        (now,),
    ).fetchone()
    return bool(row[0])


def service_needed(conn: sqlite3.Connection, name: str, now: float) -> bool:
    """Due jobs exist and nobody holds a live indexing lease: an embedding service should run."""
    row = conn.execute(
        "SELECT EXISTS(SELECT 1 FROM embedding_jobs WHERE failed_at IS NULL "
        "AND next_attempt_at <= ?) "
        "AND NOT EXISTS(SELECT 1 FROM embedding_leases WHERE name = ? AND expires_at > ?)",
        (now, name, now),
    ).fetchone()
    return bool(row[0])


# --- lease -------------------------------------------------------------------------------------


def get_lease(conn: sqlite3.Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT holder, pid, host, model_id, acquired_at, heartbeat_at, expires_at "
        "FROM embedding_leases WHERE name = ?",
        (name,),
    ).fetchone()
    if row is None:
        return None
    keys = ("holder", "pid", "host", "model_id", "acquired_at", "heartbeat_at", "expires_at")
    return dict(zip(keys, tuple(row), strict=True))


def try_acquire_lease(
    conn: sqlite3.Connection,
    name: str,
    *,
    holder: str,
    pid: int,
    host: str,
    model_id: str,
    now: float,
    ttl: float,
) -> bool:
    """Take the lease if it is free, expired or already ours (call in a write transaction)."""
    current = get_lease(conn, name)
    if current is not None and current["holder"] != holder and current["expires_at"] > now:
        return False
    acquired = now if current is None or current["holder"] != holder else current["acquired_at"]
    conn.execute(
        "INSERT INTO embedding_leases"
        "(name, holder, pid, host, model_id, acquired_at, heartbeat_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
        "holder = excluded.holder, pid = excluded.pid, host = excluded.host, "
        "model_id = excluded.model_id, acquired_at = excluded.acquired_at, "
        "heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at",
        (name, holder, pid, host, model_id, acquired, now, now + ttl),
    )
    return True


def release_lease(conn: sqlite3.Connection, name: str, holder: str) -> None:
    conn.execute("DELETE FROM embedding_leases WHERE name = ? AND holder = ?", (name, holder))


# --- llm's tables ------------------------------------------------------------------------------


def collection_id(conn: sqlite3.Connection, name: str) -> int | None:
    if not has_table(conn, "collections"):
        return None
    row = conn.execute("SELECT id FROM collections WHERE name = ?", (name,)).fetchone()
    return None if row is None else row[0]


def collections_for_model(conn: sqlite3.Connection, model_id: str) -> list[tuple[int, str]]:
    """(id, name) of the collections made with a model, most rows first."""
    if not has_table(conn, "collections"):
        return []
    rows = conn.execute(
        "SELECT c.id, c.name, (SELECT COUNT(*) FROM embeddings e WHERE e.collection_id = c.id) "
        "AS n FROM collections c WHERE c.model = ? ORDER BY n DESC, c.id",
        (model_id,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def collection_by_name(conn: sqlite3.Connection, name: str) -> tuple[int, str] | None:
    """(id, model) of a collection."""
    if not has_table(conn, "collections"):
        return None
    row = conn.execute("SELECT id, model FROM collections WHERE name = ?", (name,)).fetchone()
    return None if row is None else (row[0], row[1])


def collection_summaries(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    if not has_table(conn, "collections"):
        return []
    rows = conn.execute(
        "SELECT c.id, c.name, c.model, COUNT(e.id), "
        "COUNT(DISTINCT CASE WHEN instr(e.id, ':') = 0 THEN e.id END), MAX(e.updated) "
        "FROM collections c LEFT JOIN embeddings e ON e.collection_id = c.id "
        "GROUP BY c.id ORDER BY c.name"
    ).fetchall()
    return [
        {
            "id": r[0],
            "name": r[1],
            "model": r[2],
            "rows": r[3],
            "messages": r[4],
            "last_updated": r[5],
        }
        for r in rows
    ]


def replace_message_vectors(
    conn: sqlite3.Connection,
    collection_id: int,
    message_id: str,
    rows: Iterable[tuple[str, bytes, bytes, str | None]],
    updated: int,
) -> None:
    """Replace a message's chunk rows: (row id, float32 blob, md5 content hash, metadata)."""
    conn.execute(
        "DELETE FROM embeddings WHERE collection_id = ? AND (id = ? OR id LIKE ? ESCAPE '\\')",
        (collection_id, message_id, _like_prefix(message_id) + ":%"),
    )
    conn.executemany(
        "INSERT OR REPLACE INTO embeddings"
        "(collection_id, id, embedding, content, content_blob, content_hash, metadata, updated) "
        "VALUES (?, ?, ?, NULL, NULL, ?, ?, ?)",
        [(collection_id, rid, blob, digest, meta, updated) for rid, blob, digest, meta in rows],
    )


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def chunk_metadata(topic_id: str | None, chunk: int, chunks: int, passage: bool = False) -> str:
    """A row's llm metadata: its message's topic, its number among the message's ``chunks``
    rows and, for a passage (sentences embedded without the context line), ``passage``."""
    meta: dict[str, Any] = {"topic_id": topic_id, "chunk": chunk, "chunks": chunks}
    if passage:
        meta["passage"] = True
    return json.dumps(meta)


def drop_collection(conn: sqlite3.Connection, name: str) -> int | None:
    """Delete a collection and its rows; the number of rows, or None if there was none."""
    cid = collection_id(conn, name)
    if cid is None:
        return None
    removed = conn.execute("DELETE FROM embeddings WHERE collection_id = ?", (cid,)).rowcount
    conn.execute("DELETE FROM collections WHERE id = ?", (cid,))
    return removed


def vector_state(conn: sqlite3.Connection, collection_id: int) -> tuple[int, int]:
    """(row count, highest rowid) of a collection: tells a cache whether it is current."""
    row = conn.execute(
        "SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM embeddings WHERE collection_id = ?",
        (collection_id,),
    ).fetchone()
    return row[0], row[1]


def max_vector_rowid(conn: sqlite3.Connection) -> int:
    """The highest rowid of llm's embeddings table (any collection): a cheap change marker."""
    return conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM embeddings").fetchone()[0]


def vectors_after(
    conn: sqlite3.Connection, collection_id: int, after_rowid: int, limit: int
) -> list[tuple[int, str, bytes, bool]]:
    """(rowid, id, embedding blob, is a passage) of up to ``limit`` rows written after
    ``after_rowid``, oldest first (a row another tool wrote is not a passage)."""
    rows = conn.execute(
        "SELECT rowid, id, embedding, CASE WHEN json_valid(metadata) "
        "THEN json_extract(metadata, '$.passage') END FROM embeddings "
        # "+collection_id": walk the table by rowid from the last one read; the primary
        # key's index would sort the whole collection again for every page.
        "WHERE rowid > ? AND +collection_id = ? ORDER BY rowid LIMIT ?",
        (after_rowid, collection_id, limit),
    ).fetchall()
    return [(r[0], r[1], r[2], r[3] == 1) for r in rows]


def message_places(
    conn: sqlite3.Connection, message_ids: Sequence[str]
) -> dict[str, tuple[str, int]]:
    """(topic_id, seq) of each message that exists."""
    out: dict[str, tuple[str, int]] = {}
    for start in range(0, len(message_ids), 500):
        part = list(message_ids[start : start + 500])
        marks = ",".join("?" * len(part))
        for r in conn.execute(
            f"SELECT message_id, topic_id, seq FROM messages WHERE message_id IN ({marks})", part
        ):
            out[r[0]] = (r[1], r[2])
    return out


def result_rows(conn: sqlite3.Connection, message_ids: Sequence[str]) -> dict[str, sqlite3.Row]:
    """Messages with their topic name, for search results."""
    if not message_ids:
        return {}
    marks = ",".join("?" * len(message_ids))
    rows = conn.execute(
        "SELECT m.message_id, m.topic_id, t.name AS topic_name, m.seq, m.sender, "
        "m.message_type, m.created_at, m.content_markdown "
        f"FROM messages m JOIN topics t ON t.topic_id = m.topic_id WHERE m.message_id IN ({marks})",
        list(message_ids),
    ).fetchall()
    return {r["message_id"]: r for r in rows}


def message_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


# --- hybrid search helpers -----------------------------------------------------------------------


def fts_ranking(
    conn: sqlite3.Connection,
    match: str,
    *,
    topic_id: str | None,
    limit: int,
    filters: Any = None,
) -> list[tuple[str, float]]:
    """(message_id, bm25) best first, without snippets: snippets cost more than ranking.

    Across topics and unfiltered, FTS5 ranks and cuts to ``limit`` before any join
    (joining every match to ``messages`` first costs a row lookup per match: 3x at
    100,000 messages). ``filters`` is a `search.filters.SearchFilters`.
    """
    if topic_id is None and filters is None:
        sql = (
            "SELECT m.message_id, hits.rank FROM (SELECT rowid, rank FROM messages_fts "
            "WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?) AS hits "
            "JOIN messages m ON m.rowid = hits.rowid ORDER BY hits.rank"
        )
        return [(r[0], r[1]) for r in conn.execute(sql, (match, limit))]
    where, params = _scope(topic_id, filters)
    sql = (
        "SELECT m.message_id, bm25(messages_fts) AS rank "
        "FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid "
        f"WHERE messages_fts MATCH ?{where} ORDER BY rank LIMIT ?"
    )
    return [(r[0], r[1]) for r in conn.execute(sql, (match, *params, limit))]


def _scope(topic_id: str | None, filters: Any) -> tuple[str, list[Any]]:
    """`` AND …`` conditions on messages ``m`` for a topic and search filters."""
    where, params = ("", []) if filters is None else filters.sql("m")
    if topic_id is not None:
        where, params = " AND m.topic_id = ?" + where, [topic_id, *params]
    return where, params


def message_ids_where(conn: sqlite3.Connection, topic_id: str | None, filters: Any) -> set[str]:
    """Ids of the messages a filtered search may return (the semantic side's mask)."""
    where, params = _scope(topic_id, filters)
    sql = f"SELECT m.message_id FROM messages m WHERE 1{where}"
    return {r[0] for r in conn.execute(sql, params)}


def fts_rows_for(
    conn: sqlite3.Connection, match: str, message_ids: Sequence[str]
) -> dict[str, sqlite3.Row]:
    """Result rows with highlighted snippets for a few messages known to match.

    One query per message with ``rowid = ?``, which FTS5 answers from that row alone;
    a ``rowid IN (…)`` constraint would make it evaluate the whole MATCH first.
    """
    out: dict[str, sqlite3.Row] = {}
    for mid in message_ids:
        row = conn.execute(
            "SELECT m.message_id, m.topic_id, t.name AS topic_name, m.seq, m.sender, "
            "m.message_type, m.created_at, m.content_markdown, "
            "snippet(messages_fts, 0, '**', '**', '…', 16) AS snippet, "
            "bm25(messages_fts) AS rank "
            "FROM messages m JOIN messages_fts ON messages_fts.rowid = m.rowid "
            "JOIN topics t ON t.topic_id = m.topic_id "
            "WHERE m.message_id = ? AND messages_fts MATCH ? "
            "AND messages_fts.rowid = m.rowid",
            (mid, match),
        ).fetchone()
        if row is not None:
            out[mid] = row
    return out


def topic_message_ids(conn: sqlite3.Connection, topic_id: str | None, last: int = 200) -> list[str]:
    """The ids of a topic's latest ``last`` messages (what a topic is "about" now)."""
    rows = conn.execute(
        "SELECT message_id FROM messages WHERE topic_id = ? ORDER BY seq DESC LIMIT ?",
        (topic_id, last),
    ).fetchall()
    return [r[0] for r in rows]
