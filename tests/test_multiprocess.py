"""Several server processes on one database file, as users run them."""

from __future__ import annotations

import sqlite3

import anyio
import pytest

from conftest import call, spawn

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

WRITERS = 3
PER_WRITER = 200


async def test_three_writers_and_one_reader_see_every_message_once_in_order(db_path):
    async with (
        spawn(db_path) as reader,
        spawn(db_path) as w1,
        spawn(db_path) as w2,
        spawn(db_path) as w3,
    ):
        writers = [w1, w2, w3]
        topic_id = (await call(reader, "topic_create", name="stream"))["topic_id"]
        await call(reader, "topic_join", agent_name="reader", topic_id=topic_id)
        for i, w in enumerate(writers):
            await call(w, "topic_join", agent_name=f"writer-{i}", topic_id=topic_id)

        received: list[dict] = []

        async def write(i: int) -> None:
            for n in range(PER_WRITER):
                await call(
                    writers[i],
                    "sync",
                    topic_id=topic_id,
                    wait_seconds=0,
                    outbox=[{"content_markdown": f"w{i} n{n}"}],
                )

        async def drain() -> None:
            while len(received) < WRITERS * PER_WRITER:
                page = await call(reader, "sync", topic_id=topic_id, max_items=20, wait_seconds=5)
                assert page["status"] in ("ready", "timeout")
                received.extend(page["received"])

        with anyio.fail_after(240):
            async with anyio.create_task_group() as tg:
                tg.start_soon(drain)
                for i in range(WRITERS):
                    tg.start_soon(write, i)

    seqs = [m["seq"] for m in received]
    assert seqs == list(range(1, WRITERS * PER_WRITER + 1))  # once each, in order, contiguous
    bodies = [m["content_markdown"] for m in received]
    for i in range(WRITERS):  # each writer's own order is preserved
        mine = [b for b in bodies if b.startswith(f"w{i} ")]
        assert mine == [f"w{i} n{n}" for n in range(PER_WRITER)]


async def test_topics_names_and_messages_survive_a_restart_of_every_server(db_path):
    async with spawn(db_path) as a, spawn(db_path) as b:
        topic_id = (await call(a, "topic_create", name="durable"))["topic_id"]
        token = (await call(a, "topic_join", agent_name="alice", topic_id=topic_id))[
            "reclaim_token"
        ]
        await call(b, "topic_join", agent_name="bob", topic_id=topic_id)
        await call(
            b,
            "sync",
            topic_id=topic_id,
            wait_seconds=0,
            outbox=[{"content_markdown": f"before restart {n}"} for n in range(5)],
        )
        first = await call(a, "sync", topic_id=topic_id, max_items=2, wait_seconds=0)
        assert len(first["received"]) == 2

    async with spawn(db_path) as a2:
        listed = await call(a2, "topic_list")
        assert [t["name"] for t in listed["topics"]] == ["durable"]
        await call(a2, "topic_join", agent_name="alice", topic_id=topic_id, reclaim_token=token)
        rest = await call(a2, "sync", topic_id=topic_id, wait_seconds=0)
        # the cursor lived in the database: only the three unread messages come back
        assert [m["content_markdown"] for m in rest["received"]] == [
            f"before restart {n}" for n in (2, 3, 4)
        ]
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
