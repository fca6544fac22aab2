"""How much of the exact top 10 the sign-bit candidate pass keeps, at 100,000 rows.

The 612 real messages of both labelled sets are embedded with the default model and
hidden among 99,388 distractors that look like embeddings (sums of three real vectors
plus noise, normalised), so that real queries have real neighbours and many near
misses. For each of the 187 queries: the exact top 10/50 by cosine over all rows vs the
top after `semantic.VectorIndex`'s pass (Hamming distance of sign bits, then exact
scores of the best CANDIDATES rows). Prints recall of the exact lists and ms per query.

    python benchmarks/search_eval/candidates.py
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

from agent_bus.embeddings.minilm import get_minilm
from agent_bus.search.semantic import _sign_bits

HERE = Path(__file__).resolve().parent
SETS = (HERE, HERE / "set2")


def main() -> None:
    model = get_minilm()
    texts = [
        json.loads(line)["content_markdown"] for s in SETS for line in open(s / "messages.jsonl")
    ]
    queries = [json.loads(line)["query"] for s in SETS for line in open(s / "queries.jsonl")]
    real, qvecs = model.embed(texts), model.embed(queries)
    rng = np.random.default_rng(3)
    n_fake = 100_000 - len(real)
    fake = real[rng.integers(0, len(real), (n_fake, 3))].sum(1)
    fake += rng.standard_normal((n_fake, real.shape[1])).astype(np.float32) * 0.05
    matrix = np.vstack([real, fake]).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    bits = np.stack([_sign_bits(v) for v in matrix])
    for count in (1000, 2000, 4000):
        top10, top50, times = [], [], []
        for q in qvecs:
            exact = np.argsort(-(matrix @ q))[:50]
            started = time.perf_counter()
            distance = np.bitwise_count(bits ^ _sign_bits(q)).sum(axis=1, dtype=np.int32)
            rows = np.argpartition(distance, count - 1)[:count]
            found = rows[np.argsort(-(matrix[rows] @ q))[:50]]
            times.append((time.perf_counter() - started) * 1000)
            top10.append(len(set(exact[:10]) & set(found[:10])) / 10)
            top50.append(len(set(exact) & set(found)) / 50)
        print(
            f"candidates {count}: exact top 10 kept {np.mean(top10):.4f}, "
            f"top 50 kept {np.mean(top50):.4f}, {statistics.median(times):.2f} ms p50"
        )


if __name__ == "__main__":
    main()
