"""Export, import and delete through the CLI and `agent_bus.export` / `agent_bus.admin`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_bus import admin, export
from agent_bus.bus import Bus
from agent_bus.cli import app
from agent_bus.settings import load_settings

runner = CliRunner()


def ok(db: Path, *args: str) -> str:
    result = runner.invoke(app, [*args, "--db", str(db)])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


@pytest.fixture
def bus(db_path: Path):
    b = Bus(load_settings(db=db_path))
    yield b
    b.close()


@pytest.fixture
def other_db(tmp_path: Path) -> Path:
    return tmp_path / "other" / "bus.sqlite"


def fill(bus: Bus, name: str = "review-auth", n: int = 6) -> str:
    """A topic with every field in use: types, replies, metadata, idempotency keys, closed."""
    topic, _ = bus.topic_create(name, {"repo": "api", "pr": 412})
    tid = topic.topic_id
    previous = None
    for i in range(n):
        item = {
            "content_markdown": f"message {i} with `code_{i}` and ünïcode\n\n- item",
            "message_type": "question" if i % 2 == 0 else "answer",
            "metadata": {"i": i} if i % 3 == 0 else None,
            "client_message_id": f"c{i}" if i % 2 else None,
            "reply_to": previous,
        }
        sent = bus.post(tid, "alice" if i % 2 == 0 else "bob", bus.check_outbox([item]))
        previous = sent[0].message.message_id
    bus.topic_close(tid, "merged")
    return tid


def records_without_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "exported_at"} for r in records]


def test_jsonl_export_then_import_into_a_new_bus_round_trips_every_field(
    bus, db_path, other_db, tmp_path
) -> None:
    tid = fill(bus)
    out = tmp_path / "t.jsonl"
    ok(db_path, "export", tid, "--format", "jsonl", "-o", str(out))
    report = json.loads(ok(other_db, "import", str(out), "--json"))
    assert report["created_topic"] and report["imported"] == 6 and report["renumbered"] == 0

    restored = Bus(load_settings(db=other_db))
    try:
        original = export.export_records(bus, bus.get_topic(tid))
        copy = export.export_records(restored, restored.get_topic(tid))
        assert records_without_time(copy) == records_without_time(original)
        lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert records_without_time(lines) == records_without_time(original)
        # the restored topic keeps working: the next message gets the next seq
        restored_topic = restored.topic_create("fresh")[0]
        assert restored_topic.topic_id != tid
    finally:
        restored.close()


def test_json_export_imports_too_and_importing_twice_changes_nothing(
    bus, db_path, other_db, tmp_path
) -> None:
    tid = fill(bus, n=4)
    out = tmp_path / "t.json"
    ok(db_path, "export", tid, "-f", "json", "-o", str(out))
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["topic"]["topic_id"] == tid and len(doc["messages"]) == 4
    first = json.loads(ok(other_db, "import", str(out), "--json"))
    second = json.loads(ok(other_db, "import", str(out), "--json"))
    assert first["imported"] == 4
    assert second["imported"] == 0 and second["skipped"] == 4 and not second["created_topic"]


def test_import_into_another_topic_appends_messages_after_its_own(bus, db_path, tmp_path) -> None:
    tid = fill(bus, n=3)
    out = tmp_path / "t.jsonl"
    out.write_text(export.export_text(bus, bus.get_topic(tid), "jsonl"), encoding="utf-8")
    target, _ = bus.topic_create("target")
    bus.post(target.topic_id, "carol", bus.check_outbox([{"content_markdown": "mine"}]))
    # ids are unique per database: import into a second bus's topic
    admin.delete_topic(bus, tid)
    report = json.loads(ok(db_path, "import", str(out), "--into", "target", "--json"))
    assert report["imported"] == 3 and report["topic_id"] == target.topic_id
    seqs = [(m.seq, m.sender) for m in bus.messages(target.topic_id)]
    assert seqs == [(1, "carol"), (2, "alice"), (3, "bob"), (4, "alice")]
    nxt = bus.post(target.topic_id, "carol", bus.check_outbox([{"content_markdown": "next"}]))
    assert nxt[0].message.seq == 5


def test_markdown_export_is_a_readable_transcript_with_reply_links(bus, db_path) -> None:
    tid = fill(bus, n=2)
    md = ok(db_path, "export", tid)
    assert md.startswith("# review-auth\n")
    assert "- **Status:** closed" in md and "merged" in md
    assert "### #1 · alice · question" in md and "### #2 · bob · answer" in md
    assert "reply to [#1 alice](#msg-1)" in md and '<a id="msg-1"></a>' in md
    assert "message 1 with `code_1` and ünïcode" in md
    since = ok(db_path, "export", tid, "--since", "1")
    assert "### #1 " not in since and "### #2 " in since


def _rows_mentioning(conn: sqlite3.Connection, tid: str, message_ids: list[str]) -> dict:
    """Every row in any table that still refers to the topic or one of its messages."""
    found = {}
    tables = [
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not r[0].startswith("messages_fts")
    ]
    for table in tables:
        cols = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
        n = 0
        if "topic_id" in cols:
            n += conn.execute(
                f'SELECT COUNT(*) FROM "{table}" WHERE topic_id = ?', (tid,)
            ).fetchone()[0]
        for col in {"message_id", "id"} & cols:
            marks = ",".join("?" * len(message_ids))
            n += conn.execute(
                f'SELECT COUNT(*) FROM "{table}" WHERE "{col}" IN ({marks})', message_ids
            ).fetchone()[0]
        if n:
            found[table] = n
    return found


def test_delete_leaves_no_orphan_rows_and_spares_other_topics(bus, db_path) -> None:
    tid = fill(bus, n=5)
    keep = fill(bus, name="keep", n=2)
    bus.topic_join("reviewer", topic_id=tid, allow_closed=True)
    bus.cursor_reset(tid, "reviewer", 2)
    ids = [m.message_id for m in bus.messages(tid)]
    conn = bus.conn()
    # tables the embeddings feature adds (llm's layout plus a job queue)
    conn.executescript(
        """
        CREATE TABLE embeddings (collection_id INTEGER, id TEXT, embedding BLOB,
          content TEXT, content_hash BLOB, metadata TEXT, updated INTEGER,
          PRIMARY KEY (collection_id, id));
        CREATE TABLE IF NOT EXISTS embedding_jobs (message_id TEXT PRIMARY KEY, attempts INTEGER);
        """
    )
    for mid in ids + [m.message_id for m in bus.messages(keep)]:
        conn.execute("INSERT INTO embeddings(collection_id, id) VALUES (1, ?)", (mid,))
        conn.execute("INSERT INTO embeddings(collection_id, id) VALUES (1, ?)", (f"{mid}:1",))
        # schema 8 queues every new message already; this covers an older layout
        conn.execute(
            "INSERT OR IGNORE INTO embedding_jobs(message_id, attempts) VALUES (?, 0)", (mid,)
        )

    report = json.loads(ok(db_path, "topics", "delete", tid, "--yes", "--json"))
    assert report["messages"] == 5 and report["cursors"] == 1 and report["reservations"] == 1
    assert report["embeddings"] == 15

    assert _rows_mentioning(conn, tid, ids) == {}
    assert conn.execute("SELECT COUNT(*) FROM messages_fts_docsize").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 4
    assert [m.seq for m in bus.messages(keep)] == [1, 2]
    assert json.loads(ok(db_path, "db", "check", "--json"))["ok"]
    assert bus.search("message", mode="fts", topic_id=keep)[0]  # its index rows remain


def test_delete_without_yes_and_without_a_terminal_deletes_nothing(bus, db_path) -> None:
    tid = fill(bus, n=1)
    result = runner.invoke(app, ["topics", "delete", tid, "--db", str(db_path)])
    assert result.exit_code == 1 and "--yes" in result.stderr
    assert len(bus.messages(tid)) == 1


def _export_lines(bus: Bus, tmp_path: Path, n: int = 3) -> tuple[str, list[dict]]:
    tid = fill(bus, n=n)
    records = [
        json.loads(line)
        for line in export.export_text(bus, bus.get_topic(tid), "jsonl").splitlines()
    ]
    return tid, records


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("seq", 0, "seq: must be an integer >= 1"),
        ("seq", -4, "seq: must be an integer >= 1"),
        ("seq", "2", "seq: must be an integer >= 1"),
        ("seq", True, "seq: must be an integer >= 1"),
        ("sender", "", "sender must be a non-empty string"),
        ("sender", "eve\x1b[2J", "sender must not contain control characters"),
        ("sender", "x" * 65, "sender must be <= 64 characters"),
        ("message_type", "t\x07x", "message_type must not contain control characters"),
        ("message_type", "t" * 33, "message_type must be <= 32 characters"),
        ("content_markdown", "  ", "content_markdown must be a non-empty string"),
        ("content_markdown", "a\x00b", "content_markdown must not contain NUL"),
        ("content_markdown", "x" * 101, "content_markdown exceeds max length (100"),
        ("metadata", {"big": "x" * 200}, "metadata is too large"),
        ("client_message_id", "", "client_message_id must be a non-empty string"),
        ("message_id", " ", "message_id must be a non-empty string"),
    ],
)
def test_import_rejects_an_invalid_record_naming_its_line_and_imports_nothing(
    bus, other_db, tmp_path, field, value, words
) -> None:
    _, records = _export_lines(bus, tmp_path)
    records[2][field] = value  # line 3: the second message
    path = _write(tmp_path / "bad.jsonl", records)
    result = runner.invoke(
        app,
        ["import", str(path), "--db", str(other_db)],
        env={"AGENT_BUS_MAX_MESSAGE_CHARS": "100"},
    )
    assert result.exit_code == 1, (result.stdout, result.stderr)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: INVALID_ARGUMENT: {path}:3: bad message record: "), line
    assert words in line
    if other_db.exists():  # nothing from the file, not even the topic
        with sqlite3.connect(other_db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
            assert conn.execute("SELECT COUNT(*) FROM topics").fetchone()[0] == 0


def test_import_counts_a_reused_client_message_id_under_a_new_id_as_present(
    bus, db_path, tmp_path
) -> None:
    tid, records = _export_lines(bus, tmp_path, n=3)
    # Message #2 (bob, client_message_id "c1") re-sent under a new id, with a new seq.
    again = dict(records[2], message_id="fresh0000001", seq=9)
    twice = dict(records[3], message_id="fresh0000002", seq=10)  # #3 has no key: imported
    path = _write(tmp_path / "again.jsonl", [records[0], again, twice, dict(twice)])
    report = json.loads(ok(db_path, "import", str(path), "--json"))
    assert (report["imported"], report["skipped"]) == (1, 2)
    assert [(m.seq, m.client_message_id) for m in bus.messages(tid)] == [
        (1, None),
        (2, "c1"),
        (3, None),
        (10, None),
    ]


def test_import_of_two_records_sharing_a_client_message_id_keeps_the_first(
    bus, other_db, tmp_path
) -> None:
    _, records = _export_lines(bus, tmp_path, n=2)
    copy = dict(records[2], message_id="fresh0000003", seq=3)
    path = _write(tmp_path / "dup.jsonl", [*records, copy])
    report = json.loads(ok(other_db, "import", str(path), "--json"))
    assert (report["imported"], report["skipped"]) == (2, 1)


@pytest.mark.parametrize(
    ("value", "words"),
    [("", "name must be a non-empty string"), ("t\x1b]0;x\x07", "name must not contain control")],
)
def test_import_rejects_a_topic_record_with_an_invalid_name(
    bus, other_db, tmp_path, value, words
) -> None:
    _, records = _export_lines(bus, tmp_path)
    records[0]["name"] = value
    path = _write(tmp_path / "bad.jsonl", records)
    result = runner.invoke(app, ["import", str(path), "--db", str(other_db)])
    assert result.exit_code == 1, (result.stdout, result.stderr)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: INVALID_ARGUMENT: {path}: bad topic record: {words}"), line
