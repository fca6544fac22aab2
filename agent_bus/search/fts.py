"""Turning any user string into a safe FTS5 query.

No query string may raise an FTS5 syntax error, so user text is never passed
through: it is cut into word tokens (the same classes unicode61 uses), each
whitespace-separated chunk becomes a quoted phrase (so ``retry_backoff_ms``
or ``src/store/schema.py`` match their parts in order), and the phrases are
combined with AND (precise) or OR (forgiving, bm25 ranks fuller matches
first).
"""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_PHRASES = 32


def phrases(query: str) -> list[str]:
    """Quoted FTS5 phrases for each whitespace-separated chunk that has words."""
    out: list[str] = []
    for chunk in query.split():
        words = _WORD.findall(chunk)
        if words:
            phrase = '"' + " ".join(words) + '"'
            if phrase not in out:
                out.append(phrase)
        if len(out) >= MAX_PHRASES:
            break
    return out


def match_all(query: str) -> str | None:
    parts = phrases(query)
    return " AND ".join(parts) if parts else None


def match_any(query: str) -> str | None:
    parts = phrases(query)
    return " OR ".join(parts) if len(parts) > 1 else None
