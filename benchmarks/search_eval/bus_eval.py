"""The labelled set through the REAL bus: `Bus.search` per mode and query class.

Loads ``messages.jsonl`` into a fresh bus file (one topic per labelled topic),
indexes it with the background worker's own batch code (`Indexer.run_batch`,
the default model unless ``--model``), then scores every query of
``queries.jsonl`` with ``Bus.search(mode=…)`` using the metrics of
``evaluate.py``. Prints a table and, with ``--json``, writes the figures.

    python benchmarks/search_eval/bus_eval.py [--set SET_DIR] [--model M] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from evaluate import METRICS, evaluate, load_jsonl  # noqa: E402

from agent_bus.bus import Bus  # noqa: E402
from agent_bus.embeddings.indexer import Indexer  # noqa: E402
from agent_bus.models import OutboxItem  # noqa: E402
from agent_bus.settings import load_settings  # noqa: E402


def load_bus(db: Path, messages: list[dict]) -> tuple[Bus, dict[str, str], dict[str, str]]:
    """A bus holding the labelled messages; (bus, bus id -> label id, topic name -> id)."""
    # Queries are embedded in this process (no embedding service), so that a lever that
    # swaps the model or its inputs applies to both sides.
    bus = Bus(load_settings(db=db, embeddings_autoindex=False, embed_service=False))
    topics: dict[str, str] = {}
    to_label: dict[str, str] = {}
    for m in messages:
        if m["topic"] not in topics:
            topics[m["topic"]] = bus.topic_create(m["topic"], mode="new")[0].topic_id
        item = OutboxItem(content_markdown=m["content_markdown"], message_type=m["message_type"])
        (sent,) = bus.post(topics[m["topic"]], m["sender"], [item])
        to_label[sent.message.message_id] = m["id"]
    return bus, to_label, topics


def index(bus: Bus, model: str | None) -> dict[str, float]:
    """Embed the queue with the worker's batch code; throughput excludes the model load."""
    started = time.perf_counter()
    indexer = Indexer.for_model(bus, model)
    indexer.embedder.embed(["warm up"])
    loaded = time.perf_counter()
    done = 0
    while True:
        report = indexer.run_batch()
        if report.processed == 0:
            break
        done += report.embedded
    seconds = time.perf_counter() - loaded
    return {
        "messages": done,
        "load_s": round(loaded - started, 2),
        "index_s": round(seconds, 2),
        "messages_per_s": round(done / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--set", type=Path, default=HERE, help="folder with messages.jsonl + queries.jsonl"
    )
    args = parser.parse_args()
    messages = load_jsonl(args.set / "messages.jsonl")
    queries = load_jsonl(args.set / "queries.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        bus, to_label, topics = load_bus(Path(tmp) / "bus.sqlite", messages)
        indexing = index(bus, args.model)
        modes: dict[str, dict] = {}
        for mode in ("fts", "semantic", "hybrid"):
            latencies: list[float] = []

            def search(
                query: str, topic: str | None, mode: str, limit: int, latencies=latencies
            ) -> list[str]:
                started = time.perf_counter()
                results, _ = bus.search(
                    query,
                    topic_id=topics[topic] if topic else None,
                    mode=mode,
                    limit=limit,
                    model=args.model,
                )
                latencies.append((time.perf_counter() - started) * 1000)
                return [to_label[r.message_id] for r in results]

            result = evaluate(search, mode, queries)
            modes[mode] = {
                "by_class": result.by_class,
                "latency_ms_p50": round(statistics.median(latencies), 2),
            }
        bus.close()
    print(f"indexing: {indexing}")
    print("| mode | class | R@5 | R@10 | MRR@10 | nDCG@10 |")
    print("|---|---|---|---|---|---|")
    for mode, data in modes.items():
        for cls, row in data["by_class"].items():
            cells = " | ".join(f"{row[m]:.3f}" for m in METRICS)
            print(f"| {mode} | {cls} | {cells} |")
    print(
        {m: d["latency_ms_p50"] for m, d in modes.items()},
        f"ms p50 per query ({len(messages)} messages)",
    )
    if args.json:
        args.json.write_text(json.dumps({"indexing": indexing, "modes": modes}, indent=2))


if __name__ == "__main__":
    main()
