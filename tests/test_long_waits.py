"""Long waits fit client timeouts: the omitted wait_seconds, progress keep-alives."""

from __future__ import annotations

import anyio
import pytest

from conftest import call, spawn

pytestmark = pytest.mark.anyio


async def _joined(s, name="lw"):
    topic = await call(s, "topic_create", name=name)
    await call(s, "topic_join", agent_name="waiter", topic_id=topic["topic_id"])
    return topic["topic_id"]


async def test_omitted_wait_seconds_defaults_below_the_typescript_sdk_timeout(db_path):
    async with spawn(db_path) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        default = tools["sync"].input_schema["properties"]["wait_seconds"]["default"]
        assert default == 45  # the TypeScript SDK times a request out at 60 s


async def test_omitted_wait_seconds_uses_the_setting_and_explicit_values_keep_their_meaning(
    db_path,
):
    async with spawn(db_path, AGENT_BUS_SYNC_DEFAULT_WAIT_SECONDS="1") as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert tools["sync"].input_schema["properties"]["wait_seconds"]["default"] == 1
        topic_id = await _joined(s)
        assert (await call(s, "sync", topic_id=topic_id))["status"] == "timeout"
        assert (await call(s, "sync", topic_id=topic_id, wait_seconds=0))["status"] == "empty"
        assert (await call(s, "sync", topic_id=topic_id, wait_seconds=2))["status"] == "timeout"


async def test_progress_notifications_arrive_while_a_sync_waits(db_path):
    seen: list[tuple[float, float | None, str | None]] = []
    two_seen = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))
        if len(seen) >= 2:
            two_seen.set()

    outcome: dict = {}
    async with (
        spawn(db_path, AGENT_BUS_SYNC_PROGRESS_SECONDS="0.2") as s,
        spawn(db_path) as poster,
    ):
        topic_id = await _joined(s)
        await call(poster, "topic_join", agent_name="poster", topic_id=topic_id)

        async def wait() -> None:
            outcome["result"] = await s.call_tool(
                "sync", {"topic_id": topic_id, "wait_seconds": 600}, progress_callback=on_progress
            )

        # Events, not a clock: the sync waits until two notifications came, then a message
        # ends it (a liveness bound only guards against a hang).
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await two_seen.wait()
                await call(
                    poster,
                    "sync",
                    topic_id=topic_id,
                    wait_seconds=0,
                    outbox=[{"content_markdown": "done waiting"}],
                )
        assert outcome["result"].structured_content["status"] == "ready"
        progress = [p for p, _, _ in seen]
        assert progress == sorted(progress) and len(set(progress)) == len(progress)
        assert all(total == 600 for _, total, _ in seen)
        assert topic_id in (seen[0][2] or "")
        # Without a progress token there is nothing to report: the call just waits.
        quiet = await call(s, "sync", topic_id=topic_id, wait_seconds=1)
        assert quiet["status"] == "timeout"
