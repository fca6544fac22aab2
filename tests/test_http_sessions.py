"""A long-running HTTP server forgets the sessions that ended (names, subscriptions).

The server runs in this process (the real ASGI app under uvicorn, on a real socket) so
the test can look at what it still holds after the official client's sessions close.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from pathlib import Path

import anyio
import pytest
import uvicorn
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from agent_bus.bus import Bus
from agent_bus.mcp.http import HttpOptions, build_app
from agent_bus.mcp.resources import topic_uri
from agent_bus.mcp.server import build_server
from agent_bus.settings import load_settings

pytestmark = [
    pytest.mark.anyio,
    # the legacy subscription is what the test looks at (clients on older protocol versions)
    pytest.mark.filterwarnings("ignore:resources/subscribe is removed"),
]


class InProcessServer:
    def __init__(self, db: Path) -> None:
        settings = load_settings(db=db, embeddings_autoindex=False)
        self.bus = Bus(settings)
        self.bus.ensure_ready()
        self.server = build_server(settings, self.bus)
        app = build_app(self.server, settings, HttpOptions(), require_tokens=False)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/mcp"
        self.uvicorn = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.uvicorn.serve(sockets=[self.sock])), daemon=True
        )

    def __enter__(self) -> InProcessServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.uvicorn.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(30)
        self.sock.close()
        self.bus.close()

    def held(self) -> tuple[int, int, int]:
        """Connections, (connection, topic) name sets and subscribed resources still held."""
        gc.collect()
        ids = self.server.identities  # type: ignore[attr-defined]
        return ids.connected, len(ids._names), len(self.server.push._legacy)  # type: ignore[attr-defined]


async def _call(session: ClientSession, tool: str, **arguments) -> dict:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def test_names_and_subscriptions_of_ended_http_sessions_are_forgotten(db_path) -> None:
    with InProcessServer(db_path) as srv:
        topic, _ = srv.bus.topic_create("review")
        for i in range(5):
            async with streamable_http_client(srv.url) as (read, write, *_):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    await _call(session, "topic_join", agent_name=f"agent-{i}", name="review")
                    await session.subscribe_resource(topic_uri(topic.topic_id))
                    gc.collect()  # a live session keeps its name across requests
                    await _call(
                        session,
                        "sync",
                        topic_id=topic.topic_id,
                        outbox=[{"content_markdown": f"hello {i}"}],
                        wait_seconds=0,
                    )
                    assert srv.held()[0] >= 1
        senders = [m.sender for m in srv.bus.messages(topic.topic_id)]
        assert senders == [f"agent-{i}" for i in range(5)]

        deadline = time.monotonic() + 30
        while srv.held() != (0, 0, 0):
            assert time.monotonic() < deadline, f"still held: {srv.held()}"
            await anyio.sleep(0.05)

        async with streamable_http_client(srv.url) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool(
                    "sync", {"topic_id": topic.topic_id, "agent_name": "agent-4"}
                )
                assert result.is_error
                assert result.structured_content["error"]["code"] == "AGENT_NOT_JOINED"
