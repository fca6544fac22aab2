"""Hook figures: the inbox query on a big bus, and `agent-bus hook` as a whole process.

    python -m benchmarks.hooks                 # 100k messages, 50 joined topics
    python -m benchmarks.hooks --messages 20000 --runs 20 --no-write

Builds a bus with ``--messages`` messages spread over ``--topics`` topics, every
topic joined by "reviewer" with 5 unread messages from "implementer", and a
session binding of a live client (this process). Measures:

- ``inbox``: `agent_bus.service.inbox.unread` over all joined topics, in process
  (median and p95 of ``--calls`` calls), plus SQLite's query plans;
- ``hook``: ``agent-bus hook claude-code <event>`` spawned ``--runs`` times with
  stdin JSON (wall time per process, median and p95), for the stop event with
  mail waiting and for a session-start with nothing unread.

Writes benchmarks/results/hooks.json unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent_bus.service import inbox
from agent_bus.service.bindings import BindingRecorder
from agent_bus.store.connection import open_connection, write_transaction
from agent_bus.store.schema import ensure_schema
from benchmarks.harness import REPO, machine

RESULTS = REPO / "benchmarks" / "results" / "hooks.json"


def build(db: Path, messages: int, topics: int, unread: int) -> list[tuple[str, str]]:
    conn = open_connection(db, busy_timeout_ms=5000)
    ensure_schema(conn, str(db))
    now = time.time()
    per_topic = messages // topics
    ids = [f"t{i:04d}" for i in range(topics)]
    with write_transaction(conn):
        conn.executemany(
            "INSERT INTO topics(topic_id, name, created_at, status) VALUES (?, ?, ?, 'open')",
            [(t, f"topic-{t}", now) for t in ids],
        )
        conn.executemany(
            "INSERT INTO topic_seq(topic_id, next_seq, updated_at) VALUES (?, ?, ?)",
            [(t, per_topic + 1, now) for t in ids],
        )
        rows = (
            (
                f"{t}-{seq}",
                t,
                seq,
                "implementer" if seq % 2 else "reviewer",
                "message",
                f"Message {seq} of {t}: a first line of ordinary length for a digest\n"
                + "body text " * 30,
                now + seq,
            )
            for t in ids
            for seq in range(1, per_topic + 1)
        )
        conn.executemany(
            "INSERT INTO messages(message_id, topic_id, seq, sender, message_type, "
            "content_markdown, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        for who in ("reviewer", "implementer"):
            conn.executemany(
                "INSERT INTO agent_name_reservations VALUES (?, ?, 'x', ?, ?)",
                [(t, who, now, now) for t in ids],
            )
        conn.executemany(
            "INSERT INTO cursors(topic_id, agent_name, last_seq, updated_at) VALUES (?, ?, ?, ?)",
            [(t, "reviewer", per_topic - 2 * unread, now) for t in ids],
        )
    recorder = BindingRecorder({"CLAUDE_CODE_SESSION_ID": "bench"})

    def write(fn):  # noqa: ANN001, ANN202 - the handle's write() signature
        with write_transaction(conn):
            return fn(conn)

    for t in ids:
        recorder.record(write, t, "reviewer", "bench", "0")
    conn.close()
    return [(t, "reviewer") for t in ids]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_inbox(db: Path, identities: list[tuple[str, str]], calls: int) -> dict:
    conn = sqlite3.connect(db)
    plans = {
        "unread_by_sender": conn.execute(
            "EXPLAIN QUERY PLAN SELECT sender, COUNT(*) FROM (SELECT sender FROM messages "
            "WHERE topic_id = ? AND seq > ? AND sender <> ? LIMIT 101) GROUP BY sender",
            ("t0000", 0, "reviewer"),
        ).fetchall(),
        "newest_unread": conn.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM messages WHERE topic_id = ? AND seq > ? "
            "AND sender <> ? ORDER BY seq DESC LIMIT 3",
            ("t0000", 0, "reviewer"),
        ).fetchall(),
    }
    inbox.unread(conn, identities)  # warm the page cache
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        boxes = inbox.unread(conn, identities)
        times.append((time.perf_counter() - t0) * 1000)
    # Worst case: every cursor at 0, so each topic counts up to the cap (101 rows).
    conn.execute("UPDATE cursors SET last_seq = 0")
    conn.commit()
    inbox.unread(conn, identities)
    behind = []
    for _ in range(calls):
        t0 = time.perf_counter()
        inbox.unread(conn, identities)
        behind.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return {
        "far_behind_median_ms": round(statistics.median(behind), 3),
        "far_behind_p95_ms": round(pct(behind, 0.95), 3),
        "topics": len(identities),
        "topics_with_unread": len(boxes),
        "unread_per_topic": boxes[0].unread if boxes else 0,
        "median_ms": round(statistics.median(times), 3),
        "p95_ms": round(pct(times, 0.95), 3),
        "plans": {k: [r[-1] for r in v] for k, v in plans.items()},
    }


def bench_hook(db: Path, event: str, payload: dict, runs: int, **env: str) -> dict:
    cmd = [sys.executable, "-m", "agent_bus", "hook", "claude-code", event]
    full_env = {**os.environ, "AGENT_BUS_DB": str(db), **env}
    data = json.dumps(payload)
    subprocess.run(cmd, input=data, capture_output=True, text=True, env=full_env, check=False)
    times, out = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(
            cmd, input=data, capture_output=True, text=True, env=full_env, check=False
        )
        times.append((time.perf_counter() - t0) * 1000)
        out = done.stdout
    return {
        "event": event,
        "runs": runs,
        "answered": bool(out),
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(pct(times, 0.95), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--unread", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agent-bus-hooks-") as tmp:
        db = Path(tmp) / "bus.sqlite"
        t0 = time.perf_counter()
        identities = build(db, args.messages, args.topics, args.unread)
        built_s = time.perf_counter() - t0
        # Running servers keep connections open; without one, every hook's close would be
        # the last and checkpoint the WAL (an fsync no real session pays per hook).
        server_like = open_connection(db, busy_timeout_ms=5000)
        result = {
            "machine": machine(),
            "messages": args.messages,
            "build_seconds": round(built_s, 1),
            "hook_stop_with_mail": bench_hook(
                db,
                "stop",
                {"session_id": "bench", "stop_hook_active": False},
                args.runs,
                CLAUDE_CODE_SESSION_ID="bench",
                AGENT_BUS_HOOK_MAX_BLOCKS="1000000",
            ),  # fmt: skip
            "hook_session_start_nothing_unread": bench_hook(
                db,
                "session-start",
                {"session_id": "none", "source": "startup"},
                args.runs,
                CLAUDE_CODE_SESSION_ID="none",
                AGENT_BUS_AGENT="nobody",
            ),  # fmt: skip
            # Last: it moves every cursor back to 0 for its worst case.
            "inbox": bench_inbox(db, identities, args.calls),
        }
        server_like.close()
    print(json.dumps(result, indent=2))
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
