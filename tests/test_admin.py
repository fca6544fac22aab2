"""Administrative service functions (``agent_bus.admin``) on real database files."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from agent_bus import admin
from agent_bus.bus import Bus
from agent_bus.errors import DbBusy
from agent_bus.search.service import fts_results
from agent_bus.settings import load_settings


@pytest.fixture
def bus(db_path: Path):
    b = Bus(load_settings(db=db_path))
    yield b
    b.close()


def post(bus: Bus, topic_id: str, text: str, sender: str = "a") -> str:
    items = bus.check_outbox([{"content_markdown": text}])
    return bus.post(topic_id, sender, items)[0].message.message_id


def bodies(bus: Bus, topic_id: str) -> list[str]:
    return [m.content_markdown for m in bus.messages(topic_id)]


def test_rename_rewrites_whole_names_only(bus) -> None:
    topic, _ = bus.topic_create("api")
    texts = [
        "the api topic",
        "rapid progress",
        "(api), api.",
        "api-v2 and docs/api and api.md and my_api and api2",
        "API stays: case differs",
        "api",
    ]
    for text in texts:
        post(bus, topic.topic_id, text)
    report = admin.rename_topic(bus, topic.topic_id, "payments-api")
    assert report.messages_rewritten == 3
    assert bodies(bus, topic.topic_id) == [
        "the payments-api topic",
        "rapid progress",
        "(payments-api), api.",  # "api." is followed by "." at the end: left alone
        "api-v2 and docs/api and api.md and my_api and api2",
        "API stays: case differs",
        "payments-api",
    ]


def test_rename_new_name_is_inserted_literally(bus) -> None:
    topic, _ = bus.topic_create("old")
    post(bus, topic.topic_id, "see old here")
    admin.rename_topic(bus, topic.topic_id, r"new\1")
    assert bodies(bus, topic.topic_id) == [r"see new\1 here"]


def test_rename_without_rewriting_leaves_bodies(bus) -> None:
    topic, _ = bus.topic_create("api")
    post(bus, topic.topic_id, "the api topic")
    report = admin.rename_topic(bus, topic.topic_id, "web", rewrite_messages=False)
    assert report.messages_rewritten == 0
    assert bodies(bus, topic.topic_id) == ["the api topic"]


def test_rename_keeps_full_text_search_in_step(bus) -> None:
    topic, _ = bus.topic_create("api")
    post(bus, topic.topic_id, "the api topic")

    def search(q: str) -> list[str]:
        return [
            r.content_markdown
            for r in bus.read(
                lambda c: fts_results(c, q, topic_id=None, limit=5, include_content=True)
            )
        ]

    admin.rename_topic(bus, topic.topic_id, "billing")
    assert search("billing") == ["the billing topic"]
    assert search("api") == []


def test_rename_requeues_rewritten_messages_for_embedding(bus, db_path) -> None:
    topic, _ = bus.topic_create("api")
    changed = post(bus, topic.topic_id, "the api topic")
    failed = post(bus, topic.topic_id, "api again")
    untouched = post(bus, topic.topic_id, "rapid")
    # The indexer has embedded the first and third and given up on the second.
    with sqlite3.connect(db_path) as conn:
        conn.execute("DELETE FROM embedding_jobs WHERE message_id IN (?, ?)", (changed, untouched))
        conn.execute(
            "UPDATE embedding_jobs SET attempts = 5, last_error = 'boom', failed_at = 1, "
            "next_attempt_at = 1 WHERE message_id = ?",
            (failed,),
        )
    before = time.time()
    admin.rename_topic(bus, topic.topic_id, "billing")
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT message_id, attempts, last_error, failed_at, next_attempt_at "
            "FROM embedding_jobs ORDER BY message_id"
        ).fetchall()
    assert {r[0] for r in rows} == {changed, failed}
    for _, attempts, last_error, failed_at, next_attempt_at in rows:
        assert (attempts, last_error, failed_at) == (0, None, None)
        assert next_attempt_at >= before


def _fts_segments(db_path: Path) -> int:
    """How many b-tree segments the messages_fts index has (FTS5's structure record).

    The record (rowid 10 of the %_data table) is a 4-byte cookie, an optional 0xFF
    marker, then varints: the number of levels, then the number of segments.
    """
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        data = conn.execute("SELECT block FROM messages_fts_data WHERE id = 10").fetchone()[0]
    pos = 5 if data[4] == 0xFF else 4

    def varint() -> int:
        nonlocal pos
        value = 0
        for _ in range(9):
            byte = data[pos]
            pos += 1
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        return value

    varint()  # levels
    return varint()


def _fragmented(bus: Bus) -> str:
    """A topic whose messages came in one transaction each: one FTS segment per message."""
    topic, _ = bus.topic_create("v")
    for i in range(6):
        post(bus, topic.topic_id, f"vacuum message {i} about retries")
    return topic.topic_id


def test_vacuum_merges_the_full_text_index_and_search_still_finds_everything(bus, db_path) -> None:
    _fragmented(bus)
    assert _fts_segments(db_path) > 1
    report = admin.vacuum(bus)
    assert report["path"] == str(db_path)
    assert _fts_segments(db_path) == 1  # the FTS 'optimize' step ran, for real
    found = bus.read(
        lambda c: fts_results(c, "retries", topic_id=None, limit=10, include_content=True)
    )
    assert len(found) == 6


def test_vacuum_waits_for_a_writer_that_holds_the_lock(db_path) -> None:
    bus = Bus(load_settings(db=db_path, busy_timeout_ms=120_000))
    try:
        _fragmented(bus)
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        tried = threading.Event()
        outcome: list[object] = []

        def run() -> None:
            # Watch the statements of this thread's own connection (the one vacuum uses):
            # observing, not replacing, so every step of vacuum runs as it does for users.
            bus.conn().set_trace_callback(
                lambda sql: tried.set() if sql.startswith("BEGIN IMMEDIATE") else None
            )
            try:
                outcome.append(admin.vacuum(bus))
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        try:
            assert tried.wait(60), "vacuum never asked for the write lock"
            assert not outcome, outcome  # it cannot get past the lock we hold: it waits
        finally:
            other.execute("ROLLBACK")
            other.close()
        thread.join(120)
        assert not thread.is_alive()
        assert isinstance(outcome[0], dict) and outcome[0]["path"] == str(db_path), outcome
        assert _fts_segments(db_path) == 1
    finally:
        bus.close()


def test_vacuum_reports_db_busy_when_a_writer_keeps_the_lock(db_path) -> None:
    bus = Bus(load_settings(db=db_path, busy_timeout_ms=300))
    try:
        _fragmented(bus)
        segments = _fts_segments(db_path)
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(DbBusy) as exc:
                admin.vacuum(bus)
            assert exc.value.code == "DB_BUSY"
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert _fts_segments(db_path) == segments  # nothing was changed
        assert admin.vacuum(bus)["path"] == str(db_path)
        assert _fts_segments(db_path) == 1
    finally:
        bus.close()
