"""Reciprocal-rank fusion of the full-text and semantic rankings."""

from __future__ import annotations

import re
from collections.abc import Sequence

RRF_K = 60
"""The usual constant (Cormack et al. 2009); benchmarks/search_eval used it too."""
FUSION_DEPTH = 50
"""How many hits of each ranking enter the fusion."""
PROSE_FTS_WEIGHT = 0.1
"""Weight of the full-text ranking for queries in plain words (see `fts_weight`). On the
tuning set (with context-line embeddings): 0.25 -> 0.1 raised paraphrase recall@10 from
0.508 to 0.573 (semantic alone: 0.585) with keyword recall at full-text's level (0.868);
0 loses keyword recall (0.833). Plain RRF (1.0) had paraphrase at 0.296 in phase 1."""


PROSE_FTS_DEPTH = FUSION_DEPTH
"""How many full-text hits of a plain-word query enter the fusion."""
PROSE_BM25_FLOOR = 0.0
"""For plain-word queries, keep only full-text hits scoring at least this share of the best
bm25 (0 keeps all): a hit that shares one common word with the query is noise there."""


def fts_for_fusion(query: str, ranked: Sequence[tuple[str, float]]) -> list[str]:
    """The full-text hits (id, bm25 best first) that enter the fusion, by query shape."""
    if is_identifier_query(query) or not ranked:
        return [mid for mid, _ in ranked]
    best = ranked[0][1]  # FTS5's bm25 is negative: lower is better
    kept = [mid for mid, score in ranked if score <= best * PROSE_BM25_FLOOR]
    return kept[:PROSE_FTS_DEPTH]


def rrf(
    rankings: Sequence[Sequence[str]],
    k: int = RRF_K,
    weights: Sequence[float] | None = None,
) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score(d) = sum of w / (k + rank), rank from 1; best first.

    An id appears once in the result however many lists hold it; ties keep the
    order in which ids were first seen (the first list wins).
    """
    scores: dict[str, float] = {}
    for i, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[i]
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
    order = {doc_id: i for i, doc_id in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


# Backticks, snake_case / paths / dotted names / key:value, camelCase, numbers, and --flags
# (a dash that starts a token: "re-sending" and "sign-in" are prose).
_IDENTIFIER = re.compile(r"`|\w[_./:]+\w|[a-z][A-Z]|\b\w*\d\w*\b|(?<![\w-])--?[A-Za-z]")
_SHORT_ONLY = re.compile(r"\b[A-Z]{2,}\w*\b|\w-\w")
SHORT_QUERY_WORDS = 3
"""An all-capitals word (WAL, CI) or a hyphenated one (Retry-After) marks an identifier
query only in a query this short: in a sentence it is prose ("the GUI complains", "more
RAM", "re-sending")."""


def fts_weight(query: str) -> float:
    """How much the full-text ranking counts in the fusion, by the query's shape.

    Identifiers, paths, flags, codes and numbers are what full-text search finds
    exactly; for a query in plain words its matches on common words mostly add
    noise to the semantic ranking (measured on benchmarks/search_eval).
    """
    return 1.0 if is_identifier_query(query) else PROSE_FTS_WEIGHT


def is_identifier_query(query: str) -> bool:
    """The query has a token shaped like an identifier, path, flag, code or number."""
    if _IDENTIFIER.search(query) is not None:
        return True
    return len(query.split()) <= SHORT_QUERY_WORDS and _SHORT_ONLY.search(query) is not None
