"""Push: resource updates and Claude Code channel notifications, fired by the one watcher.

One pump per server process waits on the process-wide `ChangeWatcher` (the
same one a waiting `sync` uses — never one watcher per subscriber). After each
wake it reads the messages committed since it last looked, by any process, in
one range read (`store.changes`), and for each topic that changed:

- legacy (2025) clients that sent ``resources/subscribe`` for its URI get
  ``notifications/resources/updated``;
- 2026-07-28 clients with a ``subscriptions/listen`` stream get the SDK's
  ``ResourceUpdated`` event (the SDK filters by the URIs each stream asked for);
- with ``AGENT_BUS_CLAUDE_CHANNELS`` on, each connection joined to the topic gets
  one ``notifications/claude/channel`` per message from someone else.

The pump runs only while somebody listens, so an idle server still costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Literal

import mcp_types as types
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from agent_bus.bus import Bus
from agent_bus.errors import BusError
from agent_bus.mcp.identities import Identities, connection_of, session_key
from agent_bus.mcp.resources import topic_of, topic_uri
from agent_bus.models import Message
from agent_bus.store import changes

logger = logging.getLogger(__name__)

CHANNEL_METHOD = "notifications/claude/channel"
CHANNEL_CAPABILITY = "claude/channel"
CHANNEL_BODY_CHARS = 4000
BATCH = 500
# The pump's own re-check when nothing wakes it: only to notice that listeners left.
IDLE_RECHECK_SECONDS = 5.0


class ChannelParams(BaseModel):
    content: str
    meta: dict[str, str]


class ChannelNotification(BaseModel):
    """Claude Code's channel event: the body in ``content``, attributes in ``meta``."""

    method: Literal["notifications/claude/channel"] = CHANNEL_METHOD
    params: ChannelParams


async def notify(connection: Any, notification: Any) -> None:
    """Send a typed notification on a connection's standalone stream (or a session's)."""
    if hasattr(connection, "send_notification"):
        await connection.send_notification(notification)
        return
    data = notification.model_dump(by_alias=True, mode="json", exclude_none=True)
    await connection.notify(data["method"], data.get("params"))


def channel_notification(message: Message, agent_names: set[str]) -> ChannelNotification:
    """The channel event telling a joined agent that ``message`` arrived."""
    body = message.content_markdown
    if len(body) > CHANNEL_BODY_CHARS:
        body = body[:CHANNEL_BODY_CHARS].rstrip() + " …"
    names = ",".join(sorted(agent_names))
    return ChannelNotification(
        params=ChannelParams(
            content=body,
            meta={
                "topic_id": message.topic_id,
                "sender": message.sender,
                "seq": str(message.seq),
                "message_type": message.message_type,
                "message_id": message.message_id,
                "agent_name": names,
                "next_step": f"sync(topic_id={message.topic_id!r}, wait_seconds=0)",
            },
        )
    )


class ListenBus(InMemorySubscriptionBus):
    """The SDK's in-process listen bus, telling the pump when a stream opens."""

    def __init__(self, on_subscribe: Callable[[], None]) -> None:
        super().__init__()
        self._on_subscribe = on_subscribe

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        unsubscribe = super().subscribe(listener)
        self._on_subscribe()
        return unsubscribe

    @property
    def listening(self) -> bool:
        return bool(self._listeners)


class Push:
    """The process's push pump over one bus; see the module docstring."""

    def __init__(self, bus: Bus, ids: Identities, *, channels: bool) -> None:
        self.bus = bus
        self.ids = ids
        self.channels = channels
        self.listen = ListenBus(self.kick)
        self._legacy: dict[str, set[int]] = {}  # uri -> keys of the connections subscribed
        self._task: asyncio.Task[None] | None = None
        self._high_water = 0
        if channels:
            ids.on_join.append(self.kick)
        ids.on_forget.append(self._forget)

    def install(self, server: Any) -> None:
        """Serve legacy subscribe/unsubscribe; declare the channel capability when on."""
        low = server._lowlevel_server
        low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, self._sub)
        low.add_request_handler(
            "resources/unsubscribe", types.UnsubscribeRequestParams, self._unsub
        )
        if self.channels:
            plain = low.create_initialization_options

            def with_channel(
                notification_options: Any = None,
                experimental_capabilities: dict[str, dict[str, Any]] | None = None,
                extensions: Any = None,
            ) -> Any:
                experimental = {**(experimental_capabilities or {}), CHANNEL_CAPABILITY: {}}
                return plain(notification_options, experimental, extensions)

            low.create_initialization_options = with_channel

    def wanted(self) -> bool:
        return (
            bool(self._legacy)
            or self.listen.listening
            or (self.channels and self.ids.connected > 0)
        )

    def kick(self) -> None:
        """Start the pump if someone listens and it is not running (from the event loop)."""
        if (self._task is not None and not self._task.done()) or not self.wanted():
            return
        # Read now, not in the task: a commit right after a subscribe is answered must count.
        self._high_water = self.bus.db.read(changes.high_water)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _sub(self, ctx: Any, params: types.SubscribeRequestParams) -> dict[str, Any]:
        uri = str(params.uri)
        topic_id = topic_of(uri)
        try:
            if topic_id is None:
                raise BusError("not a topic resource")
            await self.bus.run(self.bus.get_topic, topic_id)
        except BusError as exc:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Unknown resource {uri}: {exc.message} (topics are "
                "agent-bus://topics/{topic_id}; resources/list names them)",
                data={"uri": uri},
            ) from None
        connection = connection_of(ctx)
        key = id(connection)
        self.ids.track(key, connection)
        self._legacy.setdefault(uri, set()).add(key)
        self.kick()
        return {}

    async def _unsub(self, ctx: Any, params: types.UnsubscribeRequestParams) -> dict[str, Any]:
        uri = str(params.uri)
        subscribers = self._legacy.get(uri, set())
        subscribers.discard(session_key(ctx))
        if not subscribers:
            self._legacy.pop(uri, None)
        return {}

    def _forget(self, key: int) -> None:
        """A connection ended: it has no subscriptions any more."""
        for uri in [uri for uri, keys in self._legacy.items() if key in keys]:
            self._legacy[uri].discard(key)
            if not self._legacy[uri]:
                del self._legacy[uri]

    async def _run(self) -> None:
        watcher = self.bus.db.watcher
        try:
            while self.wanted():
                generation = watcher.generation  # before the read: no commit slips between
                since = self._high_water
                batch = await self.bus.run(
                    self.bus.db.read, lambda c, s=since: changes.messages_since(c, s, BATCH)
                )
                if batch:
                    self._high_water = batch[-1][0]
                    await self._deliver([m for _, m in batch])
                    if len(batch) == BATCH:
                        continue
                await watcher.wait(generation, IDLE_RECHECK_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - push is best effort; the next subscribe restarts it
            logger.exception("push pump stopped")
        finally:
            self._task = None

    async def _deliver(self, messages: list[Message]) -> None:
        for topic_id in dict.fromkeys(m.topic_id for m in messages):
            uri = topic_uri(topic_id)
            for key in list(self._legacy.get(uri, ())):
                connection = self.ids.connection(key)
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.send_resource_updated(uri)
            if self.listen.listening:
                await self.listen.publish(ResourceUpdated(uri=uri))
        if not self.channels:
            return
        for message in messages:
            for key, names in self.ids.joined(message.topic_id):
                connection = self.ids.connection(key)
                if connection is None or message.sender in names:
                    continue
                with contextlib.suppress(Exception):
                    await notify(connection, channel_notification(message, names))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
