"""The installed `agent-bus` CLI as a real process beside real MCP servers and writers."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest

from agent_bus.bus import Bus
from agent_bus.settings import load_settings

from conftest import call, spawn

AGENT_BUS = str(Path(sys.executable).with_name("agent-bus"))


def _ctrl_c_as_on_a_terminal() -> None:
    """In the child: SIGINT back to its default. A test run started in the background by a
    shell (`pytest &`, a CI step) inherits SIGINT *ignored*, and Python then never turns
    Ctrl-C into KeyboardInterrupt: the watcher would wait forever for a signal it ignores."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _lines(proc: subprocess.Popen) -> queue.Queue:
    """Lines of the process's stdout, read by a thread (None at EOF)."""
    out: queue.Queue = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.put(line)
        out.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return out


async def _next_line(lines: queue.Queue, timeout: float = 60) -> str:
    line = await anyio.to_thread.run_sync(lambda: lines.get(timeout=timeout))
    assert line is not None, "watch exited early"
    return line


@pytest.mark.anyio
async def test_watch_follow_prints_a_message_posted_by_an_mcp_server_and_exits_0_on_ctrl_c(
    db_path: Path,
) -> None:
    async with spawn(db_path) as session:
        topic = await call(session, "topic_create", name="live")
        tid = topic["topic_id"]
        await call(session, "topic_join", topic_id=tid, agent_name="agent-a")
        await call(
            session, "sync", topic_id=tid, outbox=[{"content_markdown": "before"}], wait_seconds=0
        )

        proc = subprocess.Popen(
            [
                AGENT_BUS,
                "topics",
                "watch",
                "live",
                "--follow",
                "--json",
                "--since",
                "0",
                "--db",
                str(db_path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_ctrl_c_as_on_a_terminal,
        )
        try:
            lines = _lines(proc)
            assert json.loads(await _next_line(lines))["content_markdown"] == "before"

            await call(
                session,
                "sync",
                topic_id=tid,
                outbox=[{"content_markdown": "while you **watch**", "message_type": "review"}],
                wait_seconds=0,
            )
            # How fast it shows is a benchmark figure; here only that it shows (liveness).
            message = json.loads(await _next_line(lines, timeout=60))
            assert message["seq"] == 2 and message["sender"] == "agent-a"
            assert message["message_type"] == "review"

            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
            assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_backup_taken_during_a_write_stream_opens_and_passes_integrity_check(
    db_path: Path, tmp_path: Path
) -> None:
    bus = Bus(load_settings(db=db_path))
    topic, _ = bus.topic_create("busy")
    body = "x" * 400 + " searchable words"
    for _ in range(40):
        bus.post(topic.topic_id, "seed", bus.check_outbox([{"content_markdown": body}] * 50))
    bus.close()

    stop = threading.Event()
    written = [0]
    errors: list[BaseException] = []

    def writer() -> None:
        w = Bus(load_settings(db=db_path))
        try:
            while not stop.is_set():
                w.post(topic.topic_id, "writer", w.check_outbox([{"content_markdown": body}]))
                written[0] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            w.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while written[0] < 5:  # until the stream is running
            assert time.monotonic() < deadline and not errors, errors
            time.sleep(0.01)
        copy = tmp_path / "backup.sqlite"
        result = subprocess.run(
            [AGENT_BUS, "db", "backup", str(copy), "--db", str(db_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop.set()
        thread.join(timeout=60)
    # How many writes land while the backup runs depends on the scheduler; that writers
    # are not held up by a backup is shown deterministically by the test below.
    assert result.returncode == 0, result.stderr
    assert not errors, errors

    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        n = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        top, nxt = conn.execute(
            "SELECT MAX(seq), (SELECT next_seq FROM topic_seq) FROM messages"
        ).fetchone()
        conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)")
    assert 2000 <= n <= 2000 + written[0]
    assert top == n and nxt == n + 1  # a consistent snapshot: no gaps, counter agrees
    check = subprocess.run(
        [AGENT_BUS, "db", "check", "--db", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_backup_needs_no_write_lock_and_copies_only_committed_data(
    db_path: Path, tmp_path: Path
) -> None:
    bus = Bus(load_settings(db=db_path))
    topic, _ = bus.topic_create("held")
    bus.post(topic.topic_id, "seed", bus.check_outbox([{"content_markdown": "committed"}]))
    bus.close()
    writer = sqlite3.connect(db_path, isolation_level=None)
    try:
        # A writer mid-transaction holds the write lock for the whole backup.
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO meta (key, value) VALUES ('uncommitted', 'x')")
        copy = tmp_path / "backup.sqlite"
        result = subprocess.run(
            [AGENT_BUS, "db", "backup", str(copy), "--db", str(db_path)],
            capture_output=True,
            text=True,
            timeout=120,
            # Were the write lock needed, this would fail with DB_BUSY after 1 s.
            env={**os.environ, "AGENT_BUS_BUSY_TIMEOUT_MS": "1000"},
        )
        assert result.returncode == 0, result.stderr
        writer.execute("COMMIT")  # the writer was never refused either
    finally:
        writer.close()
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'uncommitted'").fetchone() is None
        assert [r[0] for r in conn.execute("SELECT content_markdown FROM messages")] == [
            "committed"
        ]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["topics", "show", "nope"], "TOPIC_NOT_FOUND"),
        (["export", "nope", "--format", "xml"], "INVALID_ARGUMENT"),
        (["import", "/no/such/file.jsonl"], "INVALID_ARGUMENT"),
    ],
)
def test_the_installed_command_reports_bad_input_in_one_line_with_exit_1(
    db_path: Path, args: list[str], code: str
) -> None:
    result = subprocess.run(
        [AGENT_BUS, *args, "--db", str(db_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {code}: ")
    assert result.stderr.count("\n") == 1 and result.stdout == ""
