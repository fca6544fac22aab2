"""Start the database's embedding service when queued messages wait and nobody embeds them.

The MCP server checks this on a timer; a door that opens the bus for semantic search (the web
UI, ``agent-bus search``) checks it once per search, so a bus whose servers have all exited
(the demo's, say) still gets its messages embedded. The check is one indexed SQL probe; the
service itself runs detached, so the caller never loads the model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def start_if_pending(read: Callable[[Callable[[Any], Any]], Any], settings: Any) -> bool:
    """Start the embedding service if due jobs wait and no live lease holder takes them.

    ``read`` runs a function on a database connection (``Database.read``). Returns True when
    a service was started (or one was started moments ago by this process). Never raises:
    a failed check is logged and searching goes on.
    """
    if settings is None or not settings.embeddings_autoindex or not settings.embed_service:
        return False
    try:
        from agent_bus.embeddings import client

        if not client.supported():
            return False
        from agent_bus.embeddings.worker import LEASE_NAME, available_without_import

        if not available_without_import(settings.embedding_model):
            return False
        from agent_bus.store import embeddings as estore

        if not read(lambda conn: estore.service_needed(conn, LEASE_NAME, time.time())):
            return False
        return client.spawn(settings) is not None
    except Exception as exc:  # noqa: BLE001 - a side check must never fail a search
        logger.warning("could not check or start the embedding service: %s", exc)
        return False
