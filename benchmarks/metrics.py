"""The measurements. Each is an async function taking a `Ctx` and returning a dict.

Times inside one process are taken with ``time.perf_counter``; times compared
across processes (a message's ``created_at``, stamped by the writer's server in
its write transaction, against the moment the reader's client holds the
message) use ``time.time`` — the same machine clock for every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import random
import signal
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from benchmarks.doors import stdin_eof, watch_follow
from benchmarks.harness import (
    EXTRA_ENV,
    ToolFailed,
    agent_bus_params,
    bare_params,
    call,
    children,
    cpu_seconds,
    ms_since,
    open_server,
    prepare_db,
    rss_mib,
    summary,
)

BODY = "Benchmark message: please review `agent_bus/wake.py` and reply with findings. " * 2


@dataclass
class Ctx:
    workdir: Path
    quick: bool = False
    reps: int | None = None  # overrides every metric's repetition count
    writer_max_items: int | None = None  # sync max_items of the throughput writers

    def n(self, full: int, quick: int) -> int:
        if self.reps is not None:
            return self.reps
        return quick if self.quick else full

    def db(self, name: str) -> Path:
        """A fresh bus that already has its schema."""
        path = self.workdir / name / "agent_bus.sqlite"
        if not path.exists():
            prepare_db(path)
        return path

    @property
    def home(self) -> Path:
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        return home


async def _topic(session: ClientSession, name: str) -> str:
    out = await call(session, "topic_create", name=name, mode="new")
    return out["topic_id"]


async def _join(session: ClientSession, topic_id: str, agent: str) -> None:
    await call(session, "topic_join", agent_name=agent, topic_id=topic_id)


def _outbox(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"content_markdown": f"{BODY} ({tag} #{i})"} for i in range(n)]


# --- 1. long-poll wake across processes ---------------------------------------------------


def _reader_proc(db: str, home: str, topic: str, rounds: int, env: dict[str, str], q: Any) -> None:
    """The waiting side, in a process of its own so that its client's event loop is
    not busy with the writer's response when the reader's answer arrives."""
    EXTRA_ENV.update(env)
    try:
        asyncio.run(_reader(Path(db), Path(home), topic, rounds, q))
    except BaseException as exc:
        q.put(("fatal", f"{type(exc).__name__}: {exc}"))


async def _reader(db: Path, home: Path, topic: str, rounds: int, q: Any) -> None:
    async with open_server(agent_bus_params(db, home)) as reader:
        await _join(reader.session, topic, "reader")
        await call(reader.session, "sync", topic_id=topic, wait_seconds=0)
        for _ in range(rounds):
            task = asyncio.create_task(
                call(reader.session, "sync", topic_id=topic, wait_seconds=30)
            )
            await asyncio.sleep(0.04 + random.random() * 0.03)  # the server is waiting now
            q.put(("waiting", not task.done()))
            out = await task
            got = time.time()
            created = out["received"][0]["created_at"] if out["received"] else None
            q.put(("got", (got, created, out["status"])))


async def wake(ctx: Ctx) -> dict[str, Any]:
    """Reader waits in sync(wait_seconds=30) in one process; a writer posts from another.

    The reader's client runs in its own process and stamps ``time.time()`` when
    its sync returns; the message's ``created_at`` is stamped by the writer's
    server inside its write transaction, just before the commit. Their
    difference is the wake latency (commit → the reader's client holds the
    message). The writer's own request transit (client → server) is thereby
    left out; ``send_to_receive_ms`` keeps it in (writer's client call start →
    reader has it), and ``writer_round_trip_ms`` shows that request alone.
    """
    reps = ctx.n(100, 20)
    warmup = 3
    db = ctx.db("wake")
    wake_ms: list[float] = []
    e2e_ms: list[float] = []
    writer_rtt_ms: list[float] = []
    misses = 0
    not_waiting = 0
    loop = asyncio.get_running_loop()
    mp = multiprocessing.get_context("spawn")
    q = mp.Queue()
    async with open_server(agent_bus_params(db, ctx.home)) as writer:
        topic = await _topic(writer.session, "bench-wake")
        await _join(writer.session, topic, "writer")
        proc = mp.Process(
            target=_reader_proc,
            args=(str(db), str(ctx.home), topic, reps + warmup, dict(EXTRA_ENV), q),
        )
        proc.start()
        try:
            for i in range(reps + warmup):
                kind, value = await loop.run_in_executor(None, lambda: q.get(timeout=120))
                if kind == "fatal":
                    raise RuntimeError(f"reader process failed: {value}")
                not_waiting += 0 if value else 1
                t_wall, t0 = time.time(), time.perf_counter()
                await call(
                    writer.session,
                    "sync",
                    topic_id=topic,
                    outbox=_outbox(1, f"wake {i}"),
                    wait_seconds=0,
                )
                rtt = ms_since(t0)
                kind, value = await loop.run_in_executor(None, lambda: q.get(timeout=60))
                if kind == "fatal":
                    raise RuntimeError(f"reader process failed: {value}")
                got, created, status = value
                if i < warmup:
                    continue
                if created is None or status != "ready":
                    misses += 1
                    continue
                wake_ms.append((got - created) * 1000)
                e2e_ms.append((got - t_wall) * 1000)
                writer_rtt_ms.append(rtt)
        finally:
            await loop.run_in_executor(None, lambda: proc.join(timeout=30))
            if proc.is_alive():
                proc.kill()
    return {
        "wake_ms": summary(wake_ms),
        "send_to_receive_ms": summary(e2e_ms),
        "writer_round_trip_ms": summary(writer_rtt_ms),
        "misses": misses,
        "reader_not_yet_waiting": not_waiting,
    }


# --- 2. ping while a sync of the same session waits ---------------------------------------


async def ping_during_wait(ctx: Ctx) -> dict[str, Any]:
    reps = ctx.n(50, 10)
    db = ctx.db("ping")
    tool_ms: list[float] = []
    proto_ms: list[float] = []
    baseline_ms: list[float] = []
    async with open_server(agent_bus_params(db, ctx.home)) as waiter:
        async with open_server(agent_bus_params(db, ctx.home)) as poster:
            topic = await _topic(poster.session, "bench-ping")
            await _join(waiter.session, topic, "waiter")
            await _join(poster.session, topic, "poster")
            for _ in range(reps):  # the same tool with no sync waiting, for comparison
                t0 = time.perf_counter()
                await call(waiter.session, "ping")
                baseline_ms.append(ms_since(t0))
            task = asyncio.create_task(
                call(waiter.session, "sync", topic_id=topic, wait_seconds=30)
            )
            await asyncio.sleep(0.1)
            for _ in range(reps):
                t0 = time.perf_counter()
                await call(waiter.session, "ping")
                tool_ms.append(ms_since(t0))
                t0 = time.perf_counter()
                await waiter.session.send_ping()
                proto_ms.append(ms_since(t0))
            still_waiting = not task.done()
            await call(
                poster.session, "sync", topic_id=topic, outbox=_outbox(1, "end"), wait_seconds=0
            )
            out = await task
    return {
        "ping_tool_ms": summary(tool_ms),
        "protocol_ping_ms": summary(proto_ms),
        "ping_tool_no_wait_ms": summary(baseline_ms),
        "sync_was_waiting_throughout": still_waiting,
        "sync_then_received": out["received_count"],
    }


# --- 3. four writer processes in batches of ten -------------------------------------------


def _writer_proc(
    db: str,
    home: str,
    topic: str,
    idx: int,
    batches: int,
    max_items: int | None,
    env: dict[str, str],
    barrier: Any,
    results: Any,
) -> None:
    EXTRA_ENV.update(env)
    try:
        results.put(
            asyncio.run(_writer(Path(db), Path(home), topic, idx, batches, max_items, barrier))
        )
    except BaseException as exc:  # reported, never hangs the parent
        results.put({"idx": idx, "fatal": f"{type(exc).__name__}: {exc}"})
        with contextlib.suppress(Exception):
            barrier.abort()


async def _writer(
    db: Path, home: Path, topic: str, idx: int, batches: int, max_items: int | None, barrier: Any
) -> dict[str, Any]:
    extra = {} if max_items is None else {"max_items": max_items}
    errors: dict[str, int] = {}
    sent = 0
    call_ms: list[float] = []
    async with open_server(agent_bus_params(db, home)) as writer:
        await _join(writer.session, topic, f"writer-{idx}")
        await call(writer.session, "ping")
        barrier.wait(timeout=120)
        start = time.time()
        cpu0, own0 = cpu_seconds(writer.pid), time.process_time()
        for b in range(batches):
            t0 = time.perf_counter()
            try:
                out = await call(
                    writer.session,
                    "sync",
                    topic_id=topic,
                    outbox=_outbox(10, f"w{idx} b{b}"),
                    wait_seconds=0,
                    **extra,
                )
                sent += sum(1 for s in out["sent"] if not s["duplicate"])
            except ToolFailed as exc:
                errors[exc.code] = errors.get(exc.code, 0) + 1
            except Exception as exc:  # a protocol-level failure counts as an error too
                key = type(exc).__name__
                errors[key] = errors.get(key, 0) + 1
            call_ms.append(ms_since(t0))
        end = time.time()
        server_cpu, client_cpu = cpu_seconds(writer.pid) - cpu0, time.process_time() - own0
    return {
        "idx": idx,
        "sent": sent,
        "errors": errors,
        "start": start,
        "end": end,
        "ms": call_ms,
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
    }


async def throughput(ctx: Ctx) -> dict[str, Any]:
    writers = 4
    batches = ctx.n(100, 25)
    db = ctx.db("throughput")
    async with open_server(agent_bus_params(db, ctx.home)) as admin:
        topic = await _topic(admin.session, "bench-throughput")
    mp = multiprocessing.get_context("spawn")
    barrier = mp.Barrier(writers + 1)
    results = mp.Queue()
    procs = [
        mp.Process(
            target=_writer_proc,
            args=(
                str(db),
                str(ctx.home),
                topic,
                i,
                batches,
                ctx.writer_max_items,
                dict(EXTRA_ENV),
                barrier,
                results,
            ),
        )
        for i in range(writers)
    ]
    for p in procs:
        p.start()
    loop = asyncio.get_running_loop()
    try:
        deadline = time.monotonic() + 120
        while barrier.n_waiting < writers:  # all servers up and joined; none died
            dead = [p.exitcode for p in procs if not p.is_alive()]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"writer processes did not get ready (exit codes {dead})")
            await asyncio.sleep(0.05)
        await loop.run_in_executor(None, lambda: barrier.wait(timeout=30))
        outs = [await loop.run_in_executor(None, lambda: results.get(timeout=300)) for _ in procs]
    finally:
        for p in procs:
            await loop.run_in_executor(None, lambda p=p: p.join(timeout=30))
            if p.is_alive():
                p.kill()
    fatal = [o["fatal"] for o in outs if "fatal" in o]
    if fatal:
        raise RuntimeError(f"writer process failed: {fatal}")
    total = sum(o["sent"] for o in outs)
    elapsed = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    errors: dict[str, int] = {}
    for o in outs:
        for code, n in o["errors"].items():
            errors[code] = errors.get(code, 0) + n
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        stored = conn.execute("SELECT count(*) FROM messages WHERE topic_id = ?", (topic,))
        stored_count = stored.fetchone()[0]
    return {
        "writers": writers,
        "batch_size": 10,
        "batches_per_writer": batches,
        "messages_sent": total,
        "messages_stored": stored_count,
        "seconds": round(elapsed, 3),
        "messages_per_second": round(total / elapsed, 1),
        "errors": sum(errors.values()),
        "errors_by_code": errors,
        "batch_call_ms": summary([ms for o in outs for ms in o["ms"]]),
        # Where the time goes: CPU per batch call in the servers and in the clients, and how
        # busy the machine's cores were (servers + clients) over the run.
        "server_cpu_ms_per_batch": round(
            sum(o["server_cpu_s"] for o in outs) / (writers * batches) * 1000, 2
        ),
        "client_cpu_ms_per_batch": round(
            sum(o["client_cpu_s"] for o in outs) / (writers * batches) * 1000, 2
        ),
        "cores_busy": round(sum(o["server_cpu_s"] + o["client_cpu_s"] for o in outs) / elapsed, 2),
        "max_items": ctx.writer_max_items or "default",
    }


# --- 4. cold start ------------------------------------------------------------------------


async def _cold_once(params: StdioServerParameters, tool: str) -> tuple[float, float]:
    """(ms to initialised, ms to the first tool result) from process spawn.

    The first tool call includes the client's own ``tools/list`` (the official
    client lists tools to validate results against their output schemas), as
    with every real client. Once measured, the server is killed (SIGKILL, by
    pid) rather than shut down gracefully: shutdown is not what we measure.
    """
    before = children()
    t0 = time.perf_counter()
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                t_init = ms_since(t0)
                await call(session, tool)
                t_first = ms_since(t0)
                for pid in children() - before:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
    return t_init, t_first


async def cold_start(ctx: Ctx) -> dict[str, Any]:
    reps = ctx.n(10, 2)
    db = ctx.db("cold")
    async with open_server(agent_bus_params(db, ctx.home)) as s:  # an existing bus
        await call(s.session, "topic_list")
    kinds = {
        "agent_bus_ping": (agent_bus_params(db, ctx.home), "ping"),
        "agent_bus_topic_list": (agent_bus_params(db, ctx.home), "topic_list"),
        "bare_mcpserver_ping": (bare_params(ctx.home), "ping"),
    }
    init: dict[str, list[float]] = {k: [] for k in kinds}
    first: dict[str, list[float]] = {k: [] for k in kinds}
    for params, tool in kinds.values():  # warm the page cache, not counted
        await _cold_once(params, tool)
    for _ in range(reps):  # interleaved, so drift hits every kind alike
        for kind, (params, tool) in kinds.items():
            t_init, t_first = await _cold_once(params, tool)
            init[kind].append(t_init)
            first[kind].append(t_first)
    out: dict[str, Any] = {}
    for kind in kinds:
        out[kind] = {"initialized_ms": summary(init[kind]), "first_result_ms": summary(first[kind])}
    out["overhead_over_bare_ms"] = round(
        out["agent_bus_ping"]["first_result_ms"]["p50"]
        - out["bare_mcpserver_ping"]["first_result_ms"]["p50"],
        1,
    )
    return out


# --- 5. one-message sync ------------------------------------------------------------------


async def sync_one(ctx: Ctx) -> dict[str, Any]:
    reps = ctx.n(200, 50)
    db = ctx.db("sync")
    send_ms: list[float] = []
    recv_ms: list[float] = []
    async with open_server(agent_bus_params(db, ctx.home)) as a:
        async with open_server(agent_bus_params(db, ctx.home)) as b:
            topic = await _topic(a.session, "bench-sync")
            await _join(a.session, topic, "sender")
            await _join(b.session, topic, "receiver")
            for i in range(reps + 5):  # five warm-up rounds
                t0 = time.perf_counter()
                await call(
                    a.session, "sync", topic_id=topic, outbox=_outbox(1, str(i)), wait_seconds=0
                )
                t_send = ms_since(t0)
                t0 = time.perf_counter()
                out = await call(b.session, "sync", topic_id=topic, wait_seconds=0)
                t_recv = ms_since(t0)
                assert out["received_count"] == 1, out["received_count"]
                if i >= 5:
                    send_ms.append(t_send)
                    recv_ms.append(t_recv)
            t0 = time.perf_counter()
            for _ in range(reps):
                await call(a.session, "ping")
            ping_ms = ms_since(t0) / reps
    return {
        "send_one_ms": summary(send_ms),
        "receive_one_ms": summary(recv_ms),
        "ping_tool_mean_ms": round(ping_ms, 3),
    }


# --- 6 and 7. memory, and CPU while a sync waits ------------------------------------------


async def memory_and_idle_cpu(ctx: Ctx) -> dict[str, Any]:
    """RSS after a few calls; then CPU and RSS sampled while a sync waits.

    The CPU figure is taken over the second half of the window (a steady state:
    the first half covers start-up work such as a background indexer that
    starts a few seconds after the server); the whole window is reported too.
    """
    window = 3.0 if (ctx.quick or ctx.reps is not None) else 14.0
    db = ctx.db("memory")
    out: dict[str, Any] = {}
    async with open_server(bare_params(ctx.home)) as bare:
        await call(bare.session, "ping")
        await call(bare.session, "topic_list")
        await asyncio.sleep(0.3)
        out["bare_mcpserver_rss_mib"] = round(rss_mib(bare.pid), 1)
    async with open_server(agent_bus_params(db, ctx.home)) as srv:
        born = time.perf_counter()
        s = srv.session
        await call(s, "ping")
        topic = await _topic(s, "bench-memory")
        await _join(s, topic, "alice")
        await call(s, "sync", topic_id=topic, outbox=_outbox(5, "mem"), wait_seconds=0)
        await call(s, "sync", topic_id=topic, wait_seconds=0, include_self=True)
        await call(s, "topic_list")
        await call(s, "topic_presence", topic_id=topic)
        await asyncio.sleep(0.3)
        out["agent_bus_rss_mib"] = round(rss_mib(srv.pid), 1)
        out["overhead_over_bare_mib"] = round(
            out["agent_bus_rss_mib"] - out["bare_mcpserver_rss_mib"], 1
        )
        try:
            await call(s, "messages_search", query="review wake", topic_id=topic)
            await asyncio.sleep(0.3)
            out["agent_bus_rss_after_search_mib"] = round(rss_mib(srv.pid), 1)
        except ToolFailed as exc:
            out["agent_bus_rss_after_search_mib"] = f"search failed: {exc.code}"

        task = asyncio.create_task(call(s, "sync", topic_id=topic, wait_seconds=int(window) + 20))
        await asyncio.sleep(0.3)
        samples = []  # (seconds since server start, cpu seconds, rss MiB)
        t_end = time.perf_counter() + window
        while True:
            samples.append((time.perf_counter() - born, cpu_seconds(srv.pid), rss_mib(srv.pid)))
            if time.perf_counter() >= t_end:
                break
            await asyncio.sleep(0.5)
        still_waiting = not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    def pct(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
        return round((b[1] - a[1]) / (b[0] - a[0]) * 100, 3)

    mid = samples[len(samples) // 2]
    out["idle_window_server_age_s"] = [round(samples[0][0], 1), round(samples[-1][0], 1)]
    out["idle_cpu_percent"] = pct(mid, samples[-1])
    out["idle_cpu_percent_whole_window"] = pct(samples[0], samples[-1])
    out["rss_end_of_window_mib"] = round(samples[-1][2], 1)
    out["rss_peak_in_window_mib"] = round(max(x[2] for x in samples), 1)
    out["sync_was_waiting_throughout"] = still_waiting
    return out


METRICS = {
    "wake": wake,
    "ping": ping_during_wait,
    "throughput": throughput,
    "cold": cold_start,
    "sync": sync_one,
    "memory": memory_and_idle_cpu,
    "follow": watch_follow,
    "eof": stdin_eof,
}
