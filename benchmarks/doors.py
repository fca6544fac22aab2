"""How fast the other doors react: the CLI's `topics watch --follow`, and a server's exit on EOF.

The tests only check that these happen (with generous liveness bounds); how fast is a
figure, measured here.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from mcp.types import LATEST_PROTOCOL_VERSION

from benchmarks.harness import agent_bus_params, call, ms_since, open_server, server_env, summary

if TYPE_CHECKING:
    from benchmarks.metrics import Ctx

LIVENESS_SECONDS = 60


def _lines(stream: Any) -> queue.Queue:
    """Lines of a text stream, read by a thread (None at EOF)."""
    out: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in stream:
            out.put(line)
        out.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return out


async def watch_follow(ctx: Ctx) -> dict[str, Any]:
    """An MCP server posts; `agent-bus topics watch --follow --json` prints it."""
    import anyio

    reps = ctx.n(30, 5)
    db = ctx.db("follow")
    latency_ms: list[float] = []
    async with open_server(agent_bus_params(db, ctx.home)) as writer:
        topic = (await call(writer.session, "topic_create", name="bench-follow"))["topic_id"]
        await call(writer.session, "topic_join", agent_name="writer", topic_id=topic)
        watch = subprocess.Popen(
            [sys.executable, "-m", "agent_bus", "topics", "watch", topic, "--follow", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=server_env(db, ctx.home),
        )
        try:
            assert watch.stdout is not None
            lines = _lines(watch.stdout)
            # The watcher is ready once it prints the first message.
            await call(
                writer.session,
                "sync",
                topic_id=topic,
                wait_seconds=0,
                outbox=[{"content_markdown": "warm-up"}],
            )
            await anyio.to_thread.run_sync(lambda: lines.get(timeout=LIVENESS_SECONDS))
            for i in range(reps):
                t0 = time.perf_counter()
                await call(
                    writer.session,
                    "sync",
                    topic_id=topic,
                    wait_seconds=0,
                    outbox=[{"content_markdown": f"follow {i}"}],
                )
                line = await anyio.to_thread.run_sync(lambda: lines.get(timeout=LIVENESS_SECONDS))
                latency_ms.append(ms_since(t0))
                assert line is not None and json.loads(line)["content_markdown"] == f"follow {i}"
        finally:
            watch.terminate()
            watch.wait(timeout=LIVENESS_SECONDS)
    return {"post_to_printed_ms": summary(latency_ms)}


class _RawServer:
    """A server driven with bare JSON-RPC lines, so that its stdin can be closed at will."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent_bus"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.next_id = 0
        self.request(
            "initialize",
            {
                "protocolVersion": LATEST_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def call_later(self, method: str, params: dict[str, Any]) -> int:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return self.next_id

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        rid = self.call_later(method, params)
        assert self.proc.stdout is not None
        while True:
            msg = json.loads(self.proc.stdout.readline())
            if msg.get("id") == rid:
                return msg

    def tool(self, tool_name: str, /, **arguments: Any) -> dict[str, Any]:
        reply = self.request("tools/call", {"name": tool_name, "arguments": arguments})
        return reply["result"]["structuredContent"]


def _has_cursor(db: Any, topic_id: str, agent: str) -> bool:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        row = conn.execute(
            "SELECT 1 FROM cursors WHERE topic_id = ? AND agent_name = ?", (topic_id, agent)
        ).fetchone()
    return row is not None


async def stdin_eof(ctx: Ctx) -> dict[str, Any]:
    """A client closes stdin while a sync of its server waits: time until the server exits."""
    reps = ctx.n(5, 2)
    exit_ms: list[float] = []
    for i in range(reps):
        db = ctx.db(f"eof-{i}")
        server = _RawServer(server_env(db, ctx.home))
        try:
            topic = server.tool("topic_create", name="bench-eof")["topic_id"]
            server.tool("topic_join", agent_name="waiter", topic_id=topic)
            wait = {"topic_id": topic, "wait_seconds": 600}
            server.call_later("tools/call", {"name": "sync", "arguments": wait})
            deadline = time.monotonic() + LIVENESS_SECONDS
            while not _has_cursor(db, topic, "waiter"):  # its first step is done: it waits
                if time.monotonic() > deadline:
                    raise RuntimeError("the sync never started waiting")
                time.sleep(0.005)
            assert server.proc.stdin is not None
            t0 = time.perf_counter()
            server.proc.stdin.close()
            server.proc.wait(timeout=LIVENESS_SECONDS)
            exit_ms.append(ms_since(t0))
        finally:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()
            if server.proc.stdout is not None:
                server.proc.stdout.close()
    return {"eof_to_exit_ms": summary(exit_ms)}
