"""Session bindings: which identities a coding client's MCP servers serve.

A server records, the first time it serves ``topic_join`` or ``sync`` for an
identity, the client it runs under; ``agent-bus hook`` (run by the same
client) looks its own client up to find "my" identities. The rule, in order:

1. **Session id.** Where the client passes one id to hooks and servers
   (``CLAUDE_CODE_SESSION_ID``, ``GEMINI_SESSION_ID``), bindings with the
   hook's id win.
2. **Client process.** A binding's client is the server's nearest ancestor
   that is not a launcher (shell, ``uvx``, ``npx``, ``env`` …); a hook's client
   is its own nearest such ancestor. They match when both are the same process
   (pid *and* start time). Two clients in two terminals share only the
   terminal, and a client nested inside another (an agent running ``claude``
   in its shell) is a different process, so neither sees the other's bindings.
3. **Working directory.** Otherwise, when exactly one live server has the
   hook's cwd, its identities.

Bindings whose client has exited are ignored and swept by the next recording.
"""

from __future__ import annotations

import json
import os
import time
from collections import namedtuple

from agent_bus import ancestry
from agent_bus.store import bindings as q

TYPE_CHECKING = False
if TYPE_CHECKING:  # the hook process skips importing typing helpers
    import sqlite3
    from collections.abc import Callable, Mapping
    from typing import Any

SESSION_ENV_VARS = ("CLAUDE_CODE_SESSION_ID", "GEMINI_SESSION_ID")


def session_id_from_env(env: Mapping[str, str]) -> str | None:
    for name in SESSION_ENV_VARS:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


_Binding = namedtuple(
    "_Binding",
    "topic_id agent_name server client session_id cwd client_name client_version updated_at",
)


class Binding(_Binding):
    """One identity served to one client; ``server``/``client`` are (pid, start time)."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Binding:
        client = None
        if row["client_pid"] is not None:
            client = (int(row["client_pid"]), str(row["client_start"]))
        return cls(
            topic_id=row["topic_id"],
            agent_name=row["agent_name"],
            server=(int(row["server_pid"]), str(row["server_start"])),
            client=client,
            session_id=row["session_id"],
            cwd=row["cwd"],
            client_name=row["client_name"],
            client_version=row["client_version"],
            updated_at=float(row["updated_at"]),
        )


class BindingRecorder:
    """One per server process: records each identity it serves once (cheap on every sync)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._session_id = session_id_from_env(env)
        self._recorded: set[tuple[str, str]] = set()
        self._swept = False
        self._base: dict[str, Any] | None = None
        self._disabled = False

    def needs(self, topic_id: str, agent_name: str) -> bool:
        return not self._disabled and (topic_id, agent_name) not in self._recorded

    def disable(self) -> None:
        """Record nothing (the HTTP door: its agents are not children of our parent)."""
        self._disabled = True

    def _process_facts(self) -> dict[str, Any]:
        if self._base is None:
            procs = ancestry.chain(os.getpid())
            me, parents = (procs[0], procs[1:]) if procs else (None, [])
            client = ancestry.client_of(parents)
            try:
                cwd: str | None = os.getcwd()
            except OSError:
                cwd = None
            self._base = {
                "server_pid": os.getpid(),
                "server_start": me.start if me else "",
                "client_pid": client.pid if client else None,
                "client_start": client.start if client else None,
                "ancestry_json": json.dumps([[p.pid, p.start, p.launcher] for p in parents]),
                "session_id": self._session_id,
                "cwd": cwd,
            }
        return self._base

    def record(
        self,
        write: Callable[[Callable[[sqlite3.Connection], None]], None],
        topic_id: str,
        agent_name: str,
        client_name: str | None = None,
        client_version: str | None = None,
    ) -> bool:
        """Write the binding unless this process already did; True when it wrote.

        ``write`` runs a function inside a write transaction (the database handle's).
        The first recording also sweeps bindings of clients that have exited.
        """
        key = (topic_id, agent_name)
        if not self.needs(topic_id, agent_name):
            return False
        row = dict(self._process_facts())
        row.update(
            topic_id=topic_id,
            agent_name=agent_name,
            client_name=client_name,
            client_version=client_version,
            now=time.time(),
        )
        sweep = not self._swept

        def tx(conn: sqlite3.Connection) -> None:
            if sweep:
                sweep_dead(conn)
            q.upsert_binding(conn, row)

        write(tx)
        self._recorded.add(key)
        self._swept = True
        return True


def sweep_dead(conn: sqlite3.Connection) -> int:
    """Delete bindings whose client process has exited (call inside a write transaction)."""
    removed = 0
    for pid, start in q.clients(conn):
        if not ancestry.is_alive(pid, start):
            removed += q.delete_client(conn, pid, start)
    return removed


def live_bindings(conn: sqlite3.Connection) -> list[Binding]:
    """Every binding whose client still runs (dead ones are ignored, not deleted: read-only)."""
    alive: dict[tuple[int, str], bool] = {}
    out = []
    for row in q.all_bindings(conn):
        b = Binding.from_row(row)
        if b.client is None:
            continue
        if b.client not in alive:
            alive[b.client] = ancestry.is_alive(*b.client)
        if alive[b.client]:
            out.append(b)
    return out


def _identities(bindings: list[Binding]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((b.topic_id, b.agent_name) for b in bindings))


def find_session_identities(
    conn: sqlite3.Connection,
    *,
    session_ids: list[str],
    hook_parents: list[ancestry.Proc],
    cwd: str | None,
) -> tuple[list[tuple[str, str]], str]:
    """The identities of the hook's client session and which rule found them.

    Returns ``([], "none")`` when no rule applies (the hook then stays silent).
    """
    live = live_bindings(conn)
    if not live:
        return [], "none"
    wanted = {s for s in session_ids if s}
    if wanted:
        found = [b for b in live if b.session_id in wanted]
        if found:
            return _identities(found), "session-id"
    client = ancestry.client_of(hook_parents)
    if client is not None:
        found = [b for b in live if b.client == client.key()]
        if found:
            return _identities(found), "client-process"
    if cwd:
        here = os.path.realpath(cwd)
        found = [b for b in live if b.cwd and os.path.realpath(b.cwd) == here]
        if len({b.server for b in found}) == 1:
            return _identities(found), "cwd"
    return [], "none"
