"""Search latency at scale: fts, semantic and hybrid p50/p95 through `Bus.search` on 100k messages.

Seeding is synthetic and fast: messages are generated from a vocabulary mixing the
labelled set's words and identifiers and inserted with ``executemany`` (the FTS and
job-queue triggers run as in production); vectors are random unit vectors written in
llm's format into the default model's collection, because embedding 100,000 real
messages would take most of an hour on 2 shared cores. Each message also gets as many
passage rows as a message of the labelled sets drawn at random (`chunking.passages`;
1.28 a message on average); ``--no-passages`` seeds one row a message, as before
passages. The query side is real: every semantic/hybrid query is embedded by the default
model (through the database's embedding service, as a server does) and scored against
every stored vector.

The seeded file is kept between runs (``--cache``, default
``~/.cache/agent-bus-bench/latency-<n>-<passages|whole>.sqlite``, outside the
repository); the search
process opens a copy-free ``Bus`` on it. Also reported: the first query of the process
(model + vector load), the RSS of this process and of the embedding service after the
run, and the machine's load average (the machine is shared: figures are noisy).

    nice -n 10 python benchmarks/search_eval/latency.py [--messages 100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from evaluate import load_jsonl  # noqa: E402

from agent_bus.bus import Bus  # noqa: E402
from agent_bus.embeddings import DEFAULT_MODEL_ID  # noqa: E402
from agent_bus.embeddings.indexer import ensure_collection  # noqa: E402
from agent_bus.embeddings.models import get_embedder  # noqa: E402
from agent_bus.settings import load_settings  # noqa: E402

CACHE = Path.home() / ".cache" / "agent-bus-bench"
# Levers switched off one at a time (`--without`), to measure what each one buys.
WITHOUT = {
    "pruning": ("agent_bus.search.fts", "PRUNE_BUDGET_DOCS", 10**12),
    "candidates": ("agent_bus.search.semantic", "EXACT_BELOW", 10**12),
    "feedback": ("agent_bus.search.semantic", "FEEDBACK_DEPTH", 0),
    "neighbours": ("agent_bus.search.semantic", "NEIGHBOUR_WEIGHT", 0.0),
}


def seed(bus: Bus, n: int, rng: random.Random, with_passages: bool) -> float:
    import numpy as np

    from agent_bus.embeddings.chunking import passages
    from agent_bus.store.embeddings import chunk_id, chunk_metadata, mark_passages_done

    tuning = load_jsonl(HERE / "messages.jsonl")
    words = re.findall(r"\S+", " ".join(m["content_markdown"] for m in tuning))
    labelled = tuning + load_jsonl(HERE / "set2" / "messages.jsonl")
    passage_counts = [len(passages(m["content_markdown"])) for m in labelled]
    started = time.perf_counter()
    topic_ids = [bus.topic_create(f"synthetic-{i}", mode="new")[0].topic_id for i in range(50)]
    rows = []
    now = time.time()
    for i in range(n):
        tid = topic_ids[i % len(topic_ids)]
        text = " ".join(rng.choice(words) for _ in range(rng.randint(15, 60)))
        rows.append(
            (uuid.uuid4().hex[:12], tid, i // len(topic_ids) + 1, "bench", "message", text, now)
        )
    conn = bus.db.conn()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO messages(message_id, topic_id, seq, sender, message_type, content_markdown, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("DELETE FROM embedding_jobs")  # vectors come below, not from the worker
    conn.execute("COMMIT")
    embedder = get_embedder(DEFAULT_MODEL_ID, explicit=False)
    cid = ensure_collection(bus, embedder)
    gen = np.random.default_rng(7)
    conn.execute("BEGIN IMMEDIATE")
    for start in range(0, n, 10_000):
        part = rows[start : start + 10_000]
        ids = []
        for r in part:
            rows_of = 1 + (rng.choice(passage_counts) if with_passages else 0)
            ids += [
                (chunk_id(r[0], i), chunk_metadata(r[1], i, rows_of, passage=i > 0))
                for i in range(rows_of)
            ]
        vecs = gen.standard_normal((len(ids), 384)).astype("<f4")
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        conn.executemany(
            "INSERT INTO embeddings(collection_id, id, embedding, content_hash, metadata, "
            "updated) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (cid, rid, v.tobytes(), b"", meta, int(now))
                for (rid, meta), v in zip(ids, vecs, strict=True)
            ],
        )
    # With --no-passages the embedding service would otherwise start embedding every
    # message again, with its passages, during the run.
    mark_passages_done(conn, cid)
    conn.execute("COMMIT")
    return time.perf_counter() - started


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


def vector_count(bus: Bus) -> int:
    """Vectors in the bundled model's collection (0 when it has none)."""
    from agent_bus.embeddings import collection_name

    return bus.read(
        lambda c: (
            c.execute(
                "SELECT COUNT(*) FROM embeddings e JOIN collections k ON k.id = e.collection_id "
                "WHERE k.name = ?",
                (collection_name(DEFAULT_MODEL_ID),),
            ).fetchone()[0]
            if c.execute("SELECT 1 FROM sqlite_master WHERE name = 'embeddings'").fetchone()
            else 0
        )
    )


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--cache", type=Path, default=None, help="the seeded bus file")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the queries")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--without", choices=sorted(WITHOUT), action="append", default=[])
    parser.add_argument(
        "--no-passages", action="store_true", help="seed one vector a message (a file of its own)"
    )
    args = parser.parse_args()
    import importlib

    for name in args.without:
        module, attribute, value = WITHOUT[name]
        setattr(importlib.import_module(module), attribute, value)
    layout = "whole" if args.no_passages else "passages"
    db = args.cache or CACHE / f"latency-{args.messages}-{layout}.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    queries = [q["query"] for q in load_jsonl(HERE / "queries.jsonl")]
    queries += [q["query"] for q in load_jsonl(HERE / "set2" / "queries.jsonl")]
    out: dict[str, object] = {"messages": args.messages, "db": str(db), "without": args.without}
    fresh = not db.exists()
    bus = Bus(load_settings(db=db, embeddings_autoindex=False))
    if not fresh and vector_count(bus) < args.messages:
        # A cache seeded before a schema upgrade that dropped the bundled model's vectors
        # (schema 11): seed it again rather than time a half-empty index.
        bus.close()
        for leftover in db.parent.glob(db.name + "*"):
            leftover.unlink()
        fresh = True
        bus = Bus(load_settings(db=db, embeddings_autoindex=False))
    if fresh:
        seconds = seed(bus, args.messages, random.Random(42), not args.no_passages)
        out["seed_s"] = round(seconds, 1)
    out["vector_rows_per_message"] = round(vector_count(bus) / args.messages, 2)
    started = time.perf_counter()
    bus.search("warm up the model and the matrix", mode="hybrid")
    out["first_hybrid_query_s"] = round(time.perf_counter() - started, 2)
    for mode in ("fts", "semantic", "hybrid"):
        times = []
        for _ in range(args.rounds):
            for q in queries:
                started = time.perf_counter()
                bus.search(q, mode=mode, limit=10)
                times.append((time.perf_counter() - started) * 1000)
        out[mode] = percentiles(times)
    from agent_bus.embeddings import client

    status = client.status(db) or {}
    out["rss_mib"] = {"search_process": rss_mib(os.getpid())}
    if status.get("pid"):
        out["rss_mib"]["embedding_service"] = rss_mib(int(status["pid"]))
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    bus.close()
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
