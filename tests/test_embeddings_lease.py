"""The indexing lease across real server processes: one indexes; when it dies, another does."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_bus.bus import Bus
from agent_bus.embeddings import missing_default_modules
from agent_bus.models import OutboxItem
from agent_bus.settings import load_settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(missing_default_modules()), reason="the `semantic` extra is not installed"
    ),
]

FAST = {
    "AGENT_BUS_INDEX_LEASE_TTL_SECONDS": "2",
    "AGENT_BUS_INDEX_START_DELAY_SECONDS": "0",
    "AGENT_BUS_EMBED_IDLE_POLL_SECONDS": "0.1",
}


def _server(db: Path, tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "AGENT_BUS_DB": str(db), **FAST}
    # stdin stays open and silent: the server runs (and its lifespan with the worker) until EOF.
    return subprocess.Popen(
        [sys.executable, "-m", "agent_bus"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / f"server-{time.monotonic_ns()}.log", "w"),  # noqa: SIM115
        env=env,
    )


def _state(db: Path) -> tuple[int | None, int, int]:
    """(lease holder pid if alive, queued jobs, embedded messages)."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        row = conn.execute(
            "SELECT pid FROM embedding_leases WHERE name = 'index' AND expires_at > ?",
            (time.time(),),
        ).fetchone()
        queued = conn.execute("SELECT COUNT(*) FROM embedding_jobs").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        done = (
            conn.execute("SELECT COUNT(*) FROM embeddings WHERE instr(id, ':') = 0").fetchone()[0]
            if "embeddings" in tables
            else 0
        )
        return (row[0] if row else None), queued, done
    finally:
        conn.close()


def _wait(predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_only_the_lease_holder_indexes_and_another_server_takes_over_when_it_dies(
    db_path, tmp_path
):
    bus = Bus(load_settings(db=db_path))
    topic, _ = bus.topic_create("lease")
    bus.post(topic.topic_id, "a", [OutboxItem(content_markdown=f"message {i}") for i in range(5)])
    servers = [_server(db_path, tmp_path), _server(db_path, tmp_path)]
    try:
        pids = {s.pid: s for s in servers}
        _wait(lambda: _state(db_path)[2] == 5)
        holders = set()
        for _ in range(15):  # the lease stays with one process while both run
            holders.add(_state(db_path)[0])
            time.sleep(0.1)
        assert len(holders) == 1
        (holder,) = holders
        assert holder in pids

        os.kill(holder, signal.SIGKILL)
        pids[holder].wait(10)
        bus.post(topic.topic_id, "a", [OutboxItem(content_markdown="after the crash")])
        (survivor,) = set(pids) - {holder}
        _wait(lambda: _state(db_path)[0] == survivor, timeout=30)
        _wait(lambda: _state(db_path)[1:] == (0, 6), timeout=60)
        assert pids[survivor].poll() is None
    finally:
        for s in servers:
            if s.poll() is None:
                s.stdin.close()  # EOF: a clean shutdown that hands the lease back
                try:
                    s.wait(15)
                except subprocess.TimeoutExpired:
                    s.kill()
                    s.wait(5)
        bus.close()
    assert _state(db_path)[0] is None
