"""`agent-bus hook`: real servers write, the hook runs as this test's own child.

The test process plays the coding client: it spawns `agent-bus` servers over
stdio (they record their session bindings) and then runs the hook command the
way Claude Code, Codex or Gemini CLI would, with the documented stdin JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

from tests.conftest import call, server_params, spawn

pytestmark = pytest.mark.anyio

SESSION_VARS = ("CLAUDE_CODE_SESSION_ID", "GEMINI_SESSION_ID", "AGENT_BUS_AGENT", "AGENT_BUS_TOPIC")


@pytest.fixture(autouse=True)
def _no_client_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may themselves run inside a coding client: forget its session."""
    for name in SESSION_VARS:
        monkeypatch.delenv(name, raising=False)


def hook_env(db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SESSION_VARS}
    env["AGENT_BUS_DB"] = str(db)
    env.update(extra)
    return env


def run_hook(
    db: Path,
    client: str,
    event: str,
    payload: Any,
    *args: str,
    cwd: Path | None = None,
    via_other_client: bool = False,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run `agent-bus hook` as a child of this process (or of a stand-in for another client)."""
    cmd = [sys.executable, "-m", "agent_bus", "hook", client, event, *args]
    if via_other_client:
        relay = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"
        cmd = [sys.executable, "-c", relay, *cmd]
    stdin = payload if isinstance(payload, str) else json.dumps(payload)
    return subprocess.run(
        cmd,
        input=stdin,
        capture_output=True,
        text=True,
        env=hook_env(db, **env),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def claude_stop(session_id: str = "sess-r", active: bool = False, cwd: str = "/") -> dict[str, Any]:
    return {
        "session_id": session_id,
        "transcript_path": "/tmp/transcript.jsonl",
        "cwd": cwd,
        "hook_event_name": "Stop",
        "permission_mode": "default",
        "stop_hook_active": active,
        "last_assistant_message": "Done.",
    }


@contextlib.asynccontextmanager
async def spawn_in(db: Path, cwd: Path, **env: str) -> AsyncIterator[ClientSession]:
    params = server_params(db, **env).model_copy(update={"cwd": str(cwd)})
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def review_topic(rev: ClientSession, imp: ClientSession, name: str = "review-42") -> str:
    topic = (await call(rev, "topic_create", name=name))["topic_id"]
    await call(rev, "topic_join", agent_name="reviewer", topic_id=topic)
    await call(imp, "topic_join", agent_name="implementer", topic_id=topic)
    return topic


async def post(session: ClientSession, topic: str, *bodies: str) -> None:
    outbox = [{"content_markdown": body} for body in bodies]
    await call(session, "sync", topic_id=topic, outbox=outbox, wait_seconds=0)


async def test_claude_stop_blocks_naming_topic_sender_and_count_until_the_reviewer_syncs(
    db_path: Path,
) -> None:
    async with (
        spawn(db_path, CLAUDE_CODE_SESSION_ID="sess-r") as rev,
        spawn(db_path, CLAUDE_CODE_SESSION_ID="sess-i") as imp,
    ):
        topic = await review_topic(rev, imp)
        await post(imp, topic, "Ready for review: `src/app.py`\nDetails below.", "Also see tests.")

        done = run_hook(
            db_path, "claude-code", "stop", claude_stop(), CLAUDE_CODE_SESSION_ID="sess-r"
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["decision"] == "block"
        reason = answer["reason"]
        assert "2 unread messages on topic 'review-42'" in reason
        assert "from implementer" in reason and "as 'reviewer'" in reason
        assert "Ready for review: `src/app.py`" in reason and "Details below" not in reason
        assert f'sync(topic_id="{topic}", agent_name="reviewer"' in reason

        # The implementer's session has nothing unread: its own messages never count.
        other = run_hook(
            db_path, "claude-code", "stop", claude_stop("sess-i"), CLAUDE_CODE_SESSION_ID="sess-i"
        )
        assert (other.returncode, other.stdout) == (0, "")

        await call(rev, "sync", topic_id=topic, wait_seconds=0)
        after = run_hook(
            db_path, "claude-code", "stop", claude_stop(), CLAUDE_CODE_SESSION_ID="sess-r"
        )
        assert (after.returncode, after.stdout) == (0, "")


async def test_context_events_add_the_digest_for_each_client_shape(db_path: Path) -> None:
    async with spawn(db_path) as rev, spawn(db_path) as imp:
        topic = await review_topic(rev, imp, "ctx-topic")
        await post(imp, topic, "Please look at the retry policy")
        base = {"session_id": "s1", "transcript_path": None, "cwd": "/", "model": "m"}
        shapes = [
            ("claude-code", "session-start", "SessionStart", {"source": "startup"}),
            ("claude-code", "user-prompt-submit", "UserPromptSubmit", {"prompt": "hi"}),
            ("codex", "session-start", "SessionStart", {"source": "startup"}),
            ("codex", "user-prompt-submit", "UserPromptSubmit", {"turn_id": "t1", "prompt": "hi"}),
            ("gemini", "session-start", "SessionStart", {"source": "startup"}),
            ("gemini", "before-agent", "BeforeAgent", {"prompt": "hi"}),
        ]
        for client, event, client_event, extra in shapes:
            payload = {**base, "hook_event_name": client_event, **extra}
            done = run_hook(db_path, client, event, payload)
            assert done.returncode == 0, done.stderr
            out = json.loads(done.stdout)["hookSpecificOutput"]
            assert out["hookEventName"] == client_event, (client, event)
            context = out["additionalContext"]
            assert "1 unread message on topic 'ctx-topic'" in context
            assert "#1 implementer [message]: Please look at the retry policy" in context


async def test_codex_stop_blocks_and_gemini_after_agent_denies(db_path: Path) -> None:
    async with spawn(db_path) as rev, spawn(db_path) as imp:
        topic = await review_topic(rev, imp)
        await post(imp, topic, "LGTM?")
        codex = {
            "session_id": "c1", "transcript_path": None, "cwd": "/", "hook_event_name": "Stop",
            "model": "gpt", "turn_id": "t", "stop_hook_active": False,
            "last_assistant_message": "ok",
        }  # fmt: skip
        done = run_hook(db_path, "codex", "stop", codex)
        assert json.loads(done.stdout)["decision"] == "block"
        gemini = {
            "session_id": "g1", "transcript_path": "/t.json", "cwd": "/",
            "timestamp": "2026-12-02T00:00:00Z", "hook_event_name": "AfterAgent",
            "prompt": "p", "prompt_response": "r", "stop_hook_active": False,
        }  # fmt: skip
        done = run_hook(db_path, "gemini", "after-agent", gemini)
        answer = json.loads(done.stdout)
        assert answer["decision"] == "deny" and "implementer" in answer["reason"]


async def test_loop_guard_stops_blocking_after_max_blocks_until_a_new_message(
    db_path: Path,
) -> None:
    async with spawn(db_path) as rev, spawn(db_path) as imp:
        topic = await review_topic(rev, imp)
        await post(imp, topic, "first")
        decisions = []
        for active in (False, True, True, True):
            done = run_hook(
                db_path,
                "claude-code",
                "stop",
                claude_stop(active=active),
                AGENT_BUS_HOOK_MAX_BLOCKS="2",
            )
            decisions.append(done.stdout != "")
        assert decisions == [True, True, False, False]
        # A new message restarts the count; so does a stop the user's own turn caused.
        await post(imp, topic, "second")
        done = run_hook(
            db_path, "claude-code", "stop", claude_stop(active=True), AGENT_BUS_HOOK_MAX_BLOCKS="2"
        )
        assert json.loads(done.stdout)["decision"] == "block"
        done = run_hook(
            db_path, "claude-code", "stop", claude_stop(active=False), AGENT_BUS_HOOK_MAX_BLOCKS="0"
        )
        assert done.stdout == ""
        log = (db_path.parent / "hooks.log").read_text()
        assert "loop guard" in log


async def test_a_hook_of_another_client_sees_nothing_but_cwd_fallback_finds_the_one_server(
    db_path: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    async with spawn_in(db_path, project) as rev, spawn(db_path) as imp:
        topic = await review_topic(rev, imp)
        await post(imp, topic, "hello from the implementer")
        # Same client process as the servers: found by process ancestry.
        done = run_hook(db_path, "claude-code", "stop", claude_stop(cwd="/"))
        assert "hello from the implementer" in json.loads(done.stdout)["reason"]
        # Another client, elsewhere: neither ancestry nor cwd matches.
        done = run_hook(db_path, "claude-code", "stop", claude_stop(cwd="/"), via_other_client=True)
        assert (done.returncode, done.stdout) == (0, "")
        # Another client in the project directory: exactly one live server there.
        done = run_hook(
            db_path, "claude-code", "stop", claude_stop(cwd=str(project)), via_other_client=True
        )
        assert "as 'reviewer'" in json.loads(done.stdout)["reason"]
        # `hooks status` shows both live bindings, with the client's initialize info.
        shown = subprocess.run(
            [sys.executable, "-m", "agent_bus", "hooks", "status", "--json"],
            capture_output=True, text=True, env=hook_env(db_path), check=True, timeout=60,
        )  # fmt: skip
        bindings = json.loads(shown.stdout)["bindings"]
        assert {(b["agent_name"], b["cwd"]) for b in bindings} == {
            ("reviewer", str(project)),
            ("implementer", os.getcwd()),
        }
        assert {b["client_pid"] for b in bindings} == {os.getpid()}
        assert all(b["client_name"] == "mcp" for b in bindings)


async def test_agent_and_topic_overrides_pick_the_identity(db_path: Path) -> None:
    async with spawn(db_path) as rev, spawn(db_path) as imp:
        topic = await review_topic(rev, imp, "override-topic")
        await post(rev, topic, "question for the implementer")
        done = run_hook(
            db_path, "gemini", "after-agent", {"stop_hook_active": False},
            "--agent", "implementer", "--topic", "override-topic", via_other_client=True,
        )  # fmt: skip
        assert "as 'implementer'" in json.loads(done.stdout)["reason"]
        done = run_hook(
            db_path, "claude-code", "user-prompt-submit", {"prompt": "x"},
            via_other_client=True, AGENT_BUS_AGENT="implementer",
        )  # fmt: skip
        assert "question for the implementer" in done.stdout


DEAD_CLIENT = textwrap.dedent(
    """
    import anyio, sys
    from pathlib import Path
    from tests.conftest import call, spawn

    async def main():
        async with spawn(Path(sys.argv[1])) as s:
            await call(s, "topic_join", agent_name="ghost", topic_id=sys.argv[2])
            await call(s, "sync", topic_id=sys.argv[2], wait_seconds=0)

    anyio.run(main)
    """
)


async def test_a_dead_clients_binding_is_ignored_and_swept(db_path: Path, tmp_path: Path) -> None:
    ghost_dir = tmp_path / "ghost"
    ghost_dir.mkdir()
    repo = str(Path(__file__).resolve().parent.parent)
    async with spawn(db_path) as rev, spawn(db_path) as imp:
        topic = await review_topic(rev, imp)
        # A client that joins as "ghost" through its own server (cwd ghost_dir), then exits.
        subprocess.run(
            [sys.executable, "-c", DEAD_CLIENT, str(db_path), topic],
            cwd=ghost_dir,
            env=hook_env(db_path, PYTHONPATH=repo),
            check=True,
            timeout=120,
        )
        await post(imp, topic, "anyone there?")
        with sqlite3.connect(db_path) as conn:
            ghosts = conn.execute("SELECT COUNT(*) FROM session_bindings WHERE agent_name='ghost'")
            assert ghosts.fetchone()[0] == 1
        # The ghost has unread mail (the override finds it) ...
        stop = claude_stop(cwd=str(ghost_dir))
        done = run_hook(db_path, "claude-code", "stop", stop, "--agent", "ghost")
        assert "as 'ghost'" in json.loads(done.stdout)["reason"]
        # ... but its binding, the only one with that cwd, belongs to a client that is gone.
        done = run_hook(db_path, "codex", "stop", stop, via_other_client=True)
        assert (done.returncode, done.stdout) == (0, "")
        # The next server that records a binding sweeps it.
        async with spawn(db_path) as late:
            await call(late, "topic_join", agent_name="latecomer", topic_id=topic)
        with sqlite3.connect(db_path) as conn:
            ghosts = conn.execute("SELECT COUNT(*) FROM session_bindings WHERE agent_name='ghost'")
            assert ghosts.fetchone()[0] == 0


@pytest.mark.parametrize(
    "stdin", ["not json", "[1, 2]", '{"stop_hook_active": fals', "\x00\xff garbage"]
)
async def test_garbage_stdin_exits_0_silently_and_logs_one_line(db_path: Path, stdin: str) -> None:
    async with spawn(db_path) as rev, spawn(db_path) as imp:
        topic = await review_topic(rev, imp)
        await post(imp, topic, "unread")
    done = run_hook(db_path, "claude-code", "stop", stdin, "--agent", "reviewer", "--topic", topic)
    assert (done.returncode, done.stdout) == (0, "")
    lines = (db_path.parent / "hooks.log").read_text().splitlines()
    assert len(lines) == 1 and "claude-code stop" in lines[0]


def test_missing_database_unknown_client_or_event_exit_0_silently(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "bus.sqlite"
    for client, event in [("claude-code", "stop"), ("cursor", "stop"), ("gemini", "stop")]:
        done = run_hook(missing, client, event, claude_stop())
        assert (done.returncode, done.stdout) == (0, "")
    assert not missing.parent.exists()  # a hook never creates a bus


def test_unknown_event_and_corrupt_database_are_logged(tmp_path: Path) -> None:
    db = tmp_path / "bus" / "agent_bus.sqlite"
    db.parent.mkdir()
    db.write_bytes(b"this is not a sqlite database" * 100)
    for client, event in [("claude-code", "stop"), ("codex", "after-agent")]:
        done = run_hook(db, client, event, claude_stop())
        assert (done.returncode, done.stdout) == (0, "")
    log = (db.parent / "hooks.log").read_text().splitlines()
    assert len(log) == 2 and "DatabaseError" in log[0] and "unknown event" in log[1]


async def test_locked_database_exits_0_silently(db_path: Path) -> None:
    async with spawn(db_path) as rev, spawn(db_path) as imp:
        topic = await review_topic(rev, imp)
        await post(imp, topic, "unread")
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE meta SET value = value WHERE key = 'schema_version'")
        done = run_hook(db_path, "claude-code", "stop", claude_stop(), "--agent", "reviewer")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (done.returncode, done.stdout) == (0, "")
    assert "locked" in (db_path.parent / "hooks.log").read_text()


def start_wait(db: Path, session: str) -> subprocess.Popen[str]:
    """`hook claude-code wait` in the background, as Claude Code runs an asyncRewake hook."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_bus", "hook", "claude-code", "wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=hook_env(db, CLAUDE_CODE_SESSION_ID=session, AGENT_BUS_HOOK_WAIT_SECONDS="120"),
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(claude_stop(session)))
    proc.stdin.close()
    return proc


def state_of(db: Path, key: str) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT signature FROM hook_state WHERE session_key = ?", (key,))
        found = row.fetchone()
    return None if found is None else found[0]


async def wait_until(predicate: Any, seconds: float = 60) -> None:

    with anyio.fail_after(seconds):
        while not predicate():
            await anyio.sleep(0.05)


async def test_wait_wakes_claude_with_exit_2_when_a_new_message_arrives(db_path: Path) -> None:
    async with (
        spawn(db_path, CLAUDE_CODE_SESSION_ID="sess-r") as rev,
        spawn(db_path, CLAUDE_CODE_SESSION_ID="sess-i") as imp,
    ):
        topic = await review_topic(rev, imp)
        await post(imp, topic, "already there when the wait starts")
        first = start_wait(db_path, "sess-r")
        second = None
        try:
            key = "wait:claude-code:sess-r"
            await wait_until(lambda: state_of(db_path, key) == str(first.pid))
            # A newer waiter of the same session supersedes the first: it exits 0, silently.
            second = start_wait(db_path, "sess-r")
            await wait_until(lambda: state_of(db_path, key) == str(second.pid))
            await post(imp, topic, "Fixed F1, please re-review")

            rc2 = await anyio.to_thread.run_sync(lambda: second.wait(timeout=60))
            rc1 = await anyio.to_thread.run_sync(lambda: first.wait(timeout=60))
            out2, err2 = second.stdout.read(), second.stderr.read()  # type: ignore[union-attr]
            out1, err1 = first.stdout.read(), first.stderr.read()  # type: ignore[union-attr]
            assert (rc2, out2) == (2, "")
            assert "Fixed F1, please re-review" in err2 and "as 'reviewer'" in err2
            assert (rc1, out1, err1) == (0, "", "")
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()


async def test_counts_stop_past_100_and_say_so(db_path: Path) -> None:
    async with spawn(db_path) as rev, spawn(db_path) as imp:
        topic = await review_topic(rev, imp, "busy-topic")
        for batch in range(3):
            await post(imp, topic, *(f"note {batch}-{i}" for i in range(40)))
        done = run_hook(db_path, "codex", "user-prompt-submit", {"prompt": "x"})
        context = json.loads(done.stdout)["hookSpecificOutput"]["additionalContext"]
        assert "100+ unread messages on topic 'busy-topic'" in context
        assert "#120 implementer [message]: note 2-39" in context
        assert "… and many more" in context


async def test_agents_over_http_bind_no_client_session(db_path: Path) -> None:
    from http_server import http_server, http_session

    from agent_bus.bus import Bus
    from agent_bus.service import access
    from agent_bus.settings import load_settings

    bus = Bus(load_settings(db=db_path))
    try:
        bus.ensure_ready()
        _, token = access.create(bus, "remote")
    finally:
        bus.close()
    async with spawn(db_path) as local:
        topic = (await call(local, "topic_create", name="remote-topic"))["topic_id"]
        await call(local, "topic_join", agent_name="local-agent", topic_id=topic)
    with http_server(db_path) as srv:
        async with http_session(srv.url, token) as remote:
            await call(remote, "topic_join", agent_name="remote-agent", topic_id=topic)
            await call(remote, "sync", topic_id=topic, wait_seconds=0)
    with sqlite3.connect(db_path) as conn:
        names = [r[0] for r in conn.execute("SELECT agent_name FROM session_bindings")]
    assert names == ["local-agent"]
