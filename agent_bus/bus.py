"""`Bus`: one database handle and one `BusSettings`, with the service as methods.

The doors (MCP server, CLI, web plugin) hold one `Bus` per process and database.
It owns nothing but the pairing: the rules live in `agent_bus.service`, the SQL
in `agent_bus.store`, connections in `agent_bus.store.database`. Blocking
methods run on the caller's thread; ``await bus.run(...)`` moves them to the
handle's worker pool so that an event loop never blocks on SQLite.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from agent_bus.models import (
    Cursor,
    Message,
    OutboxItem,
    PresencePeer,
    SearchResult,
    SentMessage,
    Topic,
    TopicSummary,
    Warning,
)
from agent_bus.service import identities, messages, sync, topics
from agent_bus.service.identities import Joined
from agent_bus.service.sync import SyncResult
from agent_bus.settings import BusSettings
from agent_bus.store import queries
from agent_bus.store.database import Database

T = TypeVar("T")

__all__ = ["Bus", "Joined", "SyncResult"]


class Bus:
    """The service over one bus database, for the doors."""

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self.db = Database(
            settings.db,
            busy_timeout_ms=settings.busy_timeout_ms,
            fallback_poll_ms=settings.wake_fallback_poll_ms,
        )
        self._engine_lock = threading.Lock()
        self._engine: Any = None  # agent_bus.search.semantic.SemanticEngine, lazily

    # --- the handle ---------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def watcher(self) -> Any:
        return self.db.watcher

    def conn(self):  # noqa: ANN201 - sqlite3.Connection
        return self.db.conn()

    def read(self, fn: Callable[[Any], T]) -> T:
        return self.db.read(fn)

    def write(self, fn: Callable[[Any], T]) -> T:
        return self.db.write(fn)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.db.run(fn, *args, **kwargs)

    def ensure_ready(self) -> None:
        """Open the database and check its schema (raises SchemaMismatch)."""
        self.db.ensure_ready()

    def close(self) -> None:
        self.db.close()

    # --- topics ---------------------------------------------------------------------------

    def get_topic(self, topic_id: object) -> Topic:
        return topics.get(self.db, topic_id)

    def topic_create(
        self, name: object = None, metadata: object = None, mode: object = "reuse"
    ) -> tuple[Topic, bool]:
        return topics.create(
            self.db, name, metadata, mode, max_chars=self.settings.max_message_chars
        )

    def topic_resolve(self, name: object, allow_closed: object = False) -> Topic:
        return topics.resolve(self.db, name, allow_closed)

    def topic_list(
        self, status: object = "open", name_glob: str | None = None, limit: int | None = None
    ) -> list[TopicSummary]:
        return topics.list_topics(self.db, status, name_glob, limit)

    def topic_close(self, topic_id: object, reason: object = None) -> tuple[Topic, bool]:
        return topics.close(self.db, topic_id, reason)

    def topic_reopen(self, topic_id: object) -> tuple[Topic, bool]:
        return topics.reopen(self.db, topic_id)

    def resolve_ref(self, ref: str) -> Topic:
        return topics.resolve_ref(self.db, ref)

    # --- identities -------------------------------------------------------------------------

    def topic_join(self, agent_name: object, **where: Any) -> Joined:
        return identities.join(self.db, agent_name, **where)

    def cursor_reset(self, topic_id: object, agent_name: str, last_seq: object = 0) -> Cursor:
        return identities.cursor_reset(self.db, topic_id, agent_name, last_seq)

    def topic_presence(
        self, topic_id: object, window_seconds: object = 300, limit: object = 200
    ) -> tuple[float, list[PresencePeer]]:
        return identities.presence(self.db, topic_id, window_seconds, limit)

    # --- messages and sync ------------------------------------------------------------------

    def check_outbox(self, outbox: object) -> list[OutboxItem]:
        return messages.check_outbox(
            outbox, max_items=self.settings.max_outbox, max_chars=self.settings.max_message_chars
        )

    unknown_outbox_fields = staticmethod(messages.unknown_outbox_fields)

    def check_sync_args(
        self,
        max_items: object,
        wait_seconds: object,
        include_self: object,
        auto_advance: object,
        ack_through: object,
    ) -> None:
        sync.check_args(
            max_items,
            wait_seconds,
            include_self,
            auto_advance,
            ack_through,
            max_sync_items=self.settings.max_sync_items,
        )

    def sync_once(
        self, topic_id: str, agent_name: str, items: list[OutboxItem], **options: Any
    ) -> sync.Step:
        """One atomic sync step without waiting (see `agent_bus.service.sync.step`)."""
        return sync.step(self.db, topic_id, agent_name, items, **options)

    def post(self, topic_id: str, sender: str, items: list[OutboxItem]) -> list[SentMessage]:
        return sync.post(self.db, topic_id, sender, items)

    async def async_sync(
        self, topic_id: str, agent_name: str, items: list[OutboxItem], **options: Any
    ) -> SyncResult:
        return await sync.sync(
            self.db,
            topic_id,
            agent_name,
            items,
            presence_touch_seconds=self.settings.presence_touch_seconds,
            **options,
        )

    async def wait_for_messages(self, topic_id: str, after_seq: int, timeout: float) -> bool:
        return await sync.wait_for_messages(self.db, topic_id, after_seq, timeout)

    # --- reading for humans -----------------------------------------------------------------

    def messages(
        self,
        topic_id: str,
        *,
        after_seq: int = 0,
        before_seq: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Message]:
        return self.db.read(
            lambda c: queries.messages_range(
                c,
                topic_id,
                after_seq=after_seq,
                before_seq=before_seq,
                limit=limit,
                newest_first=newest_first,
            )
        )

    def has_messages_after(self, topic_id: str, after_seq: int, exclude_sender: str | None) -> bool:
        return sync.has_messages_after(self.db, topic_id, after_seq, exclude_sender)

    def get_message(self, message_id: str) -> Message | None:
        return self.db.read(lambda c: queries.get_message(c, message_id))

    # --- search -----------------------------------------------------------------------------

    def semantic_engine(self) -> Any:
        """The vector caches, created on first semantic use; they live as long as the bus."""
        with self._engine_lock:
            if self._engine is None:
                from agent_bus.search.semantic import SemanticEngine

                self._engine = SemanticEngine()
            return self._engine

    def search(self, query: object, **options: Any) -> tuple[list[SearchResult], list[Warning]]:
        from agent_bus.search.api import search_bus

        return search_bus(self.db, self.settings, self.semantic_engine, query, **options)

    def related(self, **options: Any) -> tuple[list[SearchResult], list[Warning]]:
        """Messages nearest in meaning to a message or a topic (see search/related.py)."""
        from agent_bus.search.api import related_bus

        return related_bus(self.db, self.settings, self.semantic_engine, **options)
