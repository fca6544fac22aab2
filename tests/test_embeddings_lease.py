"""The embedding service across real processes: servers start it, it alone holds the model.

One service per database holds the indexing lease and embeds queries over its socket; when
it is killed, a server starts another that takes the lease over after the TTL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent_bus.bus import Bus
from agent_bus.embeddings import DEFAULT_MODEL_ID, client, missing_default_modules
from agent_bus.embeddings import service as emb
from agent_bus.embeddings.models import get_embedder
from agent_bus.models import OutboxItem
from agent_bus.settings import load_settings

from rawmcp import RawServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(missing_default_modules()), reason="the `semantic` extra is not installed"
    ),
    pytest.mark.skipif(not client.supported(), reason="no Unix domain sockets here"),
]

FAST = {
    "AGENT_BUS_EMBEDDINGS_AUTOINDEX": "1",
    "AGENT_BUS_INDEX_LEASE_TTL_SECONDS": "2",
    "AGENT_BUS_INDEX_START_DELAY_SECONDS": "0",
    "AGENT_BUS_EMBED_IDLE_POLL_SECONDS": "0.1",
    "AGENT_BUS_EMBED_SERVICE_CHECK_SECONDS": "0.2",
    "AGENT_BUS_EMBED_SERVICE_IDLE_SECONDS": "20",
}


@pytest.fixture
def fast_env(monkeypatch):
    for key, value in FAST.items():
        monkeypatch.setenv(key, value)


def _server(db: Path, tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "AGENT_BUS_DB": str(db), **FAST}
    # stdin stays open and silent: the server runs (and its lifespan's check) until EOF.
    with open(tmp / f"server-{time.monotonic_ns()}.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "agent_bus"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=log,  # the child has its own descriptor; ours closes here
            env=env,
        )


def _lease_holder(db: Path) -> int | None:
    """The pid recorded in the lease row, expired or not (who holds it, not how recently)."""
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        row = conn.execute("SELECT pid FROM embedding_leases WHERE name = 'index'").fetchone()
    return row[0] if row else None


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _uses_onnxruntime(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as f:
        return "onnxruntime" in f.read()


def _stop_service(db: Path) -> None:
    info = client.status(db)
    if info is not None:
        os.kill(info["pid"], signal.SIGTERM)
        _wait(lambda: not _alive(info["pid"]), timeout=15)


def test_servers_start_one_service_and_a_new_one_takes_over_when_it_is_killed(db_path, tmp_path):
    bus = Bus(load_settings(db=db_path))
    topic, _ = bus.topic_create("lease")
    bus.post(topic.topic_id, "a", [OutboxItem(content_markdown=f"message {i}") for i in range(5)])
    servers = [_server(db_path, tmp_path), _server(db_path, tmp_path)]
    try:
        pids = {s.pid for s in servers}
        _wait(lambda: _state(db_path)[2] == 5)
        # One service holds the lease while both servers run. Its expiry is not sampled: a
        # heartbeat delayed on a loaded machine is not a second holder.
        holder = _lease_holder(db_path)
        assert holder is not None and holder not in pids
        assert holder == client.status(db_path)["pid"]
        for _ in range(10):
            assert _lease_holder(db_path) == holder
            time.sleep(0.1)
        for pid in pids:  # the model lives in the service only
            assert not _uses_onnxruntime(pid)
        assert _uses_onnxruntime(holder)

        os.kill(holder, signal.SIGKILL)
        _wait(lambda: not _alive(holder), timeout=10)
        bus.post(topic.topic_id, "a", [OutboxItem(content_markdown="after the crash")])
        successor = _wait(lambda: (p := _state(db_path)[0]) not in (None, holder) and p, 30)
        assert successor not in pids
        _wait(lambda: _state(db_path)[1:] == (0, 6), timeout=60)
        assert all(s.poll() is None for s in servers)
    finally:
        for s in servers:
            if s.poll() is None:
                s.stdin.close()
                try:
                    s.wait(15)
                except subprocess.TimeoutExpired:
                    s.kill()
                    s.wait(5)
        _stop_service(db_path)
        bus.close()
    assert _state(db_path)[0] is None  # handed back on SIGTERM
    assert not os.path.exists(client.socket_path(db_path))


def test_a_stdio_server_answers_hybrid_search_without_loading_the_model(db_path, fast_env):
    bus = Bus(load_settings(db=db_path))
    topic, _ = bus.topic_create("rss")
    bus.post(
        topic.topic_id,
        "a",
        [
            OutboxItem(content_markdown="the pizza dough needs flour, water and yeast"),
            OutboxItem(content_markdown="retry_backoff_ms defaults to 250"),
        ],
    )
    server = RawServer(db_path, **FAST)
    try:
        _wait(lambda: _state(db_path)[2] == 2)
        reply = server.tool("messages_search", query="baking bread at home", mode="hybrid")
        data = reply["structuredContent"]
        assert "pizza" in data["results"][0]["snippet"]
        assert not data.get("warnings")
        semantic = server.tool("messages_search", query="italian food", mode="semantic")
        assert "pizza" in semantic["structuredContent"]["results"][0]["snippet"]
        assert not _uses_onnxruntime(server.proc.pid)
        service = client.status(db_path)
        assert service["queries"] >= 2 and _uses_onnxruntime(service["pid"])
    finally:
        server.close()
        _stop_service(db_path)
        bus.close()


def test_query_vectors_from_the_service_equal_in_process_ones(db_path, fast_env):
    bus = Bus(load_settings(db=db_path))
    try:
        bus.topic_create("v")
        texts = ["how do I configure retries?", "Pizza dough: flour, water, yeast."]
        remote = client.embed_via_service(bus.settings, DEFAULT_MODEL_ID, texts)
        local = get_embedder(DEFAULT_MODEL_ID, explicit=False).embed(texts)
        assert remote is not None and remote.dtype == local.dtype and remote.shape == (2, 384)
        assert (remote == local).all()
        info = emb.status(bus)["service"]
        assert info["running"] and info["pid"] != os.getpid() and info["queries"] == 1
        # A second service for the same database exits at once, quietly.
        second = subprocess.run(
            [sys.executable, "-m", "agent_bus.embeddings.daemon", "--db", str(db_path)],
            timeout=30,
            capture_output=True,
        )
        assert second.returncode == 0 and not second.stderr
        assert client.status(db_path)["pid"] == info["pid"]
        # Unknown models and bad requests are error objects, not crashes.
        with pytest.raises(client.ServiceError) as exc:
            client.request(client.socket_path(db_path), {"model": "no-such", "texts": ["x"]})
        assert exc.value.code == "INVALID_ARGUMENT"
        with pytest.raises(client.ServiceError):
            client.request(client.socket_path(db_path), {"texts": "not a list"})
    finally:
        _stop_service(db_path)
        bus.close()
    assert not os.path.exists(client.socket_path(db_path))


def test_search_embeds_in_process_and_says_so_when_no_service_can_start(
    db_path, monkeypatch, caplog
):
    monkeypatch.setenv("AGENT_BUS_EMBED_SERVICE_WAIT_SECONDS", "0.3")
    monkeypatch.setattr(client.sys, "executable", str(db_path.parent / "no-such-python"))
    monkeypatch.setattr(client, "_spawned", {})
    bus = Bus(load_settings(db=db_path, embeddings_autoindex=True))
    try:
        topic, _ = bus.topic_create("fallback")
        bus.post(topic.topic_id, "a", [OutboxItem(content_markdown="pizza dough with yeast")])
        emb.index(bus)
        with caplog.at_level(logging.WARNING, logger="agent_bus.embeddings.client"):
            results, warnings = bus.search("italian food", mode="semantic")
        assert results and "pizza" in results[0].snippet and not warnings
        assert "embedding the query in-process" in caplog.text
    finally:
        bus.close()


def test_the_service_exits_when_idle_and_releases_lease_and_socket(db_path, monkeypatch):
    monkeypatch.setenv("AGENT_BUS_EMBED_SERVICE_IDLE_SECONDS", "1")
    monkeypatch.setenv("AGENT_BUS_INDEX_LEASE_TTL_SECONDS", "2")
    bus = Bus(load_settings(db=db_path))
    try:
        bus.topic_create("idle")
        child = client.spawn(bus.settings)
        assert child is not None
        _wait(lambda: client.status(db_path) is not None, timeout=20)
        assert child.wait(30) == 0
        assert _state(db_path)[0] is None
        assert not os.path.exists(client.socket_path(db_path))
    finally:
        bus.close()


def test_a_long_database_path_gets_a_short_private_socket(tmp_path):
    # conftest gives each test its own XDG_RUNTIME_DIR (removed afterwards), so nothing is
    # left behind in the real one.
    runtime = os.environ["XDG_RUNTIME_DIR"]
    long_db = tmp_path / ("d" * 120) / "agent_bus.sqlite"
    path = client.socket_path(long_db)
    assert len(path.encode()) <= 100 and path.endswith(".embed.sock")
    assert os.stat(os.path.dirname(path)).st_mode & 0o077 == 0
    assert client.socket_path(long_db) == path
    assert path.startswith(runtime + os.sep)
