"""Embeddings administration for the CLI and ``llm agent-bus``: status, index, drop."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agent_bus.embeddings import DEFAULT_MODEL_ID, collection_name, missing_default_modules
from agent_bus.embeddings.worker import LEASE_NAME
from agent_bus.errors import InvalidArgument
from agent_bus.store import embeddings as store


def status(bus: Any) -> dict[str, Any]:
    """Collections, queue, failures and the lease holder of a bus database."""
    now = time.time()

    def read(conn: Any) -> dict[str, Any]:
        lease = store.get_lease(conn, LEASE_NAME)
        if lease is not None:
            lease["alive"] = lease["expires_at"] > now
        return {
            "messages": store.message_count(conn),
            "collections": store.collection_summaries(conn),
            "jobs": store.job_counts(conn, now),
            "failures": store.failed_jobs(conn),
            "lease": lease,
            "passages": _passages(conn),
        }

    data = bus.read(read)
    data["default_model"] = DEFAULT_MODEL_ID
    data["model"] = bus.settings.embedding_model or DEFAULT_MODEL_ID
    data["collection"] = collection_name(data["model"])
    data["default_model_missing"] = missing_default_modules()
    data["autoindex"] = bus.settings.embeddings_autoindex
    data["service"] = service_status(bus.settings)
    return data


def _passages(conn: Any) -> dict[str, Any] | None:
    """The bundled model's collection: whether every message has its passages, and how
    many an older version embedded without them (None: no such collection)."""
    cid = store.collection_id(conn, collection_name(DEFAULT_MODEL_ID))
    if cid is None:
        return None
    if store.passages_done(conn, cid):
        return {"done": True, "pending": 0}
    return {"done": False, "pending": store.count_without_passages(conn, cid)}


def service_status(settings: Any) -> dict[str, Any]:
    """The database's embedding service: enabled, socket, log, and its own status if running."""
    from agent_bus.embeddings import client

    info: dict[str, Any] = {
        "enabled": bool(settings.embed_service) and client.supported(),
        "socket": None,
        "log": client.log_path(settings.db),
        "running": False,
        "pid": None,
        "state": None,
        "queries": None,
    }
    if not info["enabled"]:
        return info
    info["socket"] = client.socket_path(settings.db)
    live = client.status(settings.db)
    if live is not None:
        info.update(
            running=True, pid=live.get("pid"), state=live.get("state"), queries=live.get("queries")
        )
    return info


def index(
    bus: Any,
    *,
    model: str | None = None,
    rebuild: bool = False,
    on_start: Callable[[int], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Embed, in the foreground, every message the model's collection lacks.

    Args:
        model: an llm embedding model id (default: AGENT_BUS_EMBEDDING_MODEL or the bundled
            model).
        rebuild: drop the collection's vectors first and embed everything again.
        on_start: called with the number of messages to embed.
        progress: called after each batch with (embedded, failed) of that batch.

    Raises:
        EmbeddingsUnavailable, InvalidArgument: the model cannot be used.
    """
    from agent_bus.embeddings.indexer import Indexer

    started = time.perf_counter()
    indexer = Indexer.for_model(bus, model, explicit=model is not None)
    if rebuild:

        def clear(conn: Any) -> None:
            conn.execute("DELETE FROM embeddings WHERE collection_id = ?", (indexer.collection_id,))
            if indexer.owns_queue:
                store.retry_failed(conn, time.time())

        bus.write(clear)
    todo = indexer.missing()
    if on_start is not None:
        on_start(todo)
    report = indexer.index_missing(
        None if progress is None else lambda step: progress(step.embedded, step.failed)
    )
    seconds = time.perf_counter() - started
    return {
        "model": indexer.embedder.model_id,
        "collection": collection_name(indexer.embedder.model_id),
        "embedded": report.embedded,
        "failed": report.failed,
        "errors": report.errors,
        "seconds": round(seconds, 3),
    }


def drop(bus: Any, model: str) -> dict[str, Any]:
    """Remove a model's collection (or a collection named ``model``) from the bus database.

    Raises:
        InvalidArgument: there is no such collection.
    """
    names = [model, collection_name(model)]

    def tx(conn: Any) -> dict[str, Any] | None:
        for name in names:
            removed = store.drop_collection(conn, name)
            if removed is not None:
                return {"collection": name, "rows": removed}
        return None

    result = bus.write(tx)
    if result is None:
        existing = [c["name"] for c in bus.read(store.collection_summaries)]
        raise InvalidArgument(
            f"no collection for {model!r} in this bus; collections: "
            + (", ".join(existing) if existing else "none"),
            field="model",
        )
    return result
