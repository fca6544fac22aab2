"""The server as a process: malformed input, stdin EOF, cancellation, kill -9."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import time

import anyio
import pytest

from conftest import call, spawn
from rawmcp import RawServer

pytestmark = pytest.mark.anyio


def _cursor_updated_at(db_path, topic_id: str, agent: str) -> float | None:
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as db:
        row = db.execute(
            "SELECT updated_at FROM cursors WHERE topic_id = ? AND agent_name = ?",
            (topic_id, agent),
        ).fetchone()
    return row[0] if row else None


def _wait_for_cursor(db_path, topic_id: str, agent: str, after: float | None = None) -> None:
    """Until a sync of ``agent`` has committed its first step (it writes the cursor).

    A sync that found nothing then waits, so this is the moment it is known to wait.
    """
    deadline = time.monotonic() + 60
    while True:
        seen = _cursor_updated_at(db_path, topic_id, agent)
        if seen is not None and (after is None or seen > after):
            return
        assert time.monotonic() < deadline, "the sync never took its first step"
        time.sleep(0.02)


async def _until_waiting(db_path, topic_id: str, agent: str, after: float | None) -> None:
    await anyio.to_thread.run_sync(_wait_for_cursor, db_path, topic_id, agent, after)


def test_lone_surrogates_and_malformed_lines_never_stall_the_server(db_path):
    server = RawServer(db_path)
    try:
        topic = server.tool("topic_create", name="raw")["structuredContent"]
        server.tool("topic_join", agent_name="a", topic_id=topic["topic_id"])
        # A lone surrogate escape is valid JSON but not encodable text: it is answered,
        # and stored as U+FFFD like invalid UTF-8 bytes are.
        arguments = json.dumps(
            {
                "topic_id": topic["topic_id"],
                "wait_seconds": 0,
                "outbox": [{"content_markdown": "bad PLACEHOLDER text"}],
            }
        ).replace("PLACEHOLDER", "\\ud800")
        line = (
            '{"jsonrpc":"2.0","id":900,"method":"tools/call",'
            f'"params":{{"name":"sync","arguments":{arguments}}}}}'
        )
        server.send_line(line)
        reply = server.read()
        assert reply["id"] == 900 and reply["result"]["isError"] is False
        stored = reply["result"]["structuredContent"]["sent"][0]["message"]["content_markdown"]
        assert stored == "bad \ufffd text"
        server.send_line('{"jsonrpc": "2.0", "id": 901, "method": "tools/call", "params": ')
        assert server.read() == {
            "jsonrpc": "2.0",
            "id": 901,
            "error": {"code": -32700, "message": "Parse error: the line is not valid JSON"},
        }
        server.send_line(b"\xff\xfe not utf-8".decode("latin-1"))
        assert server.read()["id"] is None
        assert server.tool("ping")["structuredContent"]["ok"] is True
    finally:
        server.close()


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_every_line_the_server_cannot_parse_is_answered_and_the_session_goes_on(db_path):
    server = RawServer(db_path)
    try:
        call = '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"ping",'
        cases = [
            # Tool arguments nested thousands of levels deep: valid JSON no parser here reads.
            (call % 7 + '"arguments":{"x":' + _deep(5000) + "}}}", 7, -32600),
            (call % '"abc"' + '"arguments":{"x":' + _deep(300) + "}}}", "abc", -32600),
            (call % 8 + '"arguments":{"x":', 8, -32700),  # cut short
            ("this is not json", None, -32700),
            ('{"jsonrpc":"2.0","id":9,"method":42}', 9, -32600),  # JSON, not JSON-RPC
            ('[{"jsonrpc":"2.0","id":10,"method":"ping"}]', None, -32600),  # a batch
        ]
        for line, rid, code in cases:
            server.send_line(line)
            reply = server.read()
            assert reply["id"] == rid, (line[:80], reply)
            assert reply["error"]["code"] == code, (line[:80], reply)
        # Nested deep enough to be ugly but within what the parser reads: a normal call.
        reply = server.request(
            "tools/call", {"name": "ping", "arguments": {"x": json.loads(_deep(100))}}
        )
        assert reply["result"]["isError"] is False
        assert server.tool("ping")["structuredContent"]["ok"] is True
    finally:
        server.close()


def test_closing_stdin_ends_the_server_promptly_even_while_a_sync_waits(db_path):
    server = RawServer(db_path)
    try:
        topic = server.tool("topic_create", name="eof")["structuredContent"]
        server.tool("topic_join", agent_name="a", topic_id=topic["topic_id"])
        server.send(
            "tools/call",
            {"name": "sync", "arguments": {"topic_id": topic["topic_id"], "wait_seconds": 120}},
        )
        _wait_for_cursor(db_path, topic["topic_id"], "a")  # its first step is done: it waits
        assert server.proc.stdin is not None
        server.proc.stdin.close()
        # A liveness bound far below the 120 s the sync would otherwise wait.
        assert server.proc.wait(timeout=60) is not None
    finally:
        server.close()


async def test_a_ping_is_answered_while_a_sync_of_the_same_session_waits(db_path):
    async with spawn(db_path) as a, spawn(db_path) as b:
        topic_id = (await call(a, "topic_create", name="wait"))["topic_id"]
        await call(a, "topic_join", agent_name="waiter", topic_id=topic_id)
        await call(b, "topic_join", agent_name="poster", topic_id=topic_id)
        done = anyio.Event()
        result: dict = {}
        before = _cursor_updated_at(db_path, topic_id, "waiter")

        async def waiter() -> None:
            result.update(await call(a, "sync", topic_id=topic_id, wait_seconds=600))
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            with anyio.fail_after(60):
                # The sync has committed its first step and found nothing: it is waiting now.
                await _until_waiting(db_path, topic_id, "waiter", before)
                assert not done.is_set()
                # Several pings and a search complete while that sync still waits.
                for _ in range(3):
                    assert (await call(a, "ping"))["ok"] is True
                await call(a, "messages_search", query="anything", mode="fts")
                assert not done.is_set()
            await call(
                b,
                "sync",
                topic_id=topic_id,
                wait_seconds=0,
                outbox=[{"content_markdown": "wake up"}],
            )
            with anyio.fail_after(60):
                await done.wait()
        assert result["status"] == "ready"
        assert [m["content_markdown"] for m in result["received"]] == ["wake up"]


async def test_long_poll_times_out_with_status_timeout(db_path):
    async with spawn(db_path) as a:
        topic_id = (await call(a, "topic_create", name="quiet"))["topic_id"]
        await call(a, "topic_join", agent_name="solo", topic_id=topic_id)
        res = await call(a, "sync", topic_id=topic_id, wait_seconds=1)
        assert res["status"] == "timeout" and res["received"] == []


async def test_a_cancelled_wait_does_not_swallow_the_next_message(db_path):
    async with spawn(db_path) as a, spawn(db_path) as b:
        topic_id = (await call(a, "topic_create", name="cancel"))["topic_id"]
        await call(a, "topic_join", agent_name="reader", topic_id=topic_id)
        await call(b, "topic_join", agent_name="writer", topic_id=topic_id)
        with anyio.fail_after(60):  # liveness only
            async with anyio.create_task_group() as tg:
                tg.start_soon(a.call_tool, "sync", {"topic_id": topic_id, "wait_seconds": 600})
                await _until_waiting(db_path, topic_id, "reader", None)
                tg.cancel_scope.cancel()  # the client gives up on the waiting sync
        await call(
            b,
            "sync",
            topic_id=topic_id,
            wait_seconds=0,
            outbox=[{"content_markdown": "after cancel"}],
        )
        assert (await call(a, "ping"))["ok"] is True
        got = await call(a, "sync", topic_id=topic_id, wait_seconds=5)
        assert [m["content_markdown"] for m in got["received"]] == ["after cancel"]


def test_kill_9_mid_stream_leaves_a_sound_database_with_every_acknowledged_message(db_path):
    server = RawServer(db_path)
    acknowledged: dict[str, int] = {}
    try:
        topic = server.tool("topic_create", name="crash")["structuredContent"]
        topic_id = topic["topic_id"]
        server.tool("topic_join", agent_name="writer", topic_id=topic_id)
        for batch in range(40):
            outbox = [
                {"content_markdown": f"batch {batch} item {i}", "client_message_id": f"{batch}-{i}"}
                for i in range(5)
            ]
            server.send(
                "tools/call",
                {
                    "name": "sync",
                    "arguments": {"topic_id": topic_id, "outbox": outbox, "wait_seconds": 0},
                },
            )
        for _ in range(15):
            reply = server.read()
            for sent in reply["result"]["structuredContent"]["sent"]:
                acknowledged[sent["message"]["client_message_id"]] = sent["message"]["seq"]
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
    finally:
        server.close()

    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
        rows = dict(db.execute("SELECT client_message_id, seq FROM messages").fetchall())
        contents = dict(
            db.execute("SELECT client_message_id, content_markdown FROM messages").fetchall()
        )
        next_seq = db.execute(
            "SELECT next_seq FROM topic_seq WHERE topic_id = ?", (topic_id,)
        ).fetchone()[0]
    assert len(acknowledged) == 75
    for cmid, seq in acknowledged.items():
        assert rows[cmid] == seq
    batches: dict[str, int] = {}
    for cmid in rows:
        batches[cmid.split("-")[0]] = batches.get(cmid.split("-")[0], 0) + 1
    assert set(batches.values()) == {5}, "a batch was half-stored"
    assert sorted(rows.values()) == list(range(1, len(rows) + 1))
    assert next_seq == len(rows) + 1
    for cmid, content in contents.items():  # every stored body whole, none half-written
        batch, item = cmid.split("-")
        assert content == f"batch {batch} item {item}"
