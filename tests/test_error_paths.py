"""Error codes the docs promise, each provoked for real and seen through a real door.

docs/reference/errors.md lists what each door answers; these tests bring each condition
about (a lock held by another connection, a setting naming no model, a database trigger
that fails, an answer at a terminal prompt, a module that cannot be imported) and read the
code where a user or an agent would: an MCP tool result over stdio, the installed CLI's
stderr and exit status, the web UI's JSON.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_bus.bus import Bus
from agent_bus.models import OutboxItem
from agent_bus.settings import BusSettings, load_settings

from conftest import call, call_error, spawn

AGENT_BUS = str(Path(sys.executable).with_name("agent-bus"))
NO_MODEL = {"AGENT_BUS_EMBEDDING_MODEL": "no-such-embedding-model"}

# A database trigger that refuses some inserts: to agent-bus, a storage failure it did not
# expect (as a full disk or a broken file would be), raised inside its own transaction.
FAULT_TRIGGER = (
    "CREATE TRIGGER test_storage_fault BEFORE INSERT ON messages "
    "WHEN NEW.content_markdown LIKE '%FAULT%' "
    "BEGIN SELECT RAISE(ABORT, 'storage refused the row'); END"
)


def run_cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [AGENT_BUS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        **kw,
    )


def one_error_line(result: subprocess.CompletedProcess, code: str, *, notes: int = 0) -> str:
    """The CLI's promise: exit 1, one `error: CODE: …` line last, no traceback.

    ``notes``: lines the command printed to stderr before it failed (e.g. what it asked).
    """
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == notes + 1 and result.stderr.endswith("\n"), result.stderr
    assert lines[-1].startswith(f"error: {code}: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[-1]


def bodies(db_path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return [r[0] for r in db.execute("SELECT content_markdown FROM messages ORDER BY seq")]


@contextlib.contextmanager
def write_lock_held(db_path: Path) -> Iterator[None]:
    """Another connection holds the write lock (as a long writer would) until the block ends."""
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


@pytest.fixture
def topic_id(db_path: Path) -> str:
    bus = Bus(load_settings(db=db_path))
    try:
        topic, _ = bus.topic_create("errors")
        bus.post(topic.topic_id, "seed", [OutboxItem(content_markdown="kept")])
        return topic.topic_id
    finally:
        bus.close()


def add_fault_trigger(db_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        db.execute(FAULT_TRIGGER)
        db.commit()


def drop_fault_trigger(db_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        db.execute("DROP TRIGGER test_storage_fault")
        db.commit()


# --- MCP over stdio ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_storage_failure_is_internal_error_and_the_server_keeps_serving(db_path, topic_id):
    async with spawn(db_path) as s:
        await call(s, "topic_join", agent_name="alice", topic_id=topic_id)
        add_fault_trigger(db_path)
        err = await call_error(
            s,
            "sync",
            topic_id=topic_id,
            wait_seconds=0,
            outbox=[{"content_markdown": "fine"}, {"content_markdown": "FAULT here"}],
        )
        assert err["error"]["code"] == "INTERNAL_ERROR"
        assert "storage refused the row" in err["error"]["message"]
        assert bodies(db_path) == ["kept"]  # rolled back: not even the first item
        assert (await call(s, "ping"))["ok"] is True
        drop_fault_trigger(db_path)
        again = await call(
            s, "sync", topic_id=topic_id, wait_seconds=0, outbox=[{"content_markdown": "fine"}]
        )
        assert again["sent"][0]["message"]["seq"] == 2
    assert bodies(db_path) == ["kept", "fine"]


@pytest.mark.anyio
async def test_sync_on_an_unknown_topic_is_agent_not_joined(db_path, topic_id):
    async with spawn(db_path) as s:
        err = await call_error(s, "sync", topic_id="no-such-topic", wait_seconds=0)
        assert err["error"]["code"] == "AGENT_NOT_JOINED"
        err = await call_error(
            s,
            "sync",
            topic_id="no-such-topic",
            wait_seconds=0,
            outbox=[{"content_markdown": "lost?"}],
        )
        assert err["error"]["code"] == "AGENT_NOT_JOINED"
    assert bodies(db_path) == ["kept"]


@pytest.mark.anyio
async def test_semantic_search_without_a_usable_model_over_stdio(db_path, topic_id):
    async with spawn(db_path, **NO_MODEL) as s:
        err = await call_error(s, "messages_search", query="kept", mode="semantic")
        assert err["error"]["code"] == "EMBEDDINGS_UNAVAILABLE"
        assert "no-such-embedding-model" in err["error"]["message"]
        # hybrid still answers, from full-text search, and says so
        hybrid = await call(s, "messages_search", query="kept")
        assert hybrid["count"] == 1
        assert [w["code"] for w in hybrid["warnings"]] == ["SEMANTIC_UNAVAILABLE"]


# --- the installed CLI ------------------------------------------------------------------------


def test_cli_reports_db_busy_when_a_writer_keeps_the_lock(db_path, topic_id):
    with write_lock_held(db_path):
        result = run_cli(
            "send",
            "errors",
            "--as",
            "alice",
            "not now",
            "--db",
            str(db_path),
            env={"AGENT_BUS_BUSY_TIMEOUT_MS": "300"},
        )
    one_error_line(result, "DB_BUSY")
    assert bodies(db_path) == ["kept"]
    assert run_cli("send", "errors", "--as", "alice", "now", "--db", str(db_path)).returncode == 0
    assert bodies(db_path) == ["kept", "now"]


def test_cli_reports_a_storage_failure_as_internal_error_in_one_line(db_path, topic_id):
    add_fault_trigger(db_path)
    result = run_cli("send", "errors", "--as", "alice", "FAULT here", "--db", str(db_path))
    line = one_error_line(result, "INTERNAL_ERROR")
    assert "storage refused the row" in line
    assert bodies(db_path) == ["kept"]


def test_cli_semantic_search_without_a_usable_model(db_path, topic_id):
    result = run_cli("search", "kept", "--mode", "semantic", "--db", str(db_path), env=NO_MODEL)
    assert "no-such-embedding-model" in one_error_line(result, "EMBEDDINGS_UNAVAILABLE")


def test_cli_web_without_datasette_importable_is_unavailable(db_path, topic_id):
    # A broken installation, reproduced the way Python itself spells "not installed": an
    # import of datasette raises ModuleNotFoundError (a None entry in sys.modules).
    code = (
        "import sys; sys.modules['datasette'] = None; "
        "from agent_bus.__main__ import main; "
        f"sys.argv = ['agent-bus', 'web', '--no-open', '--port', '0', '--db', {str(db_path)!r}]; "
        "main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    line = one_error_line(result, "UNAVAILABLE")
    assert "datasette" in line


def _answer_delete_prompt(db_path: Path, keys: bytes) -> subprocess.CompletedProcess:
    """`topics delete` with a real terminal on stdin, typing ``keys`` at its question."""
    primary, secondary = os.openpty()
    try:
        proc = subprocess.Popen(
            [AGENT_BUS, "topics", "delete", "errors", "--db", str(db_path)],
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(secondary)
        secondary = -1
        os.write(primary, keys)  # the terminal buffers it until the prompt reads
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        os.close(primary)
        if secondary != -1:
            os.close(secondary)


def _topic_names(db_path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        return [r[0] for r in db.execute("SELECT name FROM topics")]


@pytest.mark.parametrize(("keys", "meaning"), [(b"n\n", "no"), (b"\x04", "Ctrl-D")])
def test_cli_answering_no_at_a_confirmation_is_aborted_and_changes_nothing(
    db_path, topic_id, keys, meaning
):
    result = _answer_delete_prompt(db_path, keys)
    assert "Delete it?" in result.stdout, meaning  # the question really was asked
    one_error_line(result, "ABORTED", notes=1)  # the note says what would be deleted
    assert _topic_names(db_path) == ["errors"] and bodies(db_path) == ["kept"]


def test_cli_answering_yes_at_the_confirmation_deletes(db_path, topic_id):
    result = _answer_delete_prompt(db_path, b"y\n")
    assert result.returncode == 0, result.stderr
    assert _topic_names(db_path) == []


# --- the web UI (Datasette's client) -------------------------------------------------------------


@pytest.fixture
async def web(db_path: Path, topic_id: str):
    from agent_bus_datasette.state import close

    from agent_bus.web import build_datasette

    instance = build_datasette(BusSettings(db=db_path))
    await instance.invoke_startup()
    try:
        yield instance
    finally:
        close(instance)


@pytest.mark.anyio
async def test_web_semantic_search_without_a_usable_model_is_503_json(web, monkeypatch):
    monkeypatch.setenv("AGENT_BUS_EMBEDDING_MODEL", NO_MODEL["AGENT_BUS_EMBEDDING_MODEL"])
    response = await web.client.get(
        "/-/agent-bus/agent_bus/search.json", params={"q": "kept", "mode": "semantic"}
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "EMBEDDINGS_UNAVAILABLE"
    assert "no-such-embedding-model" in error["message"]
    page = await web.client.get(
        "/-/agent-bus/agent_bus/search", params={"q": "kept", "mode": "semantic"}
    )
    assert page.status_code == 503 and "no-such-embedding-model" in page.text


@pytest.mark.anyio
async def test_web_names_several_closed_topics_topic_ambiguous(web, db_path):
    bus = Bus(load_settings(db=db_path))
    try:
        ids = []
        for _ in range(2):
            topic, _ = bus.topic_create("twin", mode="new")
            bus.topic_close(topic.topic_id)
            ids.append(topic.topic_id)
    finally:
        bus.close()
    for path in ("topics/twin.json", "topics/twin/poll.json", "search.json?q=kept&topic=twin"):
        response = await web.client.get(f"/-/agent-bus/agent_bus/{path}")
        assert response.status_code == 400, path
        error = response.json()["error"]
        assert error["code"] == "TOPIC_AMBIGUOUS", path
        assert all(i in error["message"] for i in ids), error
    page = await web.client.get("/-/agent-bus/agent_bus/topics/twin")
    assert all(i in page.text for i in ids)


@pytest.mark.anyio
async def test_web_post_hitting_a_storage_failure_is_internal_error(web, db_path, topic_id):
    root = f"/-/agent-bus/agent_bus/topics/{topic_id}"
    page = await web.client.get(root)
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
    assert token, "the thread page has a write form"
    cookies = {"ds_csrftoken": page.cookies.get("ds_csrftoken")}
    add_fault_trigger(db_path)
    form = {"csrftoken": token.group(1), "sender": "alice", "content_markdown": "FAULT here"}
    response = await web.client.post(f"{root}/post.json", data=form, cookies=cookies)
    assert response.status_code == 500
    error = response.json()["error"]  # our envelope, not a framework's traceback page
    assert error["code"] == "INTERNAL_ERROR" and "storage refused the row" in error["message"]
    assert bodies(db_path) == ["kept"]
    page = await web.client.post(f"{root}/post", data=form, cookies=cookies)
    assert page.status_code == 500 and "INTERNAL_ERROR" in page.text
    assert "Traceback" not in page.text and bodies(db_path) == ["kept"]
