"""Administrative service functions (``agent_bus.admin``) on real database files."""

from __future__ import annotations

import sqlite3
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


def test_vacuum_waits_for_a_writer_then_reports_db_busy(db_path, monkeypatch) -> None:
    bus = Bus(load_settings(db=db_path, busy_timeout_ms=300))
    try:
        bus.topic_create("v")
        monkeypatch.setattr(bus, "write", lambda fn: None)  # only the VACUUM step is under test
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            started = time.monotonic()
            with pytest.raises(DbBusy):
                admin.vacuum(bus)
            assert time.monotonic() - started >= 0.25
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert admin.vacuum(bus)["path"] == str(db_path)
    finally:
        bus.close()
