"""messages_search: one entry point for the MCP tool, the CLI and the web UI."""

from __future__ import annotations

import sqlite3

from agent_bus.models import SearchResult, Warning
from agent_bus.search import fts
from agent_bus.store import queries


def fts_results(
    conn: sqlite3.Connection,
    query: str,
    *,
    topic_id: str | None,
    limit: int,
    include_content: bool,
) -> list[SearchResult]:
    """AND of the query's phrases first, then OR to fill up to ``limit``."""
    seen: dict[str, SearchResult] = {}
    for match in (fts.match_all(query), fts.match_any(query)):
        if match is None or len(seen) >= limit:
            continue
        for row in queries.fts_search(conn, match, topic_id=topic_id, limit=limit):
            if row["message_id"] in seen or len(seen) >= limit:
                continue
            seen[row["message_id"]] = SearchResult(
                topic_id=row["topic_id"],
                topic_name=row["topic_name"],
                message_id=row["message_id"],
                seq=row["seq"],
                sender=row["sender"],
                message_type=row["message_type"],
                created_at=row["created_at"],
                snippet=row["snippet"] or "",
                rank=row["rank"],
                fts_rank=row["rank"],
                content_markdown=row["content_markdown"] if include_content else None,
            )
    return list(seen.values())


def search(
    conn: sqlite3.Connection,
    query: str,
    *,
    mode: str,
    topic_id: str | None,
    limit: int,
    include_content: bool,
    model: str | None = None,
) -> tuple[list[SearchResult], list[Warning]]:
    """Run a validated search; semantic modes fall back to FTS until embeddings exist."""
    warnings: list[Warning] = []
    if mode != "fts":
        warnings.append(
            Warning(
                code="SEMANTIC_UNAVAILABLE",
                message=f"mode={mode} answered from full-text search only: no embeddings index "
                "is available yet.",
            )
        )
    return fts_results(
        conn, query, topic_id=topic_id, limit=limit, include_content=include_content
    ), warnings
