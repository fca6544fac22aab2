"""A bus whose servers have all exited still gets its queued messages embedded (issue 15).

After `make run` the demo's servers are gone; whoever opens the bus for semantic search next
(`agent-bus search`, the web UI) starts the embedding service, as an MCP server would.
"""

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
from agent_bus.embeddings import client, missing_default_modules
from agent_bus.models import OutboxItem
from agent_bus.settings import load_settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(missing_default_modules()), reason="the `semantic` extra is not installed"
    ),
    pytest.mark.skipif(not client.supported(), reason="no Unix domain sockets here"),
]

ENV = {
    "AGENT_BUS_EMBEDDINGS_AUTOINDEX": "1",
    "AGENT_BUS_EMBED_IDLE_POLL_SECONDS": "0.1",
    "AGENT_BUS_EMBED_SERVICE_IDLE_SECONDS": "20",
}


@pytest.fixture
def queued_bus(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bus with messages queued for embedding and no process left to embed them."""
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    bus = Bus(load_settings(db=db_path))
    try:
        bus.ensure_ready()
        topic, _ = bus.topic_create("demo")
        bus.post(
            topic.topic_id,
            "reviewer",
            [OutboxItem(content_markdown="the retry loop never backs off")],
        )
    finally:
        bus.close()
    assert _embedded(db_path) == 0 and client.status(db_path) is None
    yield db_path
    info = client.status(db_path)
    if info is not None:
        os.kill(info["pid"], signal.SIGTERM)


def _embedded(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=10)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "embeddings" not in tables:
            return 0
        return conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    finally:
        conn.close()


def _wait(predicate, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def _cli(db: Path, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "AGENT_BUS_DB": str(db), **ENV}
    return subprocess.Popen(
        [sys.executable, "-m", "agent_bus", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def test_a_cli_search_starts_the_embedding_service_for_queued_messages(queued_bus: Path) -> None:
    proc = _cli(queued_bus, "search", "backoff", "--mode", "semantic", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"EMBEDDINGS_NOT_INDEXED" in out  # nothing yet: the service was only just started
    _wait(lambda: _embedded(queued_bus) > 0)


def test_opening_the_web_ui_starts_the_embedding_service(queued_bus: Path) -> None:
    proc = _cli(queued_bus, "web", "--port", "0", "--no-open")
    try:
        _wait(lambda: _embedded(queued_bus) > 0)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_a_full_text_search_starts_nothing(queued_bus: Path) -> None:
    proc = _cli(queued_bus, "search", "backoff", "--mode", "fts")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert client.status(queued_bus) is None
