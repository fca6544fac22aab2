"""Opening a database written by the reference implementation (agent-bus-mcp, schema 6)."""

from __future__ import annotations

import sqlite3

import pytest

from conftest import call, call_error, spawn

pytestmark = pytest.mark.anyio

OLD_TOKEN = "0123456789abcdef0123456789abcdef"


def _reference_database(path) -> None:
    """A schema-6 file laid out as the agent-bus-mcp spec describes, with some history."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '6'), ('fts_backfill_v1', '1');
        CREATE TABLE topics (topic_id TEXT PRIMARY KEY, name TEXT NOT NULL,
          created_at REAL NOT NULL, status TEXT NOT NULL, closed_at REAL NULL,
          close_reason TEXT NULL, metadata_json TEXT NULL);
        CREATE TABLE topic_seq (topic_id TEXT PRIMARY KEY, next_seq INTEGER NOT NULL,
          updated_at REAL NOT NULL);
        CREATE TABLE messages (message_id TEXT PRIMARY KEY, topic_id TEXT NOT NULL,
          seq INTEGER NOT NULL, sender TEXT NOT NULL, message_type TEXT NOT NULL,
          reply_to TEXT NULL, content_markdown TEXT NOT NULL, metadata_json TEXT NULL,
          client_message_id TEXT NULL, created_at REAL NOT NULL);
        CREATE UNIQUE INDEX idx_messages_topic_seq_unique ON messages(topic_id, seq);
        CREATE TABLE cursors (topic_id TEXT NOT NULL, agent_name TEXT NOT NULL,
          last_seq INTEGER NOT NULL, updated_at REAL NOT NULL,
          PRIMARY KEY(topic_id, agent_name));
        CREATE TABLE agent_name_reservations (topic_id TEXT NOT NULL, agent_name TEXT NOT NULL,
          reclaim_token TEXT NOT NULL, created_at REAL NOT NULL, last_claimed_at REAL NOT NULL,
          PRIMARY KEY(topic_id, agent_name));
        CREATE VIRTUAL TABLE messages_fts USING fts5(content_markdown, message_id UNINDEXED,
          topic_id UNINDEXED, tokenize='unicode61');
        CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
          INSERT INTO messages_fts(rowid, content_markdown, message_id, topic_id)
          VALUES (new.rowid, new.content_markdown, new.message_id, new.topic_id);
        END;
        CREATE TABLE embedding_jobs (message_id TEXT NOT NULL, model TEXT NOT NULL,
          topic_id TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
          locked_by TEXT NULL, locked_at REAL NULL, last_error TEXT NULL,
          created_at REAL NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY(message_id, model));
        """
    )
    db.execute("INSERT INTO topics VALUES ('t1', 'old-review', 100.0, 'open', NULL, NULL, NULL)")
    db.execute("INSERT INTO topic_seq VALUES ('t1', 3, 101.0)")
    for seq, sender, body in (
        (1, "codex", "Please review `retry_backoff_ms`"),
        (2, "claude", "Looks good to me"),
    ):
        db.execute(
            "INSERT INTO messages VALUES (?, 't1', ?, ?, 'message', NULL, ?, NULL, NULL, ?)",
            (f"m{seq}", seq, sender, body, 100.0 + seq),
        )
    db.execute("INSERT INTO cursors VALUES ('t1', 'codex', 1, 101.0)")
    db.execute(
        "INSERT INTO agent_name_reservations VALUES ('t1', 'codex', ?, 100.0, 100.0)",
        (OLD_TOKEN,),
    )
    db.commit()
    db.close()


async def test_a_reference_database_is_upgraded_in_place_keeping_history_and_names(db_path):
    _reference_database(db_path)
    async with spawn(db_path) as s:
        topics = (await call(s, "topic_list"))["topics"]
        assert [(t["name"], t["message_count"]) for t in topics] == [("old-review", 2)]
        err = await call_error(s, "topic_join", agent_name="codex", topic_id="t1")
        assert err["error"]["code"] == "AGENT_NAME_IN_USE"
        back = await call(
            s, "topic_join", agent_name="codex", topic_id="t1", reclaim_token=OLD_TOKEN
        )
        assert back["reclaim_token"] == OLD_TOKEN
        unread = await call(s, "sync", topic_id="t1", wait_seconds=0)
        assert [m["content_markdown"] for m in unread["received"]] == ["Looks good to me"]
        sent = await call(
            s,
            "sync",
            topic_id="t1",
            wait_seconds=0,
            outbox=[{"content_markdown": "new after upgrade"}],
        )
        assert sent["sent"][0]["message"]["seq"] == 3
        found = await call(s, "messages_search", query="retry_backoff_ms", mode="fts")
        assert [r["message_id"] for r in found["results"]] == ["m1"]
    with sqlite3.connect(db_path) as db:
        assert OLD_TOKEN not in "\n".join(db.iterdump())
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert int(version) >= 7
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert OLD_TOKEN.encode() not in db_path.read_bytes()  # not even in freed pages
