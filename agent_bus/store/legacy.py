"""Upgrading a database of the reference implementation (agent-bus-mcp, schema "6").

Both use the same default path (``~/.agent_bus/agent_bus.sqlite``), so a user
switching over already has one. Its core tables (topics, topic_seq, messages,
cursors) have exactly our columns and are kept as they are; reclaim tokens,
stored there in plain text, are replaced by their SHA-256 hashes (old tokens
keep working); its FTS table and embedding tables, whose layouts differ from
ours, are dropped and rebuilt by our schema (embeddings are recomputed by the
indexer). Runs inside the caller's migration transaction.
"""

from __future__ import annotations

import hashlib
import sqlite3

REFERENCE_VERSION = 6

_REFERENCE_TRIGGERS = (
    "messages_fts_ai",
    "messages_fts_ad",
    "messages_fts_au",
    "messages_embeddings_ad",
    "messages_embeddings_au",
)
_REFERENCE_DERIVED_TABLES = (
    "messages_fts",
    "message_embedding_state",
    "chunk_embeddings",
    "embedding_jobs",
    "embedding_worker_leader",
)
_CORE_TABLES = ("topics", "topic_seq", "messages", "cursors", "agent_name_reservations")


def is_reference_database(conn: sqlite3.Connection) -> bool:
    """True for a reference schema-6 file with the tables we know how to carry over."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not set(_CORE_TABLES) <= tables:
        return False
    columns = {r[1] for r in conn.execute("PRAGMA table_info(agent_name_reservations)")}
    return "reclaim_token" in columns


def _sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def upgrade_reference(conn: sqlite3.Connection, create_fts: object) -> None:
    """Turn a reference schema-6 database into our schema 7.

    ``create_fts`` is the function that creates our FTS table and triggers.
    """
    for trigger in _REFERENCE_TRIGGERS:
        conn.execute(f'DROP TRIGGER IF EXISTS "{trigger}"')
    # FTS shadow tables go with their virtual table; the rest are plain tables.
    for table in _REFERENCE_DERIVED_TABLES:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    # The plain-text tokens must not survive in freed pages (builds differ in the default).
    conn.execute("PRAGMA secure_delete = ON")
    conn.create_function("agent_bus_sha256", 1, _sha256, deterministic=True)
    conn.execute(
        """CREATE TABLE agent_name_reservations_v7 (
          topic_id TEXT NOT NULL REFERENCES topics(topic_id),
          agent_name TEXT NOT NULL,
          reclaim_token_hash TEXT NOT NULL,
          created_at REAL NOT NULL,
          last_claimed_at REAL NOT NULL,
          PRIMARY KEY (topic_id, agent_name)
        )"""
    )
    conn.execute(
        "INSERT INTO agent_name_reservations_v7 "
        "SELECT topic_id, agent_name, agent_bus_sha256(reclaim_token), created_at, "
        "last_claimed_at FROM agent_name_reservations"
    )
    conn.execute("DROP TABLE agent_name_reservations")
    conn.execute("ALTER TABLE agent_name_reservations_v7 RENAME TO agent_name_reservations")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS idx_cursors_topic_updated ON cursors(topic_id, updated_at)"
    )
    # Topics created before the reference kept topic_seq rows: make sure every topic has one.
    conn.execute(
        "INSERT OR IGNORE INTO topic_seq(topic_id, next_seq, updated_at) "
        "SELECT t.topic_id, COALESCE((SELECT MAX(seq) FROM messages m "
        "WHERE m.topic_id = t.topic_id), 0) + 1, t.created_at FROM topics t"
    )
    create_fts(conn)  # type: ignore[operator]
