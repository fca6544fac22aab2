"""Queued messages get embedded without a user starting anything.

The MCP server's lifespan runs this: by default it only starts the database's
embedding service (a separate process) when due jobs wait and no live lease
holder takes them, so the model never loads in a server process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from agent_bus.bus import Bus
from agent_bus.settings import BusSettings

logger = logging.getLogger(__name__)


def background_indexing(bus: Bus, settings: BusSettings) -> Any:
    """Lifespan: see that queued messages get embedded — never in this process by default.

    With ``embed_service`` on (the default) a small asyncio task looks, every
    ``embed_service_check_seconds``, for due jobs that no live indexing lease covers
    (one indexed SQL probe) and then starts the database's embedding service, detached;
    the model lives only there. With it off, the in-process `BackgroundIndexer` of old.
    Both start ``index_start_delay_seconds`` after start, off the cold-start path.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_server: Any) -> AsyncIterator[dict[str, Any]]:
        worker: list[Any] = []
        task: asyncio.Task[None] | None = None
        handle = None
        if settings.embeddings_autoindex:
            if settings.embed_service and _service_supported():
                task = asyncio.create_task(_watch_index_queue(bus, settings))
            else:

                def start() -> None:
                    from agent_bus.embeddings.worker import (
                        BackgroundIndexer,
                        available_without_import,
                    )

                    if available_without_import(settings.embedding_model):
                        worker.append(BackgroundIndexer(bus).start())

                loop = asyncio.get_running_loop()
                handle = loop.call_later(settings.index_start_delay_seconds, start)
        try:
            yield {}
        finally:
            if handle is not None:
                handle.cancel()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for w in worker:
                await asyncio.to_thread(w.stop)

    return lifespan


def _service_supported() -> bool:
    from agent_bus.embeddings.client import supported

    return supported()


async def _watch_index_queue(bus: Bus, settings: BusSettings) -> None:
    """Start the embedding service when due jobs wait and no live lease holder takes them."""
    await asyncio.sleep(settings.index_start_delay_seconds)
    from agent_bus.embeddings.worker import LEASE_NAME, available_without_import

    if not available_without_import(settings.embedding_model):
        return
    from agent_bus.embeddings import client
    from agent_bus.store import embeddings as estore

    def needed(conn: Any) -> bool:
        return estore.service_needed(conn, LEASE_NAME, time.time())

    while True:
        try:
            if await bus.run(bus.read, needed):
                await bus.run(client.spawn, settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a background check: log, look again later
            logger.warning("embedding service check failed: %s", exc)
        await asyncio.sleep(settings.embed_service_check_seconds)
