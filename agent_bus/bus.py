"""The bus service: topics, identities, sync, cursors, presence and search.

One `Bus` per process and database. Its methods are the only place where the
rules of the contract live; the MCP tools, the CLI and the web plugin call
them and render the results. Blocking methods run on the caller's thread
with a per-thread connection; the ``a*`` coroutines run them on a small
worker pool so that a server's event loop never blocks on SQLite.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agent_bus.errors import (
    AgentNameInUse,
    InvalidArgument,
    TopicAmbiguous,
    TopicClosed,
    TopicNotFound,
)
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
from agent_bus.settings import BusSettings
from agent_bus.store import queries
from agent_bus.store.connection import ConnectionPool, read_transaction, retry, write_transaction
from agent_bus.store.schema import ensure_schema
from agent_bus.wake import ChangeWatcher

T = TypeVar("T")

MAX_AGENT_NAME = 64
MAX_TOPIC_NAME = 200
MAX_MESSAGE_TYPE = 32
MAX_CLIENT_MESSAGE_ID = 128
MAX_SEARCH_LIMIT = 500
ROLE_SUGGESTIONS = ("reviewer", "implementer", "architect", "researcher", "tester")


def _now() -> float:
    return time.time()


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --- argument checks (shared by every front door) ---------------------------------


def check_text(value: object, field_name: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{field_name} must be a string", field=field_name)
    if not allow_empty and not value.strip():
        raise InvalidArgument(f"{field_name} must be a non-empty string", field=field_name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"{field_name} is not valid UTF-8 text (it contains a lone surrogate)", field=field_name
        ) from None
    if "\x00" in value:
        raise InvalidArgument(f"{field_name} must not contain NUL characters", field=field_name)
    return value


def check_name(value: object, field_name: str, max_len: int) -> str:
    """A trimmed, printable, bounded name (agent names, topic names)."""
    text = check_text(value, field_name).strip()
    if len(text) > max_len:
        raise InvalidArgument(f"{field_name} must be <= {max_len} characters", field=field_name)
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidArgument(f"{field_name} must not contain control characters", field=field_name)
    return text


def check_int(value: object, field_name: str, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{field_name} must be an integer", field=field_name)
    if value < minimum:
        raise InvalidArgument(f"{field_name} must be >= {minimum}", field=field_name)
    if maximum is not None and value > maximum:
        raise InvalidArgument(f"{field_name} must be <= {maximum}", field=field_name)
    return value


def check_metadata(value: object, field_name: str, max_chars: int) -> dict[str, Any] | None:
    """A JSON object of bounded size (it is stored and returned with every read)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field_name} must be an object", field=field_name)
    try:
        size = len(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        raise InvalidArgument(f"{field_name} must be plain JSON", field=field_name) from None
    if size > max_chars:
        raise InvalidArgument(
            f"{field_name} is too large ({size} characters as JSON, at most {max_chars})",
            field=field_name,
        )
    return value


def suggest_names(agent_name: str, taken: set[str]) -> list[str]:
    candidates = [f"{agent_name} {role}" for role in ROLE_SUGGESTIONS]
    candidates += [f"{agent_name}-{n}" for n in range(2, 6)]
    return [c for c in candidates if c not in taken and len(c) <= MAX_AGENT_NAME][:6]


def _insert_outbox(
    conn: Any, topic_id: str, sender: str, items: list[OutboxItem], now: float
) -> tuple[list[SentMessage], int]:
    """Store an outbox in order (idempotent per client_message_id); returns sent and last seq."""
    top = queries.last_seq(conn, topic_id)
    next_seq = top + 1
    sent: list[SentMessage] = []
    for i, item in enumerate(items):
        if item.client_message_id is not None:
            dup = queries.message_by_client_id(conn, topic_id, sender, item.client_message_id)
            if dup is not None:
                sent.append(SentMessage(message=dup, duplicate=True))
                continue
        if item.reply_to is not None and not queries.message_in_topic(
            conn, topic_id, item.reply_to
        ):
            raise InvalidArgument(
                f"outbox[{i}].reply_to {item.reply_to!r} is not a message of this topic",
                field=f"outbox[{i}].reply_to",
            )
        msg = Message(
            message_id=new_id(),
            topic_id=topic_id,
            seq=next_seq,
            sender=sender,
            message_type=item.message_type,
            reply_to=item.reply_to,
            content_markdown=item.content_markdown,
            metadata=item.metadata,
            client_message_id=item.client_message_id,
            created_at=now,
        )
        queries.insert_message(conn, msg)
        sent.append(SentMessage(message=msg, duplicate=False))
        next_seq += 1
    if next_seq != top + 1:
        queries.set_next_seq(conn, topic_id, next_seq, now)
    return sent, next_seq - 1


@dataclass
class SyncResult:
    topic_id: str
    agent_name: str
    status: str
    cursor: Cursor
    sent: list[SentMessage]
    received: list[Message]
    has_more: bool
    warnings: list[Warning] = field(default_factory=list)


@dataclass
class Joined:
    topic: Topic
    agent_name: str
    reclaim_token: str
    reclaimed: bool


class Bus:
    """Service layer over one bus database."""

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self.path = settings.db
        self._pool = ConnectionPool(
            self.path, busy_timeout_ms=settings.busy_timeout_ms, on_open=self._on_open
        )
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._executor: ThreadPoolExecutor | None = None
        self._engine: Any = None  # agent_bus.search.semantic.SemanticEngine, lazily
        self.watcher = ChangeWatcher(self.path, fallback_poll_ms=settings.wake_fallback_poll_ms)

    # --- plumbing -------------------------------------------------------------------

    def _on_open(self, conn: Any) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                retry(lambda: ensure_schema(conn, str(self.path)), self.settings.busy_timeout_ms)
                self._schema_ready = True

    def conn(self):  # noqa: ANN201 - sqlite3.Connection
        """This thread's connection (schema checked on first open)."""
        return self._pool.get()

    def read(self, fn: Callable[[Any], T]) -> T:
        conn = self.conn()

        def attempt() -> T:
            with read_transaction(conn):
                return fn(conn)

        return retry(attempt, self.settings.busy_timeout_ms)

    def write(self, fn: Callable[[Any], T]) -> T:
        conn = self.conn()

        def attempt() -> T:
            with write_transaction(conn):
                return fn(conn)

        return retry(attempt, self.settings.busy_timeout_ms)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking method on the worker pool."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="agent-bus-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self.watcher.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._pool.close()

    def _semantic_engine(self) -> Any:
        """The vector caches, created on first semantic use; they live as long as the bus."""
        with self._schema_lock:
            if self._engine is None:
                from agent_bus.search.semantic import SemanticEngine

                self._engine = SemanticEngine()
            return self._engine

    def ensure_ready(self) -> None:
        """Open the database and check its schema (raises SchemaMismatch)."""
        self.conn()

    # --- topics -----------------------------------------------------------------------

    def get_topic(self, topic_id: object) -> Topic:
        tid = check_text(topic_id, "topic_id")
        topic = self.read(lambda c: queries.get_topic(c, tid))
        if topic is None:
            raise TopicNotFound(f"No topic with topic_id {tid!r}. Use topic_list to see topics.")
        return topic

    def topic_create(
        self, name: object = None, metadata: object = None, mode: object = "reuse"
    ) -> tuple[Topic, bool]:
        """Create a topic, or with mode='reuse' return the newest open one of that name.

        Returns the topic and whether it was created.
        """
        if mode not in ("reuse", "new"):
            raise InvalidArgument("mode must be 'reuse' or 'new'", field="mode")
        metadata = check_metadata(metadata, "metadata", self.settings.max_message_chars)
        clean = None if name is None else check_name(name, "name", MAX_TOPIC_NAME)

        def tx(conn: Any) -> tuple[Topic, bool]:
            if mode == "reuse" and clean is not None:
                found = queries.newest_topic_named(conn, clean, "open")
                if found is not None:
                    return found, False
            topic_id = new_id()
            topic = Topic(
                topic_id=topic_id,
                name=clean or f"topic-{topic_id}",
                status="open",
                created_at=_now(),
                metadata=metadata,  # type: ignore[arg-type]
            )
            queries.insert_topic(conn, topic)
            return topic, True

        return self.write(tx)

    def topic_resolve(self, name: object, allow_closed: object = False) -> Topic:
        clean = check_name(name, "name", MAX_TOPIC_NAME)
        if not isinstance(allow_closed, bool):
            raise InvalidArgument("allow_closed must be a boolean", field="allow_closed")

        def tx(conn: Any) -> Topic | None:
            found = queries.newest_topic_named(conn, clean, "open")
            if found is None and allow_closed:
                found = queries.newest_topic_named(conn, clean, "closed")
            return found

        topic = self.read(tx)
        if topic is None:
            hint = "" if allow_closed else " (pass allow_closed=true to include closed topics)"
            raise TopicNotFound(f"No open topic named {clean!r}{hint}.")
        return topic

    def topic_list(
        self, status: object = "open", name_glob: str | None = None, limit: int | None = None
    ) -> list[TopicSummary]:
        if status not in ("open", "closed", "all"):
            raise InvalidArgument("status must be 'open', 'closed' or 'all'", field="status")
        return self.read(
            lambda c: queries.list_topics(c, status=str(status), name_glob=name_glob, limit=limit)
        )

    def topic_close(self, topic_id: object, reason: object = None) -> tuple[Topic, bool]:
        """Close a topic; returns it and whether it was already closed."""
        tid = check_text(topic_id, "topic_id")
        why = None
        if reason is not None:
            why = check_text(reason, "reason", allow_empty=True).strip() or None

        def tx(conn: Any) -> tuple[Topic, bool]:
            topic = queries.get_topic(conn, tid)
            if topic is None:
                raise TopicNotFound(f"No topic with topic_id {tid!r}.")
            if topic.status == "closed":
                return topic, True
            closed_at = _now()
            queries.close_topic(conn, tid, closed_at, why)
            return topic.model_copy(
                update={"status": "closed", "closed_at": closed_at, "close_reason": why}
            ), False

        return self.write(tx)

    def resolve_ref(self, ref: str) -> Topic:
        """A topic by id, id prefix or name for humans' tools.

        A name means the newest open topic of that name; with none open, the one closed
        topic of that name.

        Raises:
            TopicNotFound: nothing matches.
            TopicAmbiguous: only closed topics have that name and there are several, or an
                id prefix matches several topics.
        """
        ref = check_text(ref, "topic").strip()

        def tx(conn: Any) -> Topic:
            topic = queries.get_topic(conn, ref)
            if topic is not None:
                return topic
            named = queries.topics_named(conn, ref)  # newest first
            open_named = [t for t in named if t.status == "open"]
            if open_named:  # the newest open topic of that name, as topic_resolve does
                return open_named[0]
            if len(named) == 1:
                return named[0]
            if named:
                listing = ", ".join(f"{t.topic_id} ({t.status})" for t in named[:10])
                raise TopicAmbiguous(
                    f"{len(named)} topics are named {ref!r}: {listing}. Pass a topic id.",
                    candidates=[t.topic_id for t in named],
                )
            prefixed = queries.topics_with_id_prefix(conn, ref) if len(ref) >= 4 else []
            if len(prefixed) == 1:
                return prefixed[0]
            if prefixed:
                raise TopicAmbiguous(
                    f"{ref!r} is a prefix of several topic ids; type more of it.",
                    candidates=[t.topic_id for t in prefixed],
                )
            raise TopicNotFound(f"No topic with id or name {ref!r}. See `agent-bus topics list`.")

        return self.read(tx)

    # --- identities ----------------------------------------------------------------------

    def topic_join(
        self,
        agent_name: object,
        *,
        topic_id: object = None,
        name: object = None,
        allow_closed: object = False,
        reclaim_token: object = None,
    ) -> Joined:
        """Reserve (or reclaim with its token) an agent name on a topic."""
        agent = check_name(agent_name, "agent_name", MAX_AGENT_NAME)
        token = None
        if reclaim_token is not None:
            token = check_text(reclaim_token, "reclaim_token").strip()
        if topic_id and name:
            raise InvalidArgument(
                "Provide exactly one of topic_id or name, not both", field="topic_id"
            )
        if not topic_id and not name:
            raise InvalidArgument("Provide exactly one of topic_id or name", field="topic_id")
        topic = self.get_topic(topic_id) if topic_id else self.topic_resolve(name, allow_closed)

        def tx(conn: Any) -> Joined:
            if queries.get_topic(conn, topic.topic_id) is None:
                raise TopicNotFound(f"No topic with topic_id {topic.topic_id!r}.")
            now = _now()
            row = queries.get_reservation(conn, topic.topic_id, agent)
            if row is None:
                new_token = token or secrets.token_urlsafe(24)
                queries.insert_reservation(conn, topic.topic_id, agent, hash_token(new_token), now)
                return Joined(topic, agent, new_token, reclaimed=False)
            if token is not None and hmac.compare_digest(row[0], hash_token(token)):
                queries.touch_reservation(conn, topic.topic_id, agent, now)
                return Joined(topic, agent, token, reclaimed=True)
            taken = queries.reserved_names(conn, topic.topic_id)
            raise AgentNameInUse(
                f'agent_name "{agent}" is already reserved on this topic. Pass the reclaim_token '
                "from your earlier topic_join to take it back, or choose another name.",
                requested_agent_name=agent,
                suggested_agent_names=suggest_names(agent, taken),
            )

        return self.write(tx)

    # --- cursors and presence ------------------------------------------------------------

    def cursor_reset(self, topic_id: object, agent_name: str, last_seq: object = 0) -> Cursor:
        tid = check_text(topic_id, "topic_id")
        seq = check_int(last_seq, "last_seq", minimum=0)

        def tx(conn: Any) -> Cursor:
            if queries.get_topic(conn, tid) is None:
                raise TopicNotFound(f"No topic with topic_id {tid!r}.")
            top = queries.last_seq(conn, tid)
            if seq > top:
                raise InvalidArgument(
                    f"last_seq must be <= the topic's last seq ({top})", field="last_seq"
                )
            return queries.upsert_cursor(conn, tid, agent_name, seq, _now())

        return self.write(tx)

    def topic_presence(
        self, topic_id: object, window_seconds: object = 300, limit: object = 200
    ) -> tuple[float, list[PresencePeer]]:
        tid = check_text(topic_id, "topic_id")
        window = check_int(window_seconds, "window_seconds", minimum=1)
        lim = check_int(limit, "limit", minimum=1)
        now = _now()

        def tx(conn: Any) -> list[PresencePeer]:
            if queries.get_topic(conn, tid) is None:
                raise TopicNotFound(f"No topic with topic_id {tid!r}.")
            rows = queries.presence(conn, tid, now - window, lim)
            return [
                PresencePeer(
                    agent_name=r["agent_name"],
                    last_seq=r["last_seq"],
                    updated_at=r["updated_at"],
                    age_seconds=max(0.0, now - r["updated_at"]),
                )
                for r in rows
            ]

        return now, self.read(tx)

    # --- sync ------------------------------------------------------------------------------

    def check_outbox(self, outbox: object) -> list[OutboxItem]:
        """Validate a whole outbox before anything is written."""
        s = self.settings
        if outbox is None:
            return []
        if isinstance(outbox, dict):
            outbox = [outbox]
        if not isinstance(outbox, list):
            raise InvalidArgument("outbox must be a list of message objects", field="outbox")
        if len(outbox) > s.max_outbox:
            raise InvalidArgument(
                f"outbox must have at most {s.max_outbox} items (got {len(outbox)}); "
                "send the rest in another sync",
                field="outbox",
            )
        items: list[OutboxItem] = []
        for i, raw in enumerate(outbox):
            where = f"outbox[{i}]"
            if not isinstance(raw, dict):
                raise InvalidArgument(f"{where} must be an object", field=where)
            if "content_markdown" not in raw:
                raise InvalidArgument(
                    f"{where}.content_markdown is missing: the message body goes in "
                    "content_markdown (not content, body or text)",
                    field=f"{where}.content_markdown",
                )
            content = check_text(raw.get("content_markdown"), f"{where}.content_markdown")
            if len(content) > s.max_message_chars:
                raise InvalidArgument(
                    f"{where}.content_markdown exceeds max length ({s.max_message_chars} "
                    f"characters, got {len(content)}); split it into several messages",
                    field=f"{where}.content_markdown",
                )
            mtype = raw.get("message_type")
            mtype = (
                "message"
                if mtype is None
                else check_name(mtype, f"{where}.message_type", MAX_MESSAGE_TYPE)
            )
            reply_to = raw.get("reply_to")
            if reply_to is not None:
                reply_to = check_text(reply_to, f"{where}.reply_to").strip()
            metadata = check_metadata(raw.get("metadata"), f"{where}.metadata", s.max_message_chars)
            cmid = raw.get("client_message_id")
            if cmid is not None:
                cmid = check_name(cmid, f"{where}.client_message_id", MAX_CLIENT_MESSAGE_ID)
            items.append(
                OutboxItem(
                    content_markdown=content,
                    message_type=mtype,
                    reply_to=reply_to,
                    metadata=metadata,
                    client_message_id=cmid,
                )
            )
        return items

    @staticmethod
    def unknown_outbox_fields(outbox: object) -> list[str]:
        """Outbox keys the contract does not know; they are ignored (as the reference does)."""
        items = [outbox] if isinstance(outbox, dict) else outbox
        if not isinstance(items, list):
            return []
        return [
            f"outbox[{i}].{key}"
            for i, raw in enumerate(items)
            if isinstance(raw, dict)
            for key in sorted(set(raw) - set(OutboxItem.model_fields))
        ]

    def sync_once(
        self,
        topic_id: str,
        agent_name: str,
        items: list[OutboxItem],
        *,
        max_items: int,
        include_self: bool,
        auto_advance: bool,
        ack_through: int | None,
    ) -> tuple[list[SentMessage], list[Message], Cursor, bool]:
        """One atomic step of sync: send, acknowledge, read, advance, touch presence."""

        def tx(conn: Any) -> tuple[list[SentMessage], list[Message], Cursor, bool]:
            topic = queries.get_topic(conn, topic_id)
            if topic is None:
                raise TopicNotFound(f"No topic with topic_id {topic_id!r}.")
            if items and topic.status != "open":
                raise TopicClosed(
                    f"Topic {topic.name!r} is closed; nothing was sent. Create or join an open "
                    "topic to continue."
                )
            now = _now()
            cursor = queries.get_cursor(conn, topic_id, agent_name) or Cursor(
                last_seq=0, updated_at=now
            )
            sent, top = _insert_outbox(conn, topic_id, agent_name, items, now)
            last = cursor.last_seq
            if not auto_advance and ack_through is not None:
                if ack_through > top:
                    raise InvalidArgument(
                        f"ack_through ({ack_through}) exceeds the topic's last seq ({top})",
                        field="ack_through",
                    )
                last = max(last, ack_through)
            rows = queries.messages_after(
                conn,
                topic_id,
                last,
                exclude_sender=None if include_self else agent_name,
                limit=max_items + 1,
            )
            has_more = len(rows) > max_items
            received = rows[:max_items]
            if auto_advance and received:
                last = max(last, received[-1].seq)
            cursor = queries.upsert_cursor(conn, topic_id, agent_name, last, now)
            return sent, received, cursor, has_more

        return self.write(tx)

    def post(self, topic_id: str, sender: str, items: list[OutboxItem]) -> list[SentMessage]:
        """Store messages as ``sender`` without a join (a person steering from CLI or web)."""
        name = check_name(sender, "sender", MAX_AGENT_NAME)

        def tx(conn: Any) -> list[SentMessage]:
            topic = queries.get_topic(conn, topic_id)
            if topic is None:
                raise TopicNotFound(f"No topic with topic_id {topic_id!r}.")
            if topic.status != "open":
                raise TopicClosed(f"Topic {topic.name!r} is closed; nothing was sent.")
            return _insert_outbox(conn, topic_id, name, items, _now())[0]

        return self.write(tx)

    def check_sync_args(
        self,
        max_items: object,
        wait_seconds: object,
        include_self: object,
        auto_advance: object,
        ack_through: object,
    ) -> None:
        check_int(max_items, "max_items", minimum=1, maximum=self.settings.max_sync_items)
        check_int(wait_seconds, "wait_seconds", minimum=0, maximum=86400)
        if not isinstance(include_self, bool):
            raise InvalidArgument("include_self must be a boolean", field="include_self")
        if not isinstance(auto_advance, bool):
            raise InvalidArgument("auto_advance must be a boolean", field="auto_advance")
        if ack_through is not None:
            check_int(ack_through, "ack_through", minimum=0)
            if auto_advance:
                raise InvalidArgument(
                    "ack_through requires auto_advance=false", field="ack_through"
                )

    async def async_sync(
        self,
        topic_id: str,
        agent_name: str,
        items: list[OutboxItem],
        *,
        max_items: int,
        include_self: bool,
        wait_seconds: int,
        auto_advance: bool,
        ack_through: int | None,
    ) -> SyncResult:
        """sync(): one atomic step, then long-poll until a message arrives or time runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        step = dict(max_items=max_items, include_self=include_self, auto_advance=auto_advance)
        exclude = None if include_self else agent_name
        sent, received, cursor, has_more = await self.run(
            self.sync_once, topic_id, agent_name, items, ack_through=ack_through, **step
        )
        if any(not s.duplicate for s in sent):
            self.watcher.notify()
        if received or wait_seconds == 0:
            return SyncResult(
                topic_id,
                agent_name,
                "ready" if received else "empty",
                cursor,
                sent,
                received,
                has_more,
            )
        touch_every = self.settings.presence_touch_seconds
        next_touch = loop.time() + touch_every
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            generation = self.watcher.generation  # before the check: no missed wake-up
            touch = loop.time() >= next_touch
            # One hop to the worker pool: a cheap read, and the write step only if needed.
            step_result = await self.run(
                self._sync_if_pending, topic_id, agent_name, cursor.last_seq, exclude, touch, step
            )
            if step_result is not None:
                _, received, cursor, has_more = step_result
                next_touch = loop.time() + touch_every
                if received:
                    return SyncResult(
                        topic_id, agent_name, "ready", cursor, sent, received, has_more
                    )
                continue
            await self.watcher.wait(
                generation, min(deadline - loop.time(), next_touch - loop.time())
            )
        _, received, cursor, has_more = await self.run(
            self.sync_once, topic_id, agent_name, [], ack_through=None, **step
        )
        return SyncResult(
            topic_id,
            agent_name,
            "ready" if received else "timeout",
            cursor,
            sent,
            received,
            has_more,
        )

    def _sync_if_pending(
        self,
        topic_id: str,
        agent_name: str,
        after_seq: int,
        exclude: str | None,
        force: bool,
        step: dict[str, Any],
    ) -> tuple[list[SentMessage], list[Message], Cursor, bool] | None:
        """sync_once when something new is there (or ``force``); None otherwise."""
        if not force and not self.has_messages_after(topic_id, after_seq, exclude):
            return None
        return self.sync_once(topic_id, agent_name, [], ack_through=None, **step)

    # --- reading for humans ----------------------------------------------------------------

    def messages(
        self,
        topic_id: str,
        *,
        after_seq: int = 0,
        before_seq: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Message]:
        return self.read(
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
        return self.read(lambda c: queries.any_after(c, topic_id, after_seq, exclude_sender))

    def get_message(self, message_id: str) -> Message | None:
        return self.read(lambda c: queries.get_message(c, message_id))

    async def wait_for_messages(self, topic_id: str, after_seq: int, timeout: float) -> bool:
        """Wait (without a cursor) until the topic has a message beyond ``after_seq``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            generation = self.watcher.generation
            if await self.run(self.has_messages_after, topic_id, after_seq, None):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self.watcher.wait(generation, remaining)

    # --- search ------------------------------------------------------------------------------

    def search(
        self,
        query: object,
        *,
        topic_id: object = None,
        mode: object = "hybrid",
        limit: object = 20,
        model: object = None,
        include_content: object = False,
    ) -> tuple[list[SearchResult], list[Warning]]:
        from agent_bus.search.service import search

        text = check_text(query, "query")
        if len(text) > self.settings.max_query_chars:
            raise InvalidArgument(
                f"query must be <= {self.settings.max_query_chars} characters", field="query"
            )
        if mode not in ("hybrid", "fts", "semantic"):
            raise InvalidArgument("mode must be 'hybrid', 'fts' or 'semantic'", field="mode")
        lim = check_int(limit, "limit", minimum=1, maximum=MAX_SEARCH_LIMIT)
        if not isinstance(include_content, bool):
            raise InvalidArgument("include_content must be a boolean", field="include_content")
        if model is not None:
            check_name(model, "model", 200)
        tid = None
        if topic_id is not None:
            tid = self.get_topic(topic_id).topic_id
        engine = self._semantic_engine() if mode != "fts" else None
        return self.read(
            lambda c: search(
                c,
                text,
                mode=str(mode),
                topic_id=tid,
                limit=lim,
                include_content=include_content,
                model=model,  # type: ignore[arg-type]
                settings=self.settings,
                engine=engine,
            )
        )
