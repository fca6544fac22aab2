"""``agent-bus mcp --http``: real server processes, the official client over streamable HTTP."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from http_server import (
    http_server,
    http_session,
    raw_post,
    run_http,
    stop,
    wait_until,
)

from agent_bus.bus import Bus
from agent_bus.service import access
from agent_bus.settings import load_settings

from conftest import call, call_error, make_token, revoke_token, spawn

pytestmark = pytest.mark.anyio


def _waiting(db: Path, topic_id: str, agent: str) -> bool:
    """A sync of ``agent`` has taken its first step (it writes the cursor), so it waits."""
    with sqlite3.connect(db, timeout=30) as conn:
        row = conn.execute(
            "SELECT 1 FROM cursors WHERE topic_id = ? AND agent_name = ?", (topic_id, agent)
        ).fetchone()
    return row is not None


async def _until_waiting(db: Path, topic_id: str, agent: str) -> None:
    await anyio.to_thread.run_sync(lambda: wait_until(lambda: _waiting(db, topic_id, agent), 60))


def message_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM messages").fetchone()[0]


async def test_without_a_token_the_server_answers_401_with_www_authenticate(db_path) -> None:
    make_token(db_path)
    with http_server(db_path) as srv:
        response = raw_post(srv.url)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer ")
        for bad in ("wrong", "agb_tk00000000_nope", "Bearer"):
            assert raw_post(srv.url, token=bad).status_code == 401
        wait_until(lambda: '"POST /mcp" 401' in srv.log)


async def test_revoked_and_expired_tokens_get_401(db_path) -> None:
    dead_id, dead = make_token(db_path, "dead")
    _, expired = make_token(db_path, "short", expires_in=1)
    _, good = make_token(db_path, "good")
    revoke_token(db_path, dead_id)
    with sqlite3.connect(db_path) as conn:  # expired an hour ago, without waiting for it
        conn.execute("UPDATE access_tokens SET expires_at = expires_at - 3600 WHERE label='short'")
    with http_server(db_path) as srv:
        assert raw_post(srv.url, token=dead).status_code == 401
        assert raw_post(srv.url, token=expired).status_code == 401
        assert raw_post(srv.url, token=good).status_code == 200


async def test_the_secret_never_appears_in_the_access_log(db_path) -> None:
    token_id, token = make_token(db_path)
    with http_server(db_path) as srv:
        async with http_session(srv.url, token) as s:
            await call(s, "ping")
        wait_until(lambda: f"token={token_id}" in srv.log)
        assert token not in srv.log and token.split("_", 2)[2] not in srv.log
    bus = Bus(load_settings(db=db_path))
    try:
        (info,) = access.list_tokens(bus)
    finally:
        bus.close()
    assert info.last_used_at is not None  # `tokens list` shows the use


async def test_a_scoped_token_cannot_act_as_another_agent_or_see_another_topic(db_path) -> None:
    _, token = make_token(db_path, agents=["reviewer"], topics=["review"])
    with http_server(db_path) as srv:
        async with spawn(db_path) as local:  # a local stdio agent owns another topic
            hidden = await call(local, "topic_create", name="secret-plans")
            await call(local, "topic_join", agent_name="boss", topic_id=hidden["topic_id"])
            await call(
                local,
                "sync",
                topic_id=hidden["topic_id"],
                outbox=[{"content_markdown": "plan X"}],
                wait_seconds=0,
            )
        before = message_count(db_path)
        async with http_session(srv.url, token) as s:
            mine = await call(s, "topic_create", name="review")
            err = await call_error(s, "topic_join", agent_name="implementer", name="review")
            assert err["error"]["code"] == "FORBIDDEN"
            err = await call_error(s, "topic_join", agent_name="reviewer", name="secret-plans")
            assert err["error"]["code"] == "FORBIDDEN"
            err = await call_error(
                s, "topic_join", agent_name="reviewer", topic_id=hidden["topic_id"]
            )
            assert err["error"]["code"] == "FORBIDDEN"
            for tool, args in [
                ("topic_resolve", {"name": "secret-plans"}),
                ("topic_presence", {"topic_id": hidden["topic_id"]}),
                ("topic_close", {"topic_id": hidden["topic_id"]}),
                ("cursor_reset", {"topic_id": hidden["topic_id"]}),
                ("sync", {"topic_id": hidden["topic_id"], "outbox": [{"content_markdown": "x"}]}),
                ("messages_search", {"query": "plan", "topic_id": hidden["topic_id"]}),
                ("topic_create", {"name": "elsewhere"}),
            ]:
                err = await call_error(s, tool, **args)
                assert err["error"]["code"] == "FORBIDDEN", (tool, err)
            listed = await call(s, "topic_list", status="all")
            assert [t["name"] for t in listed["topics"]] == ["review"]
            found = await call(s, "messages_search", query="plan", mode="fts")
            assert found["results"] == []
            await call(s, "topic_join", agent_name="reviewer", topic_id=mine["topic_id"])
            sent = await call(
                s,
                "sync",
                topic_id=mine["topic_id"],
                outbox=[{"content_markdown": "ok"}],
                wait_seconds=0,
            )
            assert len(sent["sent"]) == 1
        assert message_count(db_path) == before + 1
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("SELECT count(*) FROM topics").fetchone()[0] == 2


async def test_a_read_only_token_reads_and_searches_but_never_sends(db_path) -> None:
    _, token = make_token(db_path, read_only=True)
    async with spawn(db_path) as local:
        topic = await call(local, "topic_create", name="notes")
        await call(local, "topic_join", agent_name="writer", topic_id=topic["topic_id"])
        await call(
            local,
            "sync",
            topic_id=topic["topic_id"],
            outbox=[{"content_markdown": "hi"}],
            wait_seconds=0,
        )
    with http_server(db_path) as srv:
        async with http_session(srv.url, token) as s:
            await call(s, "topic_join", agent_name="reader", topic_id=topic["topic_id"])
            got = await call(s, "sync", topic_id=topic["topic_id"], wait_seconds=0)
            assert [m["content_markdown"] for m in got["received"]] == ["hi"]
            assert (await call(s, "messages_search", query="hi", mode="fts"))["count"] == 1
            for tool, args in [
                ("sync", {"topic_id": topic["topic_id"], "outbox": [{"content_markdown": "no"}]}),
                ("topic_create", {"name": "x"}),
                ("topic_close", {"topic_id": topic["topic_id"]}),
            ]:
                assert (await call_error(s, tool, **args))["error"]["code"] == "FORBIDDEN"
    assert message_count(db_path) == 1


async def test_two_http_agents_and_one_stdio_agent_converse_on_one_database(db_path) -> None:
    _, t1 = make_token(db_path, "a", agents=["alice"])
    _, t2 = make_token(db_path, "b", agents=["bob"])
    with http_server(db_path) as srv:
        async with (
            http_session(srv.url, t1) as alice,
            http_session(srv.url, t2) as bob,
            spawn(db_path) as carol,
        ):
            topic = (await call(alice, "topic_create", name="trio"))["topic_id"]
            for s, name in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
                await call(s, "topic_join", agent_name=name, topic_id=topic)
            result: dict = {}

            async def bob_waits() -> None:
                result["bob"] = await call(bob, "sync", topic_id=topic, wait_seconds=30)

            async with anyio.create_task_group() as tg:
                tg.start_soon(bob_waits)
                await _until_waiting(db_path, topic, "bob")
                await call(
                    carol,
                    "sync",
                    topic_id=topic,
                    outbox=[{"content_markdown": "from stdio"}],
                    wait_seconds=0,
                )
            assert [m["sender"] for m in result["bob"]["received"]] == ["carol"]
            await call(
                bob,
                "sync",
                topic_id=topic,
                outbox=[{"content_markdown": "from http"}],
                wait_seconds=0,
            )
            with anyio.fail_after(30):
                got = await call(carol, "sync", topic_id=topic, wait_seconds=20)
            assert [m["content_markdown"] for m in got["received"]] == ["from http"]
            got = await call(alice, "sync", topic_id=topic, wait_seconds=0)
            assert [m["sender"] for m in got["received"]] == ["carol", "bob"]


async def test_revocation_takes_effect_on_the_next_request_mid_session(db_path) -> None:
    token_id, token = make_token(db_path)
    with http_server(db_path) as srv:
        async with http_session(srv.url, token) as s:
            await call(s, "ping")
            revoke_token(db_path, token_id)
            with pytest.raises(Exception):  # noqa: B017 - the client reports the 401 its own way
                with anyio.fail_after(30):
                    await s.call_tool("ping", {})
        assert raw_post(srv.url, token=token).status_code == 401


def test_an_idle_session_is_closed_after_the_configured_time(db_path) -> None:
    env = {"AGENT_BUS_HTTP_SESSION_IDLE_SECONDS": "1"}
    with http_server(db_path, env=env) as srv:
        opened = raw_post(srv.url)
        session = {"mcp-session-id": opened.headers["mcp-session-id"]}
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        raw_post(
            srv.url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session
        )
        # The SDK answers 404 for a session it has closed; the client starts a new one. Each
        # look is a request that restarts the idle clock, so look less and less often.
        pause = 1.5
        while raw_post(srv.url, listing, headers=session).status_code != 404:
            assert pause < 30, "the idle session was never closed"
            time.sleep(pause)
            pause *= 2
        assert raw_post(srv.url).status_code == 200


async def test_too_many_requests_get_429_with_retry_after(db_path) -> None:
    _, token = make_token(db_path)
    env = {"AGENT_BUS_HTTP_RATE_PER_SECOND": "0.01", "AGENT_BUS_HTTP_RATE_BURST": "3"}
    with http_server(db_path, env=env) as srv:
        codes = [raw_post(srv.url, token=token).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        limited = raw_post(srv.url, token=token)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["code"] == "RATE_LIMITED"
        _, other = make_token(db_path, "other")  # another token has its own budget
        assert raw_post(srv.url, token=other).status_code == 200


async def test_one_token_cannot_hold_more_long_polls_than_the_cap(db_path) -> None:
    _, token = make_token(db_path, agents=["w"])
    with http_server(db_path, env={"AGENT_BUS_HTTP_MAX_LONG_POLLS": "1"}) as srv:
        async with http_session(srv.url, token) as s:
            topic = (await call(s, "topic_create", name="polls"))["topic_id"]
            await call(s, "topic_join", agent_name="w", topic_id=topic)
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: call(s, "sync", topic_id=topic, wait_seconds=600))
                await _until_waiting(db_path, topic, "w")  # the first one holds its slot
                body = {
                    "jsonrpc": "2.0",
                    "id": 99,
                    "method": "tools/call",
                    "params": {"name": "sync", "arguments": {"topic_id": topic}},
                }
                second = await anyio.to_thread.run_sync(
                    lambda: raw_post(srv.url, body, token=token)
                )
                assert second.status_code == 429 and second.headers["retry-after"] == "1"
                poster = Bus(load_settings(db=db_path))  # a message ends the first wait
                try:
                    poster.post(topic, "poster", poster.check_outbox([{"content_markdown": "go"}]))
                finally:
                    poster.close()
            # A sync that does not wait is never capped.
            await call(s, "sync", topic_id=topic, wait_seconds=0)


async def test_fuzzed_bodies_get_4xx_and_the_server_keeps_serving(db_path) -> None:
    _, token = make_token(db_path)
    with http_server(db_path, env={"AGENT_BUS_HTTP_MAX_BODY_BYTES": "65536"}) as srv:
        bodies: list[bytes] = [
            b"x" * 200_000,  # larger than the limit
            b"[" * 50_000 + b"]" * 50_000,  # deep, but under no limit either
            b"{" * 20_000,
            b"not json at all",
            b"\xff\xfe\x00garbage",
            b"",
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}).encode(),
            json.dumps([1, 2, 3]).encode(),
        ]
        for body in bodies:
            response = raw_post(srv.url, body, token=token)
            assert 400 <= response.status_code < 500, (body[:20], response.status_code)
        plain = raw_post(srv.url, b"{}", token=token, headers={"Content-Type": "text/plain"})
        assert plain.status_code == 400
        async with http_session(srv.url, token) as s:
            assert (await call(s, "ping"))["ok"] is True
        assert srv.proc.poll() is None


def test_a_non_loopback_bind_without_tokens_refuses_to_start(db_path) -> None:
    for args in (["--host", "0.0.0.0"], ["--host", "0.0.0.0", "--allow-remote"]):
        proc = run_http(db_path, *args)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "--allow-remote" in err or "token" in err
        assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: TOKEN_REQUIRED: ")


def test_a_foreign_host_header_is_refused(db_path) -> None:
    with http_server(db_path) as srv:
        assert raw_post(srv.url, headers={"Host": "evil.example.com"}).status_code == 421
        assert raw_post(srv.url, headers={"Origin": "http://evil.example.com"}).status_code == 403
        assert raw_post(srv.url).status_code == 200


async def test_shutdown_ends_a_waiting_sync_at_once(db_path) -> None:
    proc_holder: dict = {}
    with http_server(db_path) as srv:
        proc_holder["p"] = srv.proc
        async with http_session(srv.url) as s:
            topic = (await call(s, "topic_create", name="bye"))["topic_id"]
            await call(s, "topic_join", agent_name="w", topic_id=topic)
            result: dict = {}

            async def wait() -> None:
                result["r"] = await s.call_tool("sync", {"topic_id": topic, "wait_seconds": 120})

            with anyio.fail_after(60):  # far below the 120 s the sync asked for
                async with anyio.create_task_group() as tg:
                    tg.start_soon(wait)
                    await _until_waiting(db_path, topic, "w")
                    srv.proc.send_signal(signal.SIGTERM)
            assert result["r"].structured_content["status"] == "timeout"
            code = await anyio.to_thread.run_sync(lambda: stop(srv.proc))
    assert code == 0


def test_mcp_config_writes_each_clients_http_form_without_the_secret(tmp_path) -> None:
    from typer.testing import CliRunner

    from agent_bus.cli import app

    runner = CliRunner()
    url, var = "https://bus.example.com/mcp", "AGENT_BUS_TOKEN"
    expected = {
        "claude-code": "${AGENT_BUS_TOKEN}",
        "gemini": "${AGENT_BUS_TOKEN}",
        "cursor": "${env:AGENT_BUS_TOKEN}",
        "opencode": "{env:AGENT_BUS_TOKEN}",
        "codex": 'bearer_token_env_var = "AGENT_BUS_TOKEN"',
    }
    for client, ref in expected.items():
        out = runner.invoke(
            app, ["mcp-config", "--client", client, "--url", url, "--token-env", var]
        )
        assert out.exit_code == 0, out.output
        assert ref in out.stdout and url in out.stdout and "agb_" not in out.stdout
    # A local entry is replaced as a whole: no stdio command is left next to the URL.
    project = ["--write", "--project", str(tmp_path)]
    assert runner.invoke(app, ["mcp-config", "--client", "claude-code", *project]).exit_code == 0
    out = runner.invoke(
        app, ["mcp-config", "--client", "claude-code", "--url", url, "--token-env", var, *project]
    )
    assert out.exit_code == 0, out.output
    entry = json.loads((tmp_path / ".mcp.json").read_text())["mcpServers"]["agent-bus"]
    assert entry == {"type": "http", "url": url, "headers": {"Authorization": f"Bearer ${{{var}}}"}}
    for bad in (["--url", "ftp://x"], ["--url", url, "--token-env", "agb_tk00000000_x"]):
        out = runner.invoke(app, ["mcp-config", "--client", "cursor", "--token-env", var, *bad])
        assert out.exit_code == 1 and "INVALID_ARGUMENT" in out.output


def test_doctor_checks_reachability_auth_and_a_round_trip(db_path) -> None:
    _, token = make_token(db_path)
    with http_server(db_path) as srv:
        base = [sys.executable, "-m", "agent_bus", "doctor", "--url", srv.url, "--json"]
        env = {k: v for k, v in os.environ.items() if k != "AGENT_BUS_TOKEN"}
        missing = subprocess.run(base, env=env, capture_output=True, text=True, timeout=120)
        assert missing.returncode == 1
        assert [c["ok"] for c in json.loads(missing.stdout)["checks"]] == [True, False]
        good = subprocess.run(
            base, env={**env, "AGENT_BUS_TOKEN": token}, capture_output=True, text=True, timeout=120
        )
        assert good.returncode == 0, good.stdout + good.stderr
        checks = json.loads(good.stdout)["checks"]
        assert [c["name"] for c in checks] == ["reachability", "auth", "round trip"]
        assert token not in good.stdout + good.stderr
    down = subprocess.run(base, env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 1 and json.loads(down.stdout)["checks"][0]["ok"] is False
