"""Related messages: the messages nearest in meaning to a message, or to a whole topic.

"This was decided before in topic X": the message's own stored vector (the mean of its
chunks; a topic's is the mean of its messages') is scored against every other message,
with no full-text side and no query feedback. A message not embedded yet is embedded
on the spot like a query.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from agent_bus.errors import InvalidArgument
from agent_bus.models import SearchResult, Warning
from agent_bus.search import service
from agent_bus.store import embeddings as estore


def related(
    conn: sqlite3.Connection,
    *,
    message_id: str | None = None,
    topic_id: str | None = None,
    in_topic: str | None = None,
    limit: int,
    include_content: bool,
    settings: Any,
    engine: Any,
) -> tuple[list[SearchResult], list[Warning]]:
    """Messages like ``message_id`` (any topic, or ``in_topic``), or like the topic
    ``topic_id`` as a whole (other topics only); never the message or topic itself.

    Raises:
        EmbeddingsUnavailable: no embedding model can be used.
        InvalidArgument: no message has this id.
    """
    from agent_bus.embeddings.models import default_model_id, get_embedder

    source: sqlite3.Row | None = None
    if message_id is not None:
        source = estore.result_rows(conn, [message_id]).get(message_id)
        if source is None:
            raise InvalidArgument(f"no message with id {message_id!r}", field="message_id")
    embedder = get_embedder(default_model_id(settings.embedding_model), explicit=False)
    collection = service._collection_for(conn, embedder.model_id)
    if collection is None:
        return [], [
            Warning(
                code="EMBEDDINGS_NOT_INDEXED",
                message=f"no message is embedded with {embedder.model_id} yet",
                context={"model": embedder.model_id},
            )
        ]
    index = engine.index(conn, *collection)
    if source is not None:
        vector = index.vector_of([source["message_id"]])
        if vector is None:
            vector = service._query_vector(embedder, source["content_markdown"], settings)
        skip = {source["message_id"]}
        hits = index.search(vector, topic_id=in_topic, limit=limit + 1, feedback=False)
    else:
        ids = estore.topic_message_ids(conn, topic_id)
        vector = index.vector_of(ids)
        if vector is None:
            return [], []
        skip = set()
        hits = index.search(
            vector, topic_id=None, limit=limit, feedback=False, exclude_topic=topic_id
        )
    hits = [h for h in hits if h.message_id not in skip][:limit]
    return service._semantic_results(conn, hits, include_content, settings), []
