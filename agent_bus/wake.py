"""How a waiting `sync` learns that a message arrived.

One `ChangeWatcher` per process and database. While at least one waiter
exists it watches the database directory with inotify (Linux) and, as a
safety net, re-checks on a slow timer; each time it reads ``PRAGMA
data_version`` on its own connection, which changes whenever any other
connection (in this or another process) commits. A change bumps
``generation`` and wakes every waiter of this process. With no waiters it
does nothing at all, so an idle server costs no CPU.

The inotify descriptor is opened once and kept for the watcher's life: with
no waiters it is merely not read (events queue in the kernel and are drained
on the next start). Closing an inotify descriptor waits for a kernel RCU
grace period — milliseconds, on the event loop — and doing it after every
long-poll delayed the very response that wait produced.

Waiters never miss a commit: they read ``generation`` *before* checking the
database, then wait for it to move past that value.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import sqlite3
from pathlib import Path

logger = logging.getLogger(__name__)

_IN_MODIFY = 0x00000002
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_NONBLOCK = 0o4000
# Seconds between re-checks after a file event that showed no commit yet: every
# millisecond (the event loop's timer floor) for a while, then backing off. A check
# is one PRAGMA on an idle connection, and bursts happen only after file events
# while someone waits, so an idle server still costs nothing.
_RECHECK_AFTER = (0.001,) * 8 + (0.002, 0.004, 0.008, 0.016, 0.032)
_IN_CLOEXEC = 0o2000000


def _open_inotify(directory: Path) -> int | None:
    """An inotify descriptor watching ``directory``, or None where unsupported."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        mask = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
        if libc.inotify_add_watch(fd, str(directory).encode(), mask) < 0:
            os.close(fd)
            return None
        return fd
    except (OSError, AttributeError):
        return None


async def _wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` up to ``timeout`` seconds; True if it was set.

    ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11 the latter can
    swallow a cancellation that arrives as the event fires, and a cancelled long-poll
    (client cancel, Ctrl-C) must always end.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
        return True
    except TimeoutError:
        return False


class ChangeWatcher:
    """Wakes this process's waiters when the database changes."""

    def __init__(self, db_path: Path, *, fallback_poll_ms: int = 250) -> None:
        self.db_path = db_path
        self.generation = 0
        self._fallback = fallback_poll_ms / 1000
        self._waiters = 0
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._last_version: int | None = None
        self._inotify_fd: int | None = None
        self._inotify_tried = False
        self._poke: asyncio.Event | None = None
        self.stopping = False

    def stop_waits(self) -> None:
        """Server shutdown: wake every waiter now; waits that start later return at once."""
        self.stopping = True
        self._bump()

    def notify(self) -> None:
        """Called after a commit made by this process: wake waiters now."""
        self._bump()

    async def wait(self, since_generation: int, timeout: float) -> bool:
        """Wait until ``generation`` moves past ``since_generation``.

        Returns True on a change, False when ``timeout`` (seconds) ran out.
        """
        if self.generation != since_generation:
            return True
        if self.stopping:
            return False
        self._waiters += 1
        self._ensure_running()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while self.generation == since_generation:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                assert self._changed is not None
                event = self._changed
                await _wait_event(event, remaining)
            return True
        finally:
            self._waiters -= 1

    def _bump(self) -> None:
        self.generation += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def _ensure_running(self) -> None:
        if self._changed is None:
            self._changed = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _data_version(self) -> int | None:
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(str(self.db_path), check_same_thread=False)
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            # A locked or vanished file: treat as "maybe changed", waiters re-check.
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
            self._conn = None
            return None

    def _check(self) -> bool:
        """Bump the generation if the database changed; returns whether it did."""
        version = self._data_version()
        if version is None or version != self._last_version:
            self._last_version = version
            self._bump()
            return True
        return False

    def _drain(self) -> None:
        assert self._inotify_fd is not None
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._inotify_fd, 65536):
                pass

    def _on_inotify(self) -> None:
        self._drain()
        if self._poke is not None:
            self._poke.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_version = self._data_version()
        self._poke = asyncio.Event()
        if not self._inotify_tried:
            self._inotify_tried = True
            self._inotify_fd = _open_inotify(self.db_path.parent)
        if self._inotify_fd is not None:
            self._drain()  # events of commits while nobody waited: the check below covers them
            loop.add_reader(self._inotify_fd, self._on_inotify)
        # A commit may have landed between a waiter's database check and this start,
        # before our baseline and our file watch: make every current waiter look again.
        self._bump()
        # Without file notifications, poll briskly; with them, the timer is a safety net.
        idle = self._fallback if self._inotify_fd is not None else 0.01
        burst: list[float] = []
        try:
            while self._waiters > 0:
                poked = await _wait_event(self._poke, burst.pop(0) if burst else idle)
                self._poke.clear()
                if self._check():
                    burst = []
                elif poked:
                    # A WAL write is seen before its commit becomes visible (through
                    # shared memory, which raises no file event): look again shortly.
                    burst = list(_RECHECK_AFTER)
        finally:
            if self._inotify_fd is not None:
                loop.remove_reader(self._inotify_fd)  # kept open: see the module docstring
            self._task = None

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._inotify_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._inotify_fd)
            self._inotify_fd = None
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
