"""The background indexer: one lease holder per database embeds queued messages.

Every server runs a `BackgroundIndexer`. Its lease thread tries to take the
lease ``index`` in ``embedding_leases`` every third of the TTL; the holder
renews it at that pace (its heartbeat), and when a holder dies without
releasing it, the lease expires after the TTL and another server takes it
over. Only the holder's index thread embeds, in batches, from the job queue
that the ``messages`` insert trigger fills. A model that raises is retried
with backoff up to ``embed_max_attempts``; nothing here ever reaches a tool
call, and a failing model never stops the bus.

This module imports only the standard library: a server imports it a few
seconds after start, and numpy/onnxruntime/llm only load once the lease
holder has something to embed.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from typing import Any

from agent_bus.embeddings import DEFAULT_MODEL_ID
from agent_bus.errors import BusError
from agent_bus.store import embeddings as store

logger = logging.getLogger(__name__)

LEASE_NAME = "index"


class BackgroundIndexer:
    """Lease + heartbeat + batch embedding, on two daemon threads of one server process."""

    def __init__(self, bus: Any, *, model_id: str | None = None) -> None:
        self.bus = bus
        self.settings = bus.settings
        self.model_id = model_id or self.settings.embedding_model
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.state = "starting"  # follower | leader | unavailable | stopped
        self.last_error: str | None = None
        self.embedded = 0
        self._refresh_after: int | None = None  # rowid the passages pass has reached
        self._stop = threading.Event()
        self._leader = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> BackgroundIndexer:
        for target, name in ((self._lease_loop, "lease"), (self._index_loop, "index")):
            thread = threading.Thread(target=target, name=f"agent-bus-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads and hand the lease back so another server takes over at once."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._leader.is_set():
            self._leader.clear()
            try:
                self.bus.write(lambda c: store.release_lease(c, LEASE_NAME, self.holder))
            except (BusError, sqlite3.Error) as exc:  # the TTL frees it anyway
                logger.warning("could not release the indexing lease: %s", exc)
        self.state = "stopped"

    @property
    def is_leader(self) -> bool:
        return self._leader.is_set()

    # --- lease ------------------------------------------------------------------------------

    def _beat(self) -> float:
        return max(0.2, self.settings.index_lease_ttl_seconds / 3)

    def _renew(self) -> bool:
        ttl = float(self.settings.index_lease_ttl_seconds)
        model = self.model_id or "default"

        def tx(conn: Any) -> bool:
            return store.try_acquire_lease(
                conn,
                LEASE_NAME,
                holder=self.holder,
                pid=os.getpid(),
                host=socket.gethostname(),
                model_id=model,
                now=time.time(),
                ttl=ttl,
            )

        return self.bus.write(tx)

    def _lease_loop(self) -> None:
        while not self._stop.is_set():
            if self.state == "unavailable":
                break
            try:
                leader = self._renew()
            except Exception as exc:  # noqa: BLE001 - a thread's top level: log, keep trying
                logger.warning("indexing lease heartbeat failed: %s", exc)
                leader = False
            if leader and not self._leader.is_set():
                logger.info("took the indexing lease (%s)", self.holder)
            if leader:
                self._leader.set()
                self.state = "leader"
            else:
                self._leader.clear()
                self.state = "follower"
            self._stop.wait(self._beat())

    # --- indexing -----------------------------------------------------------------------------

    def _index_loop(self) -> None:
        indexer = None
        poll = self.settings.embed_idle_poll_seconds
        while not self._stop.is_set():
            if not self._leader.wait(timeout=self._beat()):
                continue
            if self._stop.is_set():
                break
            try:
                if indexer is None:
                    indexer = self._make_indexer()
                    if indexer is None:
                        return
                report = indexer.run_batch()
                refreshed = report.processed == 0 and self._refresh(indexer)
            except Exception as exc:  # noqa: BLE001 - a thread's top level: the bus goes on
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("background indexing failed; retrying later")
                self._stop.wait(max(poll, 5.0))
                continue
            self.embedded += report.embedded
            if report.processed == 0 and not refreshed:
                self._stop.wait(poll)

    def _make_indexer(self) -> Any:
        """The indexer of this server's model, after queueing what its collection lacks."""
        from agent_bus.embeddings.indexer import Indexer
        from agent_bus.errors import EmbeddingsUnavailable

        try:
            indexer = Indexer.for_model(self.bus, self.model_id)
        except EmbeddingsUnavailable as exc:
            # Without a model this server must not keep the lease: another may have one.
            self.last_error = exc.message
            self.state = "unavailable"
            logger.info("background indexing off: %s", exc.message)
            self._give_up_lease()
            return None
        cid = indexer.collection_id
        self.bus.write(lambda c: store.enqueue_missing(c, cid, time.time()))
        if indexer.embedder.model_id == DEFAULT_MODEL_ID:
            if not self.bus.read(lambda c: store.passages_done(c, cid)):
                self._refresh_after = 0
        return indexer

    def _refresh(self, indexer: Any) -> bool:
        """One batch of the pass that embeds again, with their passages, the messages an
        older version embedded without them; it runs only while the queue is empty, so new
        messages come first. False once nothing is left (then it never runs again)."""
        if self._refresh_after is None:
            return False
        last = indexer.refresh_passages(self._refresh_after)
        if last is None:
            cid = indexer.collection_id
            self.bus.write(lambda c: store.mark_passages_done(c, cid))
            self._refresh_after = None
            logger.info("every message has its passages now")
            return False
        self._refresh_after = last
        return True

    def _give_up_lease(self) -> None:
        self._leader.clear()
        self.bus.write(lambda c: store.release_lease(c, LEASE_NAME, self.holder))


def available_without_import(model_id: str | None) -> bool:
    """Cheap check before starting: the default model's packages are installed."""
    from agent_bus.embeddings import missing_default_modules

    if model_id:
        return True  # any other model is checked by the worker itself, off the start path
    return not missing_default_modules()
