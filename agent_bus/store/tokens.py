"""SQL of the ``access_tokens`` table (HTTP bearer tokens, stored as hashes)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

_COLUMNS = (
    "token_id, label, secret_hash, agents_json, topics_json, read_only, created_at, "
    "expires_at, revoked_at, last_used_at"
)


def _row(row: sqlite3.Row | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    out["agents"] = None if out["agents_json"] is None else json.loads(out["agents_json"])
    out["topics"] = None if out["topics_json"] is None else json.loads(out["topics_json"])
    out["read_only"] = bool(out["read_only"])
    return out


def insert(
    conn: sqlite3.Connection,
    *,
    token_id: str,
    label: str,
    secret_hash: str,
    agents: list[str] | None,
    topics: list[str] | None,
    read_only: bool,
    created_at: float,
    expires_at: float | None,
) -> None:
    conn.execute(
        "INSERT INTO access_tokens (token_id, label, secret_hash, agents_json, topics_json, "
        "read_only, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            token_id,
            label,
            secret_hash,
            None if agents is None else json.dumps(agents),
            None if topics is None else json.dumps(topics),
            int(read_only),
            created_at,
            expires_at,
        ),
    )


def get(conn: sqlite3.Connection, token_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM access_tokens WHERE token_id = ?", (token_id,)
    ).fetchone()
    return _row(row)


def all_tokens(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM access_tokens ORDER BY created_at, token_id")
    return [r for r in (_row(row) for row in rows) if r is not None]


def count_usable(conn: sqlite3.Connection, now: float) -> int:
    """Tokens neither revoked nor expired."""
    return conn.execute(
        "SELECT count(*) FROM access_tokens WHERE revoked_at IS NULL "
        "AND (expires_at IS NULL OR expires_at > ?)",
        (now,),
    ).fetchone()[0]


def revoke(conn: sqlite3.Connection, token_id: str, now: float) -> bool:
    """Mark a token revoked; False if there is no such token."""
    cur = conn.execute(
        "UPDATE access_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE token_id = ?",
        (now, token_id),
    )
    return cur.rowcount > 0


def touch(conn: sqlite3.Connection, token_id: str, now: float) -> None:
    conn.execute("UPDATE access_tokens SET last_used_at = ? WHERE token_id = ?", (now, token_id))
