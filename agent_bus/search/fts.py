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


PRUNE_FRACTION = 0.1
"""A phrase found in more than this share of the messages is dropped from OR queries."""
PRUNE_MIN_DOCS = 50
"""...and only when that is more than this many messages (tiny buses keep every term)."""


def prune_common(conn: sqlite3.Connection, parts: list[str]) -> list[str]:
    """``parts`` without the phrases too common to rank by (the rarest one always stays).

    Measured on benchmarks/search_eval: at 100,000 messages the OR ranking of a query
    with a common word scores most of the table; dropping such words cuts its cost
    several-fold (docs/benchmarks.md) and changes the ranking little, since bm25 gives
    them almost no weight anyway.
    """
    if len(parts) < 2:
        return parts
    total = fts_stats.message_count_estimate(conn)
    cap = max(PRUNE_MIN_DOCS, int(total * PRUNE_FRACTION))
    if total <= cap:
        return parts
    counts = [fts_stats.doc_count_capped(conn, p, cap) for p in parts]
    kept = [p for p, n in zip(parts, counts, strict=True) if n <= cap]
    if kept:
        return kept
    return [parts[counts.index(min(counts))]]


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
