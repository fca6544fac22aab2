"""The ten tools of the wire contract, through a real `agent-bus` process over stdio."""

from __future__ import annotations

import sqlite3

import pytest

from conftest import call, call_error, spawn, text_of

pytestmark = pytest.mark.anyio

TOOLS = {
    "ping",
    "topic_create",
    "topic_list",
    "topic_resolve",
    "topic_close",
    "topic_join",
    "topic_presence",
    "cursor_reset",
    "messages_search",
    "sync",
}


async def _joined_topic(session, name="t", agent="alice"):
    topic = await call(session, "topic_create", name=name, mode="new")
    await call(session, "topic_join", agent_name=agent, topic_id=topic["topic_id"])
    return topic["topic_id"]


async def test_server_lists_the_ten_tools_with_input_and_output_schemas(db_path):
    async with spawn(db_path) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert TOOLS <= set(tools)
        for name in TOOLS:
            assert tools[name].input_schema["type"] == "object"
            assert tools[name].output_schema is not None, name
            assert tools[name].description
        max_items = tools["sync"].input_schema["properties"]["max_items"]
        assert max_items["default"] == 20 and max_items["maximum"] == 20
        assert "loop until has_more=false" in max_items["description"]
        assert tools["topic_create"].input_schema["properties"]["mode"]["enum"] == ["reuse", "new"]
        assert "exactly one of topic_id or name" in tools["topic_join"].description
        assert "reclaim_token" in tools["topic_join"].input_schema["properties"]


async def test_sync_schema_follows_the_configured_item_cap(db_path):
    async with spawn(db_path, AGENT_BUS_MAX_SYNC_ITEMS="3") as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        max_items = tools["sync"].input_schema["properties"]["max_items"]
        assert max_items["default"] == 3 and max_items["maximum"] == 3


async def test_ping_reports_spec_and_package_versions(db_path):
    from agent_bus import __version__

    async with spawn(db_path) as s:
        result = await s.call_tool("ping", {})
        assert result.structured_content == {
            "ok": True,
            "spec_version": "v6.3",
            "package_version": __version__,
        }
        assert __version__ in text_of(result)


async def test_topic_create_reuses_the_newest_open_topic_unless_mode_is_new(db_path):
    async with spawn(db_path) as s:
        first = await call(s, "topic_create", name="review")
        again = await call(s, "topic_create", name="review")
        assert again["topic_id"] == first["topic_id"]
        fresh = await call(s, "topic_create", name="review", mode="new")
        assert fresh["topic_id"] != first["topic_id"]
        resolved = await call(s, "topic_resolve", name="review")
        assert resolved["topic_id"] == fresh["topic_id"]
        unnamed = await call(s, "topic_create")
        assert unnamed["name"] == f"topic-{unnamed['topic_id']}"
        with_meta = await call(s, "topic_create", name="m", metadata={"repo": "x"}, mode="new")
        listed = await call(s, "topic_list")
        by_id = {t["topic_id"]: t for t in listed["topics"]}
        assert by_id[with_meta["topic_id"]]["metadata"] == {"repo": "x"}

        err = await call_error(s, "topic_create", name="x", metadata=[1, 2])
        assert err["error"]["code"] == "INVALID_ARGUMENT"
        err = await call_error(s, "topic_create", name="   ")
        assert err["error"]["code"] == "INVALID_ARGUMENT"
        err = await call_error(s, "topic_create", name="x", mode="sometimes")
        assert err["error"]["code"] == "INVALID_ARGUMENT"


async def test_closed_topics_are_listed_apart_resolved_on_request_and_refuse_sends(db_path):
    async with spawn(db_path) as s:
        topic_id = await _joined_topic(s, name="done")
        closed = await call(s, "topic_close", topic_id=topic_id, reason="merged")
        assert closed["status"] == "closed" and closed["close_reason"] == "merged"
        assert "warnings" not in closed
        again = await call(s, "topic_close", topic_id=topic_id)
        assert again["warnings"][0]["code"] == "ALREADY_CLOSED"

        assert topic_id not in {t["topic_id"] for t in (await call(s, "topic_list"))["topics"]}
        closed_list = await call(s, "topic_list", status="closed")
        assert topic_id in {t["topic_id"] for t in closed_list["topics"]}
        assert (await call_error(s, "topic_resolve", name="done"))["error"]["code"] == (
            "TOPIC_NOT_FOUND"
        )
        found = await call(s, "topic_resolve", name="done", allow_closed=True)
        assert found["topic_id"] == topic_id

        err = await call_error(
            s, "sync", topic_id=topic_id, outbox=[{"content_markdown": "late"}], wait_seconds=0
        )
        assert err["error"]["code"] == "TOPIC_CLOSED"
        readable = await call(s, "sync", topic_id=topic_id, wait_seconds=0)
        assert readable["status"] == "empty"
        assert (await call_error(s, "topic_close", topic_id="nope"))["error"]["code"] == (
            "TOPIC_NOT_FOUND"
        )


async def test_names_are_reserved_and_the_reclaim_token_takes_them_back_after_restart(db_path):
    async with spawn(db_path) as a:
        topic_id = (await call(a, "topic_create", name="dupes"))["topic_id"]
        joined = await a.call_tool("topic_join", {"agent_name": "codex", "topic_id": topic_id})
        token = joined.structured_content["reclaim_token"]
        assert f"reclaim_token={token}" in text_of(joined)
        # joining again in the same session is fine and keeps the token
        again = await call(a, "topic_join", agent_name="codex", topic_id=topic_id)
        assert again["reclaim_token"] == token
        by_name = await call(a, "topic_join", agent_name="codex", name="dupes")
        assert by_name["reclaim_token"] == token
        await call(
            a, "sync", topic_id=topic_id, outbox=[{"content_markdown": "hi"}], wait_seconds=0
        )

    async with spawn(db_path) as b:
        err = await call_error(b, "topic_join", agent_name="codex", topic_id=topic_id)
        assert err["error"]["code"] == "AGENT_NAME_IN_USE"
        assert err["requested_agent_name"] == "codex"
        assert "codex reviewer" in err["suggested_agent_names"]
        wrong = await call_error(
            b, "topic_join", agent_name="codex", topic_id=topic_id, reclaim_token="guess"
        )
        assert wrong["error"]["code"] == "AGENT_NAME_IN_USE"
        other = await call(b, "topic_join", agent_name="codex reviewer", name="dupes")
        assert other["agent_name"] == "codex reviewer"
        await call(
            b,
            "sync",
            topic_id=topic_id,
            outbox=[{"content_markdown": "from reviewer"}],
            wait_seconds=0,
        )

    async with spawn(db_path) as c:
        back = await call(
            c, "topic_join", agent_name=" codex ", topic_id=topic_id, reclaim_token=token
        )
        assert back["agent_name"] == "codex" and back["reclaim_token"] == token
        got = await call(c, "sync", topic_id=topic_id, wait_seconds=0)
        assert [m["content_markdown"] for m in got["received"]] == ["from reviewer"]

    with sqlite3.connect(db_path) as db:
        stored = db.execute("SELECT reclaim_token_hash FROM agent_name_reservations").fetchall()
        dump = "\n".join(db.iterdump())
    assert len(stored) == 2 and token not in dump


async def test_join_rejects_bad_arguments_with_invalid_argument_or_topic_not_found(db_path):
    async with spawn(db_path) as s:
        topic_id = (await call(s, "topic_create", name="j"))["topic_id"]
        cases = [
            ({"agent_name": "a", "topic_id": topic_id, "name": "j"}, "INVALID_ARGUMENT"),
            ({"agent_name": "a"}, "INVALID_ARGUMENT"),
            ({"agent_name": "", "topic_id": topic_id}, "INVALID_ARGUMENT"),
            ({"agent_name": "bad\nname", "topic_id": topic_id}, "INVALID_ARGUMENT"),
            ({"agent_name": "x" * 65, "topic_id": topic_id}, "INVALID_ARGUMENT"),
            ({"agent_name": "a", "topic_id": topic_id, "reclaim_token": ""}, "INVALID_ARGUMENT"),
            ({"agent_name": 42, "topic_id": topic_id}, "INVALID_ARGUMENT"),
            ({"topic_id": topic_id}, "INVALID_ARGUMENT"),
            ({"agent_name": "a", "topic_id": "missing"}, "TOPIC_NOT_FOUND"),
            ({"agent_name": "a", "name": "missing"}, "TOPIC_NOT_FOUND"),
        ]
        for args, code in cases:
            err = await call_error(s, "topic_join", **args)
            assert err["error"]["code"] == code, (args, err)


async def test_sync_requires_a_join_in_this_session(db_path):
    async with spawn(db_path) as a, spawn(db_path) as b:
        topic_id = await _joined_topic(a)
        err = await call_error(b, "sync", topic_id=topic_id, wait_seconds=0)
        assert err["error"]["code"] == "AGENT_NOT_JOINED"
        err = await call_error(b, "sync", topic_id=topic_id, agent_name="alice", wait_seconds=0)
        assert err["error"]["code"] == "AGENT_NOT_JOINED"
        err = await call_error(b, "cursor_reset", topic_id=topic_id)
        assert err["error"]["code"] == "AGENT_NOT_JOINED"
        ok = await call(a, "sync", topic_id=topic_id, agent_name="alice", wait_seconds=0)
        assert ok["agent_name"] == "alice"


async def test_two_peers_exchange_messages_in_seq_order_with_replies(db_path):
    async with spawn(db_path) as a, spawn(db_path) as b:
        topic_id = await _joined_topic(a, name="pair")
        await call(b, "topic_join", agent_name="bob", topic_id=topic_id)
        sent = await call(
            a,
            "sync",
            topic_id=topic_id,
            outbox=[
                {"content_markdown": "first", "message_type": "question"},
                {"content_markdown": "second", "metadata": {"files": ["a.py"]}},
            ],
            wait_seconds=0,
        )
        assert [s["message"]["seq"] for s in sent["sent"]] == [1, 2]
        assert sent["received_count"] == 0 and sent["status"] == "empty"
        got = await call(b, "sync", topic_id=topic_id, wait_seconds=0)
        assert got["status"] == "ready"
        assert [m["content_markdown"] for m in got["received"]] == ["first", "second"]
        assert got["received"][1]["metadata"] == {"files": ["a.py"]}
        assert got["cursor"]["last_seq"] == 2
        question = got["received"][0]
        reply = await call(
            b,
            "sync",
            topic_id=topic_id,
            outbox=[
                {
                    "content_markdown": "use 42 retries",
                    "message_type": "answer",
                    "reply_to": question["message_id"],
                }
            ],
            wait_seconds=0,
        )
        assert reply["sent"][0]["message"]["reply_to"] == question["message_id"]
        back_result = await a.call_tool("sync", {"topic_id": topic_id, "wait_seconds": 0})
        back = back_result.structured_content
        assert [(m["sender"], m["message_type"]) for m in back["received"]] == [("bob", "answer")]
        assert "use 42 retries" in text_of(back_result)  # the body is in the text output too
        # include_self does not hand back what the cursor has already passed.
        again = await call(a, "sync", topic_id=topic_id, wait_seconds=0, include_self=True)
        assert again["status"] == "empty" and again["received"] == []
        mine = await call(b, "cursor_reset", topic_id=topic_id, last_seq=0)
        assert mine["cursor"]["last_seq"] == 0
        with_self = await call(b, "sync", topic_id=topic_id, include_self=True, wait_seconds=0)
        assert [m["seq"] for m in with_self["received"]] == [1, 2, 3]


async def test_has_more_drains_a_backlog_in_small_pages(db_path):
    async with spawn(db_path) as a, spawn(db_path) as b:
        topic_id = await _joined_topic(a, name="backlog")
        outbox = [{"content_markdown": f"m{i}"} for i in range(25)]
        await call(a, "sync", topic_id=topic_id, outbox=outbox, wait_seconds=0)
        await call(b, "topic_join", agent_name="bob", topic_id=topic_id)
        seen, pages = [], 0
        while True:
            page = await call(b, "sync", topic_id=topic_id, max_items=10, wait_seconds=0)
            seen += [m["seq"] for m in page["received"]]
            pages += 1
            if not page["has_more"]:
                break
        assert seen == list(range(1, 26)) and pages == 3
        err = await call_error(b, "sync", topic_id=topic_id, max_items=21, wait_seconds=0)
        assert err["error"]["code"] == "INVALID_ARGUMENT"


async def test_client_message_id_makes_a_retried_send_a_duplicate_not_a_new_message(db_path):
    async with spawn(db_path) as a:
        topic_id = await _joined_topic(a)
        item = {"content_markdown": "once", "client_message_id": "req-1"}
        first = await call(a, "sync", topic_id=topic_id, outbox=[item], wait_seconds=0)
        second = await call(a, "sync", topic_id=topic_id, outbox=[item, item], wait_seconds=0)
        assert first["sent"][0]["duplicate"] is False
        assert [s["duplicate"] for s in second["sent"]] == [True, True]
        ids = {s["message"]["message_id"] for s in first["sent"] + second["sent"]}
        assert len(ids) == 1
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1


async def test_manual_acknowledgement_with_auto_advance_false(db_path):
    async with spawn(db_path) as a, spawn(db_path) as b:
        topic_id = await _joined_topic(a)
        await call(b, "topic_join", agent_name="bob", topic_id=topic_id)
        await call(
            a,
            "sync",
            topic_id=topic_id,
            wait_seconds=0,
            outbox=[{"content_markdown": f"m{i}"} for i in range(3)],
        )
        peek = await call(b, "sync", topic_id=topic_id, auto_advance=False, wait_seconds=0)
        assert len(peek["received"]) == 3 and peek["cursor"]["last_seq"] == 0
        acked = await call(
            b, "sync", topic_id=topic_id, auto_advance=False, ack_through=2, wait_seconds=0
        )
        assert acked["cursor"]["last_seq"] == 2
        assert [m["seq"] for m in acked["received"]] == [3]
        for bad in (
            {"ack_through": 9, "auto_advance": False},
            {"ack_through": 1, "auto_advance": True},
            {"ack_through": -1, "auto_advance": False},
        ):
            err = await call_error(b, "sync", topic_id=topic_id, wait_seconds=0, **bad)
            assert err["error"]["code"] == "INVALID_ARGUMENT", bad


async def test_cursor_reset_replays_history_and_checks_its_bounds(db_path):
    async with spawn(db_path) as a, spawn(db_path) as b:
        topic_id = await _joined_topic(a)
        await call(b, "topic_join", agent_name="bob", topic_id=topic_id)
        await call(
            b,
            "sync",
            topic_id=topic_id,
            wait_seconds=0,
            outbox=[{"content_markdown": "one"}, {"content_markdown": "two"}],
        )
        assert len((await call(a, "sync", topic_id=topic_id, wait_seconds=0))["received"]) == 2
        assert (await call(a, "sync", topic_id=topic_id, wait_seconds=0))["status"] == "empty"
        reset = await call(a, "cursor_reset", topic_id=topic_id, last_seq=1)
        assert reset["cursor"]["last_seq"] == 1 and reset["agent_name"] == "alice"
        replay = await call(a, "sync", topic_id=topic_id, wait_seconds=0)
        assert [m["content_markdown"] for m in replay["received"]] == ["two"]
        for bad in (3, -1):
            err = await call_error(a, "cursor_reset", topic_id=topic_id, last_seq=bad)
            assert err["error"]["code"] == "INVALID_ARGUMENT"


async def test_presence_lists_peers_active_within_the_window(db_path):
    async with spawn(db_path) as a, spawn(db_path) as b:
        topic_id = await _joined_topic(a)
        await call(b, "topic_join", agent_name="bob", topic_id=topic_id)
        await call(a, "sync", topic_id=topic_id, wait_seconds=0)
        await call(b, "sync", topic_id=topic_id, wait_seconds=0)
        with sqlite3.connect(db_path) as db:
            db.execute("UPDATE cursors SET updated_at = updated_at - 1000 WHERE agent_name='bob'")
        seen = await call(a, "topic_presence", topic_id=topic_id)
        assert [p["agent_name"] for p in seen["peers"]] == ["alice"]
        assert seen["count"] == 1 and seen["window_seconds"] == 300
        wide = await call(a, "topic_presence", topic_id=topic_id, window_seconds=3600)
        assert {p["agent_name"] for p in wide["peers"]} == {"alice", "bob"}
        for args, code in (
            ({"window_seconds": 0}, "INVALID_ARGUMENT"),
            ({"limit": 0}, "INVALID_ARGUMENT"),
        ):
            assert (await call_error(a, "topic_presence", topic_id=topic_id, **args))["error"][
                "code"
            ] == code
        err = await call_error(a, "topic_presence", topic_id="missing")
        assert err["error"]["code"] == "TOPIC_NOT_FOUND"


async def test_one_bad_outbox_item_stores_nothing_and_names_the_problem(db_path):
    async with spawn(db_path, AGENT_BUS_MAX_MESSAGE_CHARS="100", AGENT_BUS_MAX_OUTBOX="3") as a:
        topic_id = await _joined_topic(a)
        good = {"content_markdown": "fine"}
        bad_outboxes = [
            [good, {"content_markdown": "x" * 101}],
            [good, {"content_markdown": ""}],
            [good, {"message_type": "question"}],
            [good, {"content_markdown": "x", "metadata": "not an object"}],
            [good, {"content_markdown": "x", "metadata": {"k": "v" * 200}}],
            [good, {"content_markdown": "x", "reply_to": "not-a-message"}],
            [good, {"content": "wrong field name"}],
            [good, "just a string"],
            [good] * 4,
        ]
        for outbox in bad_outboxes:
            err = await call_error(a, "sync", topic_id=topic_id, outbox=outbox, wait_seconds=0)
            assert err["error"]["code"] == "INVALID_ARGUMENT", outbox
            assert err["error"]["message"]
        assert (await call(a, "ping"))["ok"] is True
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM messages_fts").fetchone()[0] == 0


async def test_unknown_outbox_fields_are_ignored_with_a_warning_as_the_reference_does(db_path):
    async with spawn(db_path) as a:
        topic_id = await _joined_topic(a)
        sent = await call(
            a,
            "sync",
            topic_id=topic_id,
            wait_seconds=0,
            outbox=[{"content_markdown": "hi", "priority": "high"}],
        )
        assert sent["sent"][0]["message"]["content_markdown"] == "hi"
        assert sent["warnings"][0]["code"] == "UNKNOWN_FIELDS_IGNORED"
        assert sent["warnings"][0]["context"] == {"fields": ["outbox[0].priority"]}


async def test_outbox_may_be_a_json_string_or_a_single_object(db_path):
    import json

    async with spawn(db_path) as a:
        topic_id = await _joined_topic(a)
        as_string = json.dumps([{"content_markdown": "from a string"}])
        r1 = await call(a, "sync", topic_id=topic_id, outbox=as_string, wait_seconds=0)
        r2 = await call(
            a, "sync", topic_id=topic_id, outbox={"content_markdown": "single"}, wait_seconds=0
        )
        assert r1["sent"][0]["message"]["content_markdown"] == "from a string"
        assert r2["sent"][0]["message"]["seq"] == 2
        err = await call_error(a, "sync", topic_id=topic_id, outbox="not json", wait_seconds=0)
        assert err["error"]["code"] == "INVALID_ARGUMENT"


async def test_wrongly_typed_arguments_answer_invalid_argument_and_the_server_keeps_serving(
    db_path,
):
    async with spawn(db_path) as a:
        topic_id = await _joined_topic(a)
        cases = [
            ("sync", {"topic_id": topic_id, "max_items": "lots"}),
            ("sync", {"topic_id": topic_id, "max_items": 0}),
            ("sync", {"topic_id": topic_id, "wait_seconds": -1}),
            ("sync", {"topic_id": topic_id, "include_self": "maybe"}),
            ("sync", {}),
            ("topic_list", {"status": "sideways"}),
            ("messages_search", {"query": "x", "limit": 0}),
            ("messages_search", {"query": "x", "mode": "telepathy"}),
            ("topic_presence", {"topic_id": topic_id, "window_seconds": "long"}),
            ("no_such_tool", {}),
        ]
        for tool, args in cases:
            err = await call_error(a, tool, **args)
            assert err["error"]["code"] == "INVALID_ARGUMENT", (tool, args, err)
        assert (await call(a, "ping"))["ok"] is True


async def test_search_finds_identifiers_and_no_query_string_is_an_error(db_path):
    async with spawn(db_path) as a:
        topic_id = await _joined_topic(a, name="search")
        other = await _joined_topic(a, name="elsewhere", agent="al")
        await call(
            a,
            "sync",
            topic_id=topic_id,
            wait_seconds=0,
            outbox=[
                {"content_markdown": "Raise `retry_backoff_ms` in src/store/schema.py to 250"},
                {"content_markdown": "The ERR_DB_LOCKED errors come from the exporter"},
            ],
        )
        await call(
            a,
            "sync",
            topic_id=other,
            wait_seconds=0,
            outbox=[{"content_markdown": "retry_backoff_ms elsewhere"}],
        )
        hits = await call(a, "messages_search", query="retry_backoff_ms", mode="fts")
        assert hits["count"] == 2 and "**" in hits["results"][0]["snippet"]
        scoped = await call(
            a, "messages_search", query="schema.py", topic_id=topic_id, include_content=True
        )
        assert scoped["count"] == 1
        assert scoped["results"][0]["content_markdown"].startswith("Raise")
        assert scoped["results"][0]["topic_name"] == "search"
        raise_msg = "Raise `retry_backoff_ms` in src/store/schema.py to 250"
        locked_msg = "The ERR_DB_LOCKED errors come from the exporter"
        # FTS syntax in user text is never an error: it is words (or nothing) to look for.
        nasty = {
            '"unbalanced': set(),
            "a AND": set(),
            "NEAR(": set(),
            "*": set(),
            "^start": set(),
            "col:val": set(),
            "((x)": set(),
            "🙂": set(),
            "the of and": {locked_msg},  # only stop-words: they are kept
            "x" * 10_000: set(),
            "OR OR OR": set(),
            "'; DROP TABLE messages; --": set(),
            '"unbalanced retry_backoff_ms': {raise_msg, "retry_backoff_ms elsewhere"},
            "ERR_DB_LOCKED OR (": {locked_msg},
            "schema.py* ^col:": {raise_msg},
        }
        for q, expected in nasty.items():
            res = await call(a, "messages_search", query=q, mode="fts", include_content=True)
            assert {r["content_markdown"] for r in res["results"]} == expected, q[:40]
        for bad in ("", "   "):
            err = await call_error(a, "messages_search", query=bad)
            assert err["error"]["code"] == "INVALID_ARGUMENT"
        err = await call_error(a, "messages_search", query="x" * 20_000)
        assert err["error"]["code"] == "INVALID_ARGUMENT"
        err = await call_error(a, "messages_search", query="x", topic_id="missing")
        assert err["error"]["code"] == "TOPIC_NOT_FOUND"


async def test_a_foreign_or_newer_database_answers_db_schema_mismatch_but_ping_works(tmp_path):
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE photos (id INTEGER)")
    for path in (newer, foreign):
        async with spawn(path) as s:
            assert (await call(s, "ping"))["ok"] is True
            err = await call_error(s, "topic_list")
            assert err["error"]["code"] == "DB_SCHEMA_MISMATCH"
            assert "AGENT_BUS_DB" in err["error"]["message"] or "Upgrade" in err["error"]["message"]
    with sqlite3.connect(foreign) as db:  # nothing of ours was written into it
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"photos"}


async def test_a_locked_database_answers_db_busy_after_the_deadline_and_loses_nothing(db_path):
    async with spawn(db_path, AGENT_BUS_BUSY_TIMEOUT_MS="300") as a:
        topic_id = await _joined_topic(a)
        await call(
            a, "sync", topic_id=topic_id, outbox=[{"content_markdown": "kept"}], wait_seconds=0
        )
        blocker = sqlite3.connect(db_path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            err = await call_error(
                a,
                "sync",
                topic_id=topic_id,
                wait_seconds=0,
                outbox=[{"content_markdown": "blocked"}],
            )
            assert err["error"]["code"] == "DB_BUSY"
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        after = await call(
            a, "sync", topic_id=topic_id, wait_seconds=0, outbox=[{"content_markdown": "after"}]
        )
        assert after["sent"][0]["message"]["seq"] == 2
    with sqlite3.connect(db_path) as db:
        bodies = [r[0] for r in db.execute("SELECT content_markdown FROM messages ORDER BY seq")]
    assert bodies == ["kept", "after"]


async def test_database_file_and_directory_are_private(db_path):
    async with spawn(db_path) as a:
        await call(a, "topic_list")
    assert (db_path.stat().st_mode & 0o777) == 0o600
    assert (db_path.parent.stat().st_mode & 0o777) == 0o700
