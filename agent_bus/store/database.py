"""The database handle: connections, short retried transactions, the change watcher.

A `Database` knows nothing of topics or messages. Service modules
(`agent_bus.service.*`) take one and pass plain functions of a connection to
`read` or `write`, as llm's ``Collection(name, db)`` takes a sqlite-utils
``Database``. It imports neither pydantic nor mcp, so short-lived processes
(the client hooks) can open the bus cheaply.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from agent_bus.store.connection import ConnectionPool, read_transaction, retry, write_transaction
from agent_bus.store.schema import ensure_schema

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_MS = 5000
DEFAULT_FALLBACK_POLL_MS = 1000


class Database:
    """One bus file: a connection per thread, read/write with busy retry, a worker pool."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        fallback_poll_ms: int = DEFAULT_FALLBACK_POLL_MS,
    ) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._fallback_poll_ms = fallback_poll_ms
        self._pool = ConnectionPool(path, busy_timeout_ms=busy_timeout_ms, on_open=self._on_open)
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._executor: Any = None  # a ThreadPoolExecutor, made by the first run()
        self._watcher: Any = None

    def _on_open(self, conn: Any) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if not self._schema_ready:
                retry(lambda: ensure_schema(conn, str(self.path)), self.busy_timeout_ms)
                self._schema_ready = True

    @property
    def watcher(self) -> Any:
        """The process-wide `ChangeWatcher` of this file, created on first use.

        Lazy so that processes that never wait (CLI commands, hooks) never import asyncio
        machinery they do not use.
        """
        if self._watcher is None:
            with self._schema_lock:
                if self._watcher is None:
                    from agent_bus.wake import ChangeWatcher

                    self._watcher = ChangeWatcher(
                        self.path, fallback_poll_ms=self._fallback_poll_ms
                    )
        return self._watcher

    def notify_change(self) -> None:
        """Wake this process's waiters after a commit of ours (others learn it from the file)."""
        if self._watcher is not None:
            self._watcher.notify()

    def conn(self):  # noqa: ANN201 - sqlite3.Connection
        """This thread's connection (schema checked on first open)."""
        return self._pool.get()

    def ensure_ready(self) -> None:
        """Open the database and check its schema (raises SchemaMismatch)."""
        self.conn()

    def read(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(conn)`` in a read snapshot, retried while the database is busy."""
        conn = self.conn()

        def attempt() -> T:
            with read_transaction(conn):
                return fn(conn)

        return retry(attempt, self.busy_timeout_ms)

    def write(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(conn)`` in one ``BEGIN IMMEDIATE`` transaction, retried while busy."""
        conn = self.conn()

        def attempt() -> T:
            with write_transaction(conn):
                return fn(conn)

        return retry(attempt, self.busy_timeout_ms)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call on the worker pool, so an event loop never waits on SQLite."""
        import asyncio  # here, not at the top: short processes (hooks) never pay for it
        from concurrent.futures import ThreadPoolExecutor

        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="agent-bus-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._pool.close()
