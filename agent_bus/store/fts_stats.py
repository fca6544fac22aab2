"""Cheap statistics of the full-text index, for pruning query terms before ranking.

bm25 scores every document that matches any term of an OR query, so one common word
("review", "message", "the") makes a query over 100,000 messages cost tens of
milliseconds while adding almost nothing to the ranking (its idf is near zero).
"""

from __future__ import annotations

import sqlite3


def doc_count_capped(conn: sqlite3.Connection, match: str, cap: int) -> int:
    """How many messages match ``match`` (an FTS5 phrase), counting at most ``cap + 1``.

    Walking a doclist without scoring is cheap, and the cap bounds it: a term that is in
    half of a million messages costs no more than one just above the cap.
    """
    return conn.execute(
        "SELECT COUNT(*) FROM (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? LIMIT ?)",
        (match, cap + 1),
    ).fetchone()[0]
