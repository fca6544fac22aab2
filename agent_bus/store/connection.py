"""Opening the bus database and running short, retried transactions.

Every process opens its own connections (one per worker thread). WAL mode lets
readers proceed while one writer commits; writers take the lock up front with
``BEGIN IMMEDIATE`` so that lock upgrades never deadlock, and a busy database
is waited for (SQLite's busy handler plus a jittered retry) until the
configured deadline before `DbBusy` reaches anyone.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from agent_bus.errors import DbBusy, InternalError

T = TypeVar("T")

_BUSY_MARKERS = ("database is locked", "database is busy", "database table is locked")


def is_busy_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(
        marker in str(exc).lower() for marker in _BUSY_MARKERS
    )


def prepare_path(path: Path) -> None:
    """Create the parent directory (0700) and the file (0600) before SQLite does.

    SQLite gives the -wal and -shm files the main file's permissions, so the
    whole bus stays private to the user.
    """
    parent = path.parent
    if not parent.exists():
        parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)


def open_connection(path: Path, *, busy_timeout_ms: int) -> sqlite3.Connection:
    """One connection in autocommit mode (transactions are explicit) with our pragmas."""
    conn = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
    )
    conn.row_factory = sqlite3.Row
    # Per-attempt wait inside SQLite; the overall deadline is enforced by retry().
    conn.execute(f"PRAGMA busy_timeout = {min(busy_timeout_ms, 2000)}")
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() != "wal":
        retry(lambda: conn.execute("PRAGMA journal_mode = WAL"), busy_timeout_ms)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def retry(fn: Callable[[], T], deadline_ms: int) -> T:
    """Run ``fn`` again while the database is busy, with jitter, until the deadline."""
    deadline = time.monotonic() + deadline_ms / 1000
    delay = 0.001
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise DbBusy(
                    "The database stayed locked by other writers for "
                    f"{deadline_ms} ms; retry the call (nothing was written)."
                ) from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.05)


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; rolls back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # Also after a failed COMMIT (disk full, I/O error): never leave the pooled
        # connection inside a transaction.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A consistent snapshot for multi-statement reads."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


class ConnectionPool:
    """One connection per thread, opened lazily; all closed together."""

    def __init__(
        self, path: Path, *, busy_timeout_ms: int, on_open: Callable[[sqlite3.Connection], None]
    ):
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._on_open = on_open
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                prepare_path(self.path)
                conn = open_connection(self.path, busy_timeout_ms=self.busy_timeout_ms)
            except sqlite3.DatabaseError as exc:
                if is_busy_error(exc):
                    raise DbBusy("The database is locked; retry the call.") from exc
                raise InternalError(f"cannot open the bus database {self.path}: {exc}") from exc
            except OSError as exc:
                raise InternalError(f"cannot create the bus database {self.path}: {exc}") from exc
            self._on_open(conn)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
