"""Topics as resources, and push: resources/updated, subscriptions/listen, Claude channels.

Every test spawns real server processes over stdio; the commit that must be pushed
comes from a second server process on the same bus file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client
from mcp.client.subscriptions import listen
from mcp.server.subscriptions import ResourceUpdated
from mcp.shared.exceptions import MCPError

from conftest import QUIET_EMBEDDINGS, call, server_params, spawn
from rawmcp import RawServer

CHANNEL = "notifications/claude/channel"

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def spawn_hearing(
    db, *, modern: bool = False, **env: str
) -> AsyncIterator[tuple[ClientSession, Any]]:
    """A client session whose server notifications arrive on the returned receive stream.

    ``modern``: the 2026-07-28 era (server/discover) instead of the initialize handshake.
    """
    send, receive = anyio.create_memory_object_stream[Any](100)

    async def on_message(message: Any) -> None:
        if not isinstance(message, Exception):
            await send.send(message)

    with open(os.devnull, "w") as errlog:
        async with stdio_client(server_params(db, **env), errlog=errlog) as (read, write):
            async with ClientSession(read, write, message_handler=on_message) as session:
                if modern:
                    session.adopt(await session.discover())
                else:
                    session.init_result = await session.initialize()  # type: ignore[attr-defined]
                yield session, receive


async def _topic_with_writer(writer: ClientSession, name: str) -> str:
    topic = await call(writer, "topic_create", name=name, mode="new")
    await call(writer, "topic_join", agent_name="implementer", topic_id=topic["topic_id"])
    return topic["topic_id"]


async def _post(writer: ClientSession, topic_id: str, text: str) -> None:
    await call(
        writer, "sync", topic_id=topic_id, wait_seconds=0, outbox=[{"content_markdown": text}]
    )


async def _next_of(receive: Any, kind: type) -> Any:
    with anyio.fail_after(30):
        while True:
            message = await receive.receive()
            if isinstance(message, kind):
                return message


async def test_topics_are_listed_and_read_as_markdown_digests(db_path):
    async with spawn(db_path) as s:
        topic_id = await _topic_with_writer(s, "digest")
        await _post(s, topic_id, "## Findings\nline two")
        listed = {str(r.uri): r for r in (await s.list_resources()).resources}
        uri = f"agent-bus://topics/{topic_id}"
        assert listed[uri].name == "digest" and listed[uri].mime_type == "text/markdown"
        templates = (await s.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["agent-bus://topics/{topic_id}"]
        text = (await s.read_resource(uri)).contents[0].text
        assert text.startswith("# digest\n") and "#1 implementer · message" in text
        assert "## Findings\nline two" in text
        with pytest.raises(MCPError) as unknown:
            await s.read_resource("agent-bus://topics/nope")
        assert unknown.value.code == types.INVALID_PARAMS and "nope" in unknown.value.message
        with pytest.raises(MCPError) as bad_subscribe:
            await s.subscribe_resource("agent-bus://topics/nope")
        assert bad_subscribe.value.code == types.INVALID_PARAMS


async def test_a_commit_by_another_process_sends_resources_updated_for_the_subscribed_topic(
    db_path,
):
    async with spawn(db_path) as writer, spawn_hearing(db_path) as (reader, heard):
        assert reader.init_result.capabilities.resources.subscribe is True
        watched = await _topic_with_writer(writer, "watched")
        other = await _topic_with_writer(writer, "other")
        uri = f"agent-bus://topics/{watched}"
        await reader.subscribe_resource(uri)
        await _post(writer, other, "not for the subscriber")
        await _post(writer, watched, "for the subscriber")
        note = await _next_of(heard, types.ResourceUpdatedNotification)
        assert str(note.params.uri) == uri  # the other topic's commit came first: not sent
        await reader.unsubscribe_resource(uri)


async def test_subscriptions_listen_gets_resource_updated_from_another_process(db_path):
    async with spawn(db_path) as writer, spawn_hearing(db_path, modern=True) as (reader, _):
        topic_id = await _topic_with_writer(writer, "listened")
        uri = f"agent-bus://topics/{topic_id}"
        async with listen(reader, resource_subscriptions=[uri]) as stream:
            await _post(writer, topic_id, "hello listener")
            with anyio.fail_after(30):
                event = await stream.__anext__()
        assert isinstance(event, ResourceUpdated) and str(event.uri) == uri


async def test_claude_channel_notification_for_a_message_to_a_joined_identity(db_path):
    async with spawn(db_path) as writer:
        topic_id = await _topic_with_writer(writer, "channel")
        reader = RawServer(db_path, AGENT_BUS_CLAUDE_CHANNELS="1", **QUIET_EMBEDDINGS)
        try:
            assert reader.init["result"]["capabilities"]["experimental"] == {"claude/channel": {}}
            reader.tool("topic_join", agent_name="reviewer", topic_id=topic_id)
            own = [{"content_markdown": "own message: no channel event"}]
            reader.tool("sync", topic_id=topic_id, wait_seconds=0, outbox=own)
            await _post(writer, topic_id, "## Ready for review\nsee app.py")
            note = await anyio.to_thread.run_sync(reader.next_notification, CHANNEL)
        finally:
            reader.close()
    assert note["params"]["content"] == "## Ready for review\nsee app.py"
    meta = note["params"]["meta"]
    assert meta["topic_id"] == topic_id and meta["sender"] == "implementer"
    assert meta["agent_name"] == "reviewer" and meta["seq"] == "2"
    assert all(isinstance(v, str) and k.isidentifier() for k, v in meta.items())


async def test_no_channel_capability_unless_the_setting_is_on(db_path):
    reader = RawServer(db_path, **QUIET_EMBEDDINGS)
    try:
        assert "experimental" not in reader.init["result"]["capabilities"]
    finally:
        reader.close()
