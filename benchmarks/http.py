"""The HTTP door on loopback: wake, one-message sync, 4 writers, 50 waiting sessions.

    nice -n 10 python -m benchmarks.http            # ~1 min
    nice -n 10 python -m benchmarks.http --quick    # fewer repetitions

One real ``agent-bus mcp --http`` process (no tokens, rate limit off so the
writers measure the bus, not the limiter) and official-client sessions over
streamable HTTP. Writes benchmarks/results/http.json and prints the figures;
docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from benchmarks.harness import REPO, call, cpu_seconds, machine, ms_since, rss_mib, summary

RESULTS = REPO / "benchmarks" / "results" / "http.json"
_SERVING = re.compile(r"serving (https?://\S+/mcp)")


@contextlib.contextmanager
def http_server(db: Path, home: Path):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LLM_USER_PATH": str(home / "llm"),
        "AGENT_BUS_DB": str(db),
        "AGENT_BUS_EMBEDDINGS_AUTOINDEX": "0",
        "AGENT_BUS_HTTP_RATE_PER_SECOND": "0",
        "AGENT_BUS_HTTP_MAX_LONG_POLLS": "100",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_bus", "mcp", "--http", "--port", "0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            match = _SERVING.search(line)
            if match:
                break
        else:
            raise RuntimeError("server did not start")
        # Drain the access log so the pipe never fills.
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
        yield proc, match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.asynccontextmanager
async def session(url: str) -> AsyncIterator[ClientSession]:
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300)) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                yield s


async def joined(url: str, topic: str, name: str, stack: contextlib.AsyncExitStack):
    s = await stack.enter_async_context(session(url))
    await call(s, "topic_join", agent_name=name, topic_id=topic)
    return s


async def wake_and_sync(url: str, reps: int) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(session(url))
        topic = (await call(first, "topic_create", name="bench-wake", mode="new"))["topic_id"]
        waiter = await joined(url, topic, "waiter", stack)
        sender = await joined(url, topic, "sender", stack)
        wakes: list[float] = []
        for i in range(reps):
            task = asyncio.create_task(call(waiter, "sync", topic_id=topic, wait_seconds=30))
            await asyncio.sleep(0.05)  # let the waiter reach its wait
            start = time.perf_counter()
            await call(
                sender,
                "sync",
                topic_id=topic,
                outbox=[{"content_markdown": f"w{i}"}],
                wait_seconds=0,
            )
            got = await task
            wakes.append(ms_since(start))
            assert got["received"], got
        syncs: list[float] = []
        for i in range(reps * 2):
            start = time.perf_counter()
            await call(
                sender,
                "sync",
                topic_id=topic,
                outbox=[{"content_markdown": f"s{i}"}],
                wait_seconds=0,
            )
            syncs.append(ms_since(start))
        return {"wake_ms": summary(wakes), "one_message_sync_ms": summary(syncs)}


async def writers(url: str, seconds: float, batch: int) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(session(url))
        topic = (await call(first, "topic_create", name=f"bench-w{batch}", mode="new"))["topic_id"]
        sessions = [await joined(url, topic, f"writer-{i}", stack) for i in range(4)]
        sent = [0] * 4
        errors = [0] * 4
        deadline = time.perf_counter() + seconds

        async def write(i: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                outbox = [{"content_markdown": f"{i}-{n + k}"} for k in range(batch)]
                try:
                    await call(sessions[i], "sync", topic_id=topic, outbox=outbox, wait_seconds=0)
                    sent[i] += batch
                except Exception:  # noqa: BLE001 - counted, reported
                    errors[i] += 1
                n += batch

        start = time.perf_counter()
        await asyncio.gather(*(write(i) for i in range(4)))
        elapsed = time.perf_counter() - start
        return {
            "messages_per_second": round(sum(sent) / elapsed, 1),
            "batch": batch,
            "errors": sum(errors),
        }


async def idle_sessions(url: str, pid: int, count: int, idle_seconds: float) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(session(url))
        topic = (await call(first, "topic_create", name="bench-idle", mode="new"))["topic_id"]
        peers = [await joined(url, topic, f"idle-{i}", stack) for i in range(count)]
        tasks = [
            asyncio.create_task(call(p, "sync", topic_id=topic, wait_seconds=120)) for p in peers
        ]
        await asyncio.sleep(2.0)  # everyone is waiting
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        await asyncio.sleep(idle_seconds)
        cpu = (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0) * 100
        rss = rss_mib(pid)
        start = time.perf_counter()
        await call(first, "topic_join", agent_name="closer", topic_id=topic)
        await call(
            first, "sync", topic_id=topic, outbox=[{"content_markdown": "all"}], wait_seconds=0
        )
        results = await asyncio.gather(*tasks)
        woken = ms_since(start)
        return {
            "sessions": count,
            "idle_cpu_percent": round(cpu, 2),
            "rss_mib": round(rss, 1),
            "all_woken": all(r["received"] for r in results),
            "wake_all_ms": round(woken, 1),
        }


async def main_async(url: str, pid: int, quick: bool) -> dict[str, Any]:
    reps = 10 if quick else 30
    out: dict[str, Any] = {}
    out.update(await wake_and_sync(url, reps))
    out["writers_1"] = await writers(url, 3 if quick else 5, 1)
    out["writers_10"] = await writers(url, 3 if quick else 5, 10)
    out["idle_50"] = await idle_sessions(url, pid, 50, 5 if quick else 10)
    out["server_rss_mib_after"] = round(rss_mib(pid), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        with http_server(Path(tmp) / "bus.sqlite", home) as (proc, url):
            figures = asyncio.run(main_async(url, proc.pid, args.quick))
    result = {
        "machine": machine(),
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "http": figures,
        "recorded_at": time.time(),
    }
    print(json.dumps({k: result[k] for k in ("load_average_1m", "http")}, indent=2))
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
