"""The change watcher: no commit may be missed between a waiter's check and its wait."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path

import anyio
import pytest

from agent_bus.bus import Bus
from agent_bus.models import OutboxItem
from agent_bus.service import sync as sync_service
from agent_bus.settings import BusSettings
from agent_bus.wake import ChangeWatcher

pytestmark = pytest.mark.anyio


def _cursor_row(db: Path, topic_id: str, agent: str) -> tuple | None:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return conn.execute(
            "SELECT last_seq FROM cursors WHERE topic_id = ? AND agent_name = ?", (topic_id, agent)
        ).fetchone()


async def test_a_commit_between_the_check_and_the_wait_wakes_the_waiter(tmp_path: Path):
    path = tmp_path / "w.sqlite"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE t (x)")
    watcher = ChangeWatcher(path)
    try:
        generation = watcher.generation  # the waiter's snapshot, then its (empty) check
        other.execute("INSERT INTO t VALUES (1)")  # another process commits right then
        with anyio.fail_after(60):  # liveness only: the result says whether it woke
            assert await watcher.wait(generation, 600) is True
    finally:
        watcher.close()
        other.close()


async def test_a_waiting_sync_returns_a_message_posted_right_after_its_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # No presence touch within the test: only a wake-up can end the wait early.
    settings = BusSettings(db=tmp_path / "bus.sqlite", presence_touch_seconds=3600)
    waiter, peer = Bus(settings), Bus(settings)  # separate pools and watchers, as two processes
    try:
        topic, _ = waiter.topic_create("race")
        real_check = sync_service.has_messages_after
        posted: list[bool] = []

        def check_then_peer_posts(*args):
            result = real_check(*args)
            if not posted:
                posted.append(True)
                peer.post(topic.topic_id, "peer", [OutboxItem(content_markdown="hi")])
            return result

        # The waiter's check of the database (peer posts nothing through it).
        monkeypatch.setattr(sync_service, "has_messages_after", check_then_peer_posts)
        # A missed wake-up would wait 600 s; a generous liveness bound catches it.
        with anyio.fail_after(60):
            result = await waiter.async_sync(
                topic.topic_id,
                "me",
                [],
                max_items=5,
                include_self=False,
                wait_seconds=600,
                auto_advance=True,
                ack_through=None,
            )
        assert result.status == "ready"
        assert [m.content_markdown for m in result.received] == ["hi"]
    finally:
        waiter.close()
        peer.close()


async def test_a_sync_cancelled_while_its_step_commits_leaves_the_messages_for_the_next_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The client gives up at the instant a waiting sync reads: nothing is consumed unseen."""
    settings = BusSettings(db=tmp_path / "bus.sqlite")
    waiter, peer = Bus(settings), Bus(settings)
    committed, release = threading.Event(), threading.Event()
    real_step = sync_service.step

    def step_that_lingers(*args, **kwargs):
        parts = real_step(*args, **kwargs)
        if parts[1]:  # it read the peer's message and moved the cursor: now the cancel lands
            committed.set()
            release.wait(10)
        return parts

    try:
        topic, _ = waiter.topic_create("cancel-race")
        options = dict(max_items=5, include_self=False, auto_advance=True, ack_through=None)
        monkeypatch.setattr(sync_service, "step", step_that_lingers)
        waiting = asyncio.ensure_future(
            waiter.async_sync(topic.topic_id, "me", [], wait_seconds=30, **options)
        )
        with anyio.fail_after(60):  # until its first step has written the cursor: it waits
            while _cursor_row(settings.db, topic.topic_id, "me") is None:
                await anyio.sleep(0.01)
        assert not waiting.done()
        peer.post(topic.topic_id, "peer", [OutboxItem(content_markdown="do not lose me")])
        with anyio.fail_after(60):
            while not committed.is_set():
                await anyio.sleep(0.01)
        waiting.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        monkeypatch.setattr(sync_service, "step", real_step)
        again = await waiter.async_sync(topic.topic_id, "me", [], wait_seconds=0, **options)
        assert [m.content_markdown for m in again.received] == ["do not lose me"]
    finally:
        release.set()
        waiter.close()
        peer.close()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="inotify is Linux-only")
async def test_the_file_watch_outlives_each_wait_so_no_wake_pays_for_closing_it(tmp_path: Path):
    path = tmp_path / "w.sqlite"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE t (x)")
    watcher = ChangeWatcher(path)
    try:
        seen = []
        for value in (1, 2):
            generation = watcher.generation
            async with anyio.create_task_group() as tg:

                async def wait(g: int = generation) -> None:
                    with anyio.fail_after(60):  # liveness only
                        while not await watcher.wait(g, 30):
                            pass

                tg.start_soon(wait)
                await anyio.sleep(0.05)
                other.execute("INSERT INTO t VALUES (?)", (value,))
            while watcher._task is not None:  # the watch loop ends once nobody waits
                await anyio.sleep(0.01)
            seen.append(watcher._inotify_fd)
        assert seen[0] is not None and seen[0] == seen[1]
        assert Path(f"/proc/self/fd/{seen[0]}").exists()  # still open, just not read
    finally:
        watcher.close()
        other.close()
    assert watcher._inotify_fd is None
