"""Search latency at scale: fts and hybrid p50/p95 through `Bus.search` on 100,000 messages.

Seeding is synthetic and fast: messages are generated from a vocabulary mixing the
labelled set's words and identifiers and inserted with ``executemany`` (the FTS and
job-queue triggers run as in production); vectors are random unit vectors written in
llm's format into the default model's collection, because embedding 100,000 real
messages on 2 cores would take hours (~11 messages/s). The query side is real: every
hybrid query is embedded by the default model and scored against the 100,000-row
cached matrix, then fused with bm25.

    python benchmarks/search_eval/latency.py [--messages 100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
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


def seed(bus: Bus, n: int, rng: random.Random) -> float:
    import numpy as np

    words = re.findall(
        r"\S+", " ".join(m["content_markdown"] for m in load_jsonl(HERE / "messages.jsonl"))
    )
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
    conn = bus.conn()
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
        vecs = gen.standard_normal((len(part), 384)).astype("<f4")
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        conn.executemany(
            "INSERT INTO embeddings(collection_id, id, embedding, content_hash, updated) "
            "VALUES (?, ?, ?, ?, ?)",
            [(cid, r[0], v.tobytes(), b"", int(now)) for r, v in zip(part, vecs, strict=True)],
        )
    conn.execute("COMMIT")
    return time.perf_counter() - started


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(42)
    queries = [q["query"] for q in load_jsonl(HERE / "queries.jsonl")]
    with tempfile.TemporaryDirectory() as tmp:
        bus = Bus(load_settings(db=Path(tmp) / "bus.sqlite", embeddings_autoindex=False))
        seed_s = seed(bus, args.messages, rng)
        out: dict[str, object] = {"messages": args.messages, "seed_s": round(seed_s, 1)}
        started = time.perf_counter()
        bus.search("warm up the model and the matrix", mode="hybrid")
        out["first_hybrid_query_s"] = round(time.perf_counter() - started, 2)
        for mode in ("fts", "hybrid", "semantic"):
            times = []
            for q in queries:
                started = time.perf_counter()
                bus.search(q, mode=mode, limit=10)
                times.append((time.perf_counter() - started) * 1000)
            out[mode] = percentiles(times)
        bus.close()
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
