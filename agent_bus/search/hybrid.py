"""Reciprocal-rank fusion of the full-text and semantic rankings."""

from __future__ import annotations

from collections.abc import Sequence

RRF_K = 60
"""The usual constant (Cormack et al. 2009); benchmarks/search_eval used it too."""
FUSION_DEPTH = 50
"""How many hits of each ranking enter the fusion."""


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score(d) = sum of 1 / (k + rank), rank from 1; best first.

    An id appears once in the result however many lists hold it; ties keep the
    order in which ids were first seen (the first list wins).
    """
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    order = {doc_id: i for i, doc_id in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))
