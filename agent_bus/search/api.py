"""The search entry point of the doors: the contract's argument checks, then one snapshot.

`messages_search`, `agent-bus search` and the web search page all come here, so
every door refuses the same bad arguments with the same `INVALID_ARGUMENT`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent_bus.embeddings.autostart import start_if_pending
from agent_bus.errors import InvalidArgument
from agent_bus.models import SearchResult, Warning
from agent_bus.search.filters import SearchFilters, parse_time
from agent_bus.service import topics
from agent_bus.service.checks import (
    MAX_SEARCH_LIMIT,
    check_bool,
    check_int,
    check_name,
    check_text,
)
from agent_bus.settings import BusSettings
from agent_bus.store.database import Database

MODES = ("hybrid", "fts", "semantic")


def search_bus(
    db: Database,
    settings: BusSettings,
    semantic_engine: Callable[[], Any],
    query: object,
    *,
    topic_id: object = None,
    mode: object = "hybrid",
    limit: object = 20,
    model: object = None,
    include_content: object = False,
    sender: object = None,
    message_type: object = None,
    created_after: object = None,
    created_before: object = None,
) -> tuple[list[SearchResult], list[Warning]]:
    """Check the arguments, then search the bus (across topics unless ``topic_id``).

    ``sender``, ``message_type`` and ``created_after``/``created_before`` (ISO 8601 or unix
    seconds, exclusive) narrow the results; all optional.

    ``semantic_engine`` gives the caller's long-lived vector caches; it is called only
    for modes that need them.
    """
    from agent_bus.search.service import search

    text = check_text(query, "query")
    if len(text) > settings.max_query_chars:
        raise InvalidArgument(
            f"query must be <= {settings.max_query_chars} characters", field="query"
        )
    if mode not in MODES:
        raise InvalidArgument("mode must be 'hybrid', 'fts' or 'semantic'", field="mode")
    lim = check_int(limit, "limit", minimum=1, maximum=MAX_SEARCH_LIMIT)
    with_content = check_bool(include_content, "include_content")
    if model is not None:
        check_name(model, "model", 200)
    tid = None if topic_id is None else topics.get(db, topic_id).topic_id
    filters = SearchFilters(
        sender=None if sender is None else check_name(sender, "sender", 200),
        message_type=None if message_type is None else check_name(message_type, "message_type", 64),
        created_after=parse_time(created_after, "created_after"),
        created_before=parse_time(created_before, "created_before"),
    )
    engine = None
    if mode != "fts":
        engine = semantic_engine()
        start_if_pending(db.read, settings)
    return db.read(
        lambda c: search(
            c,
            text,
            mode=str(mode),
            topic_id=tid,
            limit=lim,
            include_content=with_content,
            model=model,  # type: ignore[arg-type]
            settings=settings,
            engine=engine,
            filters=None if filters.empty else filters,
        )
    )


def related_bus(
    db: Database,
    settings: BusSettings,
    semantic_engine: Callable[[], Any],
    *,
    message_id: object = None,
    topic_id: object = None,
    in_topic: object = None,
    limit: object = 10,
    include_content: object = False,
) -> tuple[list[SearchResult], list[Warning]]:
    """Check the arguments, then find the messages nearest in meaning to a message (in any
    topic, or ``in_topic``) or to a topic as a whole (in the other topics)."""
    from agent_bus.search.related import related

    if (message_id is None) == (topic_id is None):
        raise InvalidArgument("give either message_id or topic_id", field="message_id")
    mid = None if message_id is None else check_name(message_id, "message_id", 200)
    tid = None if topic_id is None else topics.get(db, topic_id).topic_id
    scope = None if in_topic is None else topics.get(db, in_topic).topic_id
    lim = check_int(limit, "limit", minimum=1, maximum=MAX_SEARCH_LIMIT)
    with_content = check_bool(include_content, "include_content")
    engine = semantic_engine()
    start_if_pending(db.read, settings)
    return db.read(
        lambda c: related(
            c,
            message_id=mid,
            topic_id=tid,
            in_topic=scope,
            limit=lim,
            include_content=with_content,
            settings=settings,
            engine=engine,
        )
    )
