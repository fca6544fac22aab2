"""messages_search: one entry point for the MCP tool, the CLI, the web UI and llm.

``fts`` ranks by bm25; ``semantic`` by cosine similarity of the query to each
message's best chunk; ``hybrid`` fuses both rankings (RRF), one hit per
message. Semantic modes need an embedding model: without one, ``hybrid``
answers from full-text search with a warning and ``semantic`` fails with
EMBEDDINGS_UNAVAILABLE saying how to get one.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from agent_bus.embeddings import DEFAULT_MODEL_ID, collection_name
from agent_bus.errors import EmbeddingsUnavailable
from agent_bus.models import SearchResult, Warning
from agent_bus.search import fts
from agent_bus.search.hybrid import FUSION_DEPTH, fts_for_fusion, fts_weight, rrf
from agent_bus.store import embeddings as estore
from agent_bus.store import queries

SNIPPET_CHARS = 240
_SPACE = re.compile(r"\s+")


def fts_results(
    conn: sqlite3.Connection,
    query: str,
    *,
    topic_id: str | None,
    limit: int,
    include_content: bool,
    filters: Any = None,
) -> list[SearchResult]:
    """AND of the query's phrases first, then OR (less too-common ones) to fill ``limit``."""
    seen: dict[str, SearchResult] = {}
    for step in (fts.match_all, lambda q: fts.match_any_pruned(conn, q)):
        if len(seen) >= limit:
            break
        match = step(query)
        if match is None:
            continue
        for row in queries.fts_search(conn, match, topic_id=topic_id, limit=limit, filters=filters):
            if row["message_id"] in seen or len(seen) >= limit:
                continue
            seen[row["message_id"]] = _fts_result(row, include_content)
    return list(seen.values())


def _result(
    row: sqlite3.Row, *, snippet: str, include_content: bool, **scores: float | None
) -> SearchResult:
    """A result from a message row joined with its topic name; ``scores`` say why it matched."""
    return SearchResult(
        topic_id=row["topic_id"],
        topic_name=row["topic_name"],
        message_id=row["message_id"],
        seq=row["seq"],
        sender=row["sender"],
        message_type=row["message_type"],
        created_at=row["created_at"],
        snippet=snippet,
        content_markdown=row["content_markdown"] if include_content else None,
        **scores,
    )


def _fts_result(row: sqlite3.Row, include_content: bool) -> SearchResult:
    return _result(
        row,
        snippet=row["snippet"] or "",
        include_content=include_content,
        rank=row["rank"],
        fts_rank=row["rank"],
    )


# --- semantic ----------------------------------------------------------------------------------


class SemanticSide:
    """What the semantic half of a search found, and the notes it has for the caller."""

    def __init__(self) -> None:
        self.hits: list[Any] = []  # semantic.Hit, best first
        self.warnings: list[Warning] = []
        self.model_id: str | None = None
        self.meanwhile: Any = None  # what the caller's `meanwhile` returned


_pool: Any = None
_pool_lock = threading.Lock()


def _embed_pool() -> Any:
    """Threads that embed queries while the caller's thread ranks with bm25."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                from concurrent.futures import ThreadPoolExecutor

                _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="agent-bus-query")
    return _pool


def _collection_for(conn: sqlite3.Connection, model_id: str) -> tuple[int, str] | None:
    """The collection with this model's vectors: ours, else one a user filled with llm."""
    name = collection_name(model_id)
    cid = estore.collection_id(conn, name)
    if cid is not None:
        return cid, name
    others = estore.collections_for_model(conn, model_id)
    return others[0] if others else None


def semantic_hits(
    conn: sqlite3.Connection,
    query: str,
    *,
    topic_id: str | None,
    limit: int,
    model: str | None,
    settings: Any,
    engine: Any,
    meanwhile: Callable[[], Any] | None = None,
    filters: Any = None,
) -> SemanticSide:
    """Top messages by cosine similarity (raises EmbeddingsUnavailable / InvalidArgument).

    ``meanwhile`` (the hybrid's bm25 ranking) runs on this thread while another embeds
    the query: the two take similar time, so a hybrid search costs about one of them.
    Its result is ``side.meanwhile``; it also runs when there is nothing to search.
    """
    from agent_bus.embeddings.models import default_model_id, get_embedder

    side = SemanticSide()
    collection: tuple[int, str] | None = None
    model_id = default_model_id(settings.embedding_model if settings else None)
    if model is not None:
        # A collection name (e.g. from `llm embed-multi`) selects that collection's model.
        named = estore.collection_by_name(conn, model)
        if named is not None:
            collection, model_id = (named[0], model), named[1]
        else:
            model_id = model
    embedder = get_embedder(model_id, explicit=model is not None)
    side.model_id = embedder.model_id
    if collection is None:
        collection = _collection_for(conn, embedder.model_id)
    if collection is None:
        side.warnings.append(
            Warning(
                code="EMBEDDINGS_NOT_INDEXED",
                message=f"no message is embedded with {embedder.model_id} yet: the background "
                "indexer builds the index, or run `agent-bus embeddings index`.",
                context={"model": embedder.model_id},
            )
        )
        side.meanwhile = meanwhile() if meanwhile is not None else None
        return side
    background = default_model_id(settings.embedding_model if settings else None)
    if embedder.model_id == background:
        pending = estore.pending_count(conn)
        if pending:
            side.warnings.append(
                Warning(
                    code="EMBEDDINGS_PARTIAL",
                    message=f"{pending} message(s) are still queued for embedding; semantic "
                    "results may miss them.",
                    context={"pending": pending, "model": embedder.model_id},
                )
            )
    future = _embed_pool().submit(_query_vector, embedder, query, settings)
    try:
        side.meanwhile = meanwhile() if meanwhile is not None else None
        index = engine.index(conn, *collection)
    finally:
        failure = future.exception()  # always wait: the query thread must not outlive us
    if failure is not None:
        raise EmbeddingsUnavailable(
            f"embedding model {embedder.model_id} failed on the query: "
            f"{type(failure).__name__}: {failure}",
            model=embedder.model_id,
        ) from failure
    vector = future.result()
    allowed = None if filters is None else estore.message_ids_where(conn, topic_id, filters)
    side.hits = index.search(vector, topic_id=topic_id, limit=limit, allowed=allowed)
    return side


def _query_vector(embedder: Any, query: str, settings: Any) -> Any:
    """The query's vector: from the database's embedding service when it serves this model.

    The bus's background model (AGENT_BUS_EMBEDDING_MODEL or the default) is embedded by
    the embedding service, so a stdio server never loads it; another model, a disabled or
    unreachable service, embed in this process (logged by the client).
    """
    from agent_bus.embeddings.models import default_model_id

    if settings is not None and embedder.model_id == default_model_id(settings.embedding_model):
        from agent_bus.embeddings.client import ServiceError, embed_via_service

        try:
            vectors = embed_via_service(settings, embedder.model_id, [query])
        except ServiceError as exc:
            raise RuntimeError(exc.message) from None
        if vectors is not None:
            return vectors[0]
    return embedder.embed([query])[0]


def _excerpt(text: str) -> str:
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rstrip() + "…"


def _best_chunk(content: str, chunk: int, settings: Any) -> str:
    if chunk > 0 and settings is not None:
        from agent_bus.embeddings.chunking import embedded_pieces

        chunks, passages = embedded_pieces(
            content, settings.chunk_chars, settings.chunk_overlap_chars
        )
        pieces = chunks + passages
        if chunk < len(pieces):
            return pieces[chunk]
    return content


def _semantic_results(
    conn: sqlite3.Connection, hits: list[Any], include_content: bool, settings: Any
) -> list[SearchResult]:
    rows = estore.result_rows(conn, [h.message_id for h in hits])
    out = []
    for hit in hits:
        row = rows.get(hit.message_id)
        if row is None:
            continue  # a vector whose message is gone
        out.append(
            _result(
                row,
                snippet=_excerpt(_best_chunk(row["content_markdown"], hit.chunk, settings)),
                include_content=include_content,
                rank=hit.score,
                semantic_score=_cosine(hit),
            )
        )
    return out


def _cosine(hit: Any) -> float:
    """The hit's cosine similarity (its rank may include the thread-neighbour term)."""
    return hit.score if hit.cosine is None else hit.cosine


def _unavailable_warning(exc: EmbeddingsUnavailable) -> Warning:
    return Warning(
        code="SEMANTIC_UNAVAILABLE",
        message=f"answered from full-text search only: {exc.message}",
        context={k: v for k, v in exc.details.items() if k in ("missing", "model")} or None,
    )


# --- entry point -------------------------------------------------------------------------------


def search(
    conn: sqlite3.Connection,
    query: str,
    *,
    mode: str,
    topic_id: str | None,
    limit: int,
    include_content: bool,
    model: str | None = None,
    settings: Any = None,
    engine: Any = None,
    filters: Any = None,
) -> tuple[list[SearchResult], list[Warning]]:
    """Run a validated search.

    Args:
        settings: the bus's `BusSettings` (embedding model, chunking); None = defaults.
        engine: the caller's `semantic.SemanticEngine` (vector caches); None = a fresh one.
        filters: a `filters.SearchFilters` (sender, type, time range) or None.

    Raises:
        EmbeddingsUnavailable: ``mode="semantic"`` and no embedding model can be used.
        InvalidArgument: ``model`` names no installed embedding model.
    """
    if mode == "fts":
        return fts_results(
            conn,
            query,
            topic_id=topic_id,
            limit=limit,
            include_content=include_content,
            filters=filters,
        ), []
    if engine is None:
        from agent_bus.search.semantic import SemanticEngine

        engine = SemanticEngine()
    depth = limit if mode == "semantic" else max(limit, FUSION_DEPTH)

    def rank_fts() -> tuple[str | None, list[tuple[str, float]]]:
        match = fts.match_or_pruned(conn, query)
        if match is None:
            return None, []
        return match, estore.fts_ranking(
            conn, match, topic_id=topic_id, limit=FUSION_DEPTH, filters=filters
        )

    try:
        side = semantic_hits(
            conn,
            query,
            topic_id=topic_id,
            limit=depth,
            model=model,
            settings=settings,
            engine=engine,
            meanwhile=rank_fts if mode == "hybrid" else None,
            filters=filters,
        )
    except EmbeddingsUnavailable as exc:
        if mode == "semantic":
            raise
        results = fts_results(
            conn,
            query,
            topic_id=topic_id,
            limit=limit,
            include_content=include_content,
            filters=filters,
        )
        return results, [_unavailable_warning(exc)]
    if mode == "semantic":
        return _semantic_results(conn, side.hits, include_content, settings), side.warnings
    match, fts_ranked = side.meanwhile
    fused = rrf(
        [fts_for_fusion(query, fts_ranked), [h.message_id for h in side.hits]],
        weights=(fts_weight(query), 1.0),
    )
    top = fused[:limit]
    in_fts = {mid for mid, _ in fts_ranked}
    hit_of = {h.message_id: h for h in side.hits}
    by_fts = estore.fts_rows_for(conn, match, [m for m, _ in top if m in in_fts]) if match else {}
    semantic_only = [hit_of[mid] for mid, _ in top if mid not in by_fts and mid in hit_of]
    extra = _semantic_results(conn, semantic_only, include_content, settings)
    sem = {r.message_id: r for r in extra}
    results: list[SearchResult] = []
    for mid, score in top:
        if mid in by_fts:
            result = _fts_result(by_fts[mid], include_content)
            hit = hit_of.get(mid)
            result.semantic_score = None if hit is None else _cosine(hit)
        elif mid in sem:
            result = sem[mid]
            result.fts_rank = None
        else:
            continue
        result.rank = score
        results.append(result)
    return results, side.warnings


__all__ = ["DEFAULT_MODEL_ID", "fts_results", "search"]
