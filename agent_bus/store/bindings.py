"""SQL for session bindings and the hooks' loop-guard state (plain ``sqlite3``)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # the hook process skips importing typing helpers
    import sqlite3
    from typing import Any

BINDING_COLUMNS = (
    "topic_id, agent_name, server_pid, server_start, client_pid, client_start, ancestry_json, "
    "session_id, cwd, client_name, client_version, created_at, updated_at"
)


def upsert_binding(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(
        f"INSERT INTO session_bindings({BINDING_COLUMNS}) VALUES ("
        ":topic_id, :agent_name, :server_pid, :server_start, :client_pid, :client_start, "
        ":ancestry_json, :session_id, :cwd, :client_name, :client_version, :now, :now) "
        "ON CONFLICT(server_pid, server_start, topic_id, agent_name) DO UPDATE SET "
        "client_pid = excluded.client_pid, client_start = excluded.client_start, "
        "ancestry_json = excluded.ancestry_json, session_id = excluded.session_id, "
        "cwd = excluded.cwd, client_name = excluded.client_name, "
        "client_version = excluded.client_version, updated_at = excluded.updated_at",
        row,
    )


def all_bindings(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    cur = conn.execute(f"SELECT {BINDING_COLUMNS} FROM session_bindings ORDER BY updated_at DESC")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def clients(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT DISTINCT client_pid, client_start FROM session_bindings "
        "WHERE client_pid IS NOT NULL"
    ).fetchall()
    return [(int(r[0]), r[1]) for r in rows]


def delete_client(conn: sqlite3.Connection, pid: int, start: str) -> int:
    return conn.execute(
        "DELETE FROM session_bindings WHERE client_pid = ? AND client_start = ?", (pid, start)
    ).rowcount


def get_hook_state(conn: sqlite3.Connection, key: str) -> tuple[int, str | None] | None:
    row = conn.execute(
        "SELECT blocks, signature FROM hook_state WHERE session_key = ?", (key,)
    ).fetchone()
    return None if row is None else (int(row[0]), row[1])


def set_hook_state(
    conn: sqlite3.Connection, key: str, blocks: int, signature: str | None, now: float
) -> None:
    conn.execute(
        "INSERT INTO hook_state(session_key, blocks, signature, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(session_key) DO UPDATE SET blocks = excluded.blocks, "
        "signature = excluded.signature, updated_at = excluded.updated_at",
        (key, blocks, signature, now),
    )


def clear_hook_state(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM hook_state WHERE session_key = ?", (key,))


def prune_hook_state(conn: sqlite3.Connection, before: float) -> None:
    conn.execute("DELETE FROM hook_state WHERE updated_at < ?", (before,))
