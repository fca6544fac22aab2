"""Turning any user string into a safe FTS5 query.

No query string may raise an FTS5 syntax error, so user text is never passed
through: it is cut into word tokens (the same classes unicode61 uses), each
whitespace-separated chunk becomes a quoted phrase (so ``retry_backoff_ms``
or ``src/store/schema.py`` match their parts in order), and the phrases are
combined with AND (precise) or OR (forgiving, bm25 ranks fuller matches
first). Chunks that are only English function words are dropped unless
nothing else is left: measured on benchmarks/search_eval, keeping them lets
bm25 rank any message with a "the" or "how" into the hybrid fusion
(paraphrase recall@10 0.230 with them, 0.296 without).
"""

from __future__ import annotations

import re
import sqlite3

from agent_bus.store import fts_stats

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_PHRASES = 32

# Short on purpose: identifiers are never stop-words.
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


def phrases(query: str, *, drop_stopwords: bool = True) -> list[str]:
    """Quoted FTS5 phrases for each whitespace-separated chunk that has words."""
    out: list[str] = []
    stop: list[str] = []
    for chunk in query.split():
        words = _WORD.findall(chunk)
        if not words:
            continue
        phrase = '"' + " ".join(words) + '"'
        if phrase in out or phrase in stop:
            continue
        is_stop = drop_stopwords and all(w.lower() in STOPWORDS for w in words)
        (stop if is_stop else out).append(phrase)
        if len(out) >= MAX_PHRASES:
            break
    return out or stop[:MAX_PHRASES]


def match_all(query: str) -> str | None:
    parts = phrases(query)
    return " AND ".join(parts) if parts else None


def match_any(query: str) -> str | None:
    """OR of the phrases; None when there is at most one (then it equals match_all)."""
    parts = phrases(query)
    return " OR ".join(parts) if len(parts) > 1 else None


def match_or(query: str) -> str | None:
    """OR of the phrases (a single phrase alone), None when the query has no words."""
    parts = phrases(query)
    return " OR ".join(parts) if parts else None


PRUNE_BUDGET_DOCS = 5000
"""How many matching messages an OR ranking may score: the phrases are kept rarest first
while the sum of their document counts stays within it (the rarest one always stays).
bm25 costs about 1.5 ms per 1,000 matches on 2 cores, so this bounds the full-text side
near 10 ms at any size; a bus with fewer matches than this is never pruned."""


def prune_common(conn: sqlite3.Connection, parts: list[str]) -> list[str]:
    """``parts`` without the phrases too common to be worth ranking by, in their order.

    Measured at 100,000 messages (benchmarks/search_eval/latency.py): an OR query whose
    words each occur in 3-9 % of the messages scored 20-30k documents (25-45 ms); bm25
    gives such words little weight, so the top of the ranking is decided by the rare ones.
    """
    if len(parts) < 2:
        return parts
    counts = [fts_stats.doc_count_capped(conn, p, PRUNE_BUDGET_DOCS) for p in parts]
    if sum(counts) <= PRUNE_BUDGET_DOCS:
        return parts
    kept: set[int] = set()
    total = 0
    for n, i in sorted((n, i) for i, n in enumerate(counts)):
        if kept and total + n > PRUNE_BUDGET_DOCS:
            break
        kept.add(i)
        total += n
    return [p for i, p in enumerate(parts) if i in kept]


def match_or_pruned(conn: sqlite3.Connection, query: str) -> str | None:
    """`match_or` of the query's phrases less the too-common ones."""
    parts = prune_common(conn, phrases(query))
    return " OR ".join(parts) if parts else None


def match_any_pruned(conn: sqlite3.Connection, query: str) -> str | None:
    """`match_any` (OR of two or more phrases, else None) less the too-common phrases."""
    parts = phrases(query)
    if len(parts) < 2:
        return None
    return " OR ".join(prune_common(conn, parts))
