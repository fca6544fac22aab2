"""`agent-bus hook <client> <event>`: tell a coding client that peers wrote.

One short process per client event. It reads the event JSON on stdin, finds
the identities of its client session (overrides, then the session bindings),
asks the inbox for unread messages and answers in the client's own JSON. It
never breaks the client: any failure exits 0 with nothing on stdout and one
line in ``hooks.log`` beside the bus database.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time

from agent_bus import ancestry
from agent_bus.hooks import contracts as c
from agent_bus.paths import HOOK_LOG_NAME, db_path_from_env
from agent_bus.service import bindings, inbox
from agent_bus.store import bindings as state_q
from agent_bus.store import inbox as inbox_q

TYPE_CHECKING = False
if TYPE_CHECKING:  # the hook process skips importing typing helpers
    from typing import Any

BUSY_TIMEOUT_S = 0.3
MAX_STDIN_BYTES = 4 * 1024 * 1024
MAX_LOG_BYTES = 1024 * 1024
STATE_TTL_SECONDS = 7 * 24 * 3600
WAIT_POLL_SECONDS = 0.5

USAGE = (
    "usage: agent-bus hook CLIENT EVENT [--agent NAME] [--topic ID_OR_NAME]\n"
    "  CLIENT/EVENT: "
    + "; ".join(f"{client}: {', '.join(events)}" for client, events in c.CLIENTS.items())
)


class HookFailure(Exception):
    """Anything that makes the hook stay silent; logged with its message."""


def _parse(argv: list[str]) -> tuple[str, str, str | None, str | None]:
    positional: list[str] = []
    opts: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name not in ("agent", "topic"):
                raise HookFailure(f"unknown option --{name}")
            if not eq:
                i += 1
                if i >= len(argv):
                    raise HookFailure(f"--{name} needs a value")
                value = argv[i]
            opts[name] = value
        else:
            positional.append(arg)
        i += 1
    if len(positional) != 2:
        raise HookFailure("expected CLIENT EVENT")
    agent = opts.get("agent") or os.environ.get("AGENT_BUS_AGENT") or None
    topic = opts.get("topic") or os.environ.get("AGENT_BUS_TOPIC") or None
    return positional[0], positional[1], agent, topic


def _read_payload() -> dict[str, Any]:
    stdin = sys.stdin
    if stdin is None or stdin.closed or stdin.isatty():
        return {}
    raw = stdin.buffer.read(MAX_STDIN_BYTES + 1)
    if len(raw) > MAX_STDIN_BYTES:
        raise HookFailure("stdin larger than 4 MiB")
    if not raw.strip():
        return {}
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise HookFailure(f"stdin is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise HookFailure("stdin is not a JSON object")
    return payload


def _open(db: str) -> sqlite3.Connection:
    if not os.path.isfile(db):
        raise HookFailure(f"no bus database at {db}")
    # mode=rw: never create a database; only these three characters need escaping.
    uri = db.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    conn = sqlite3.connect(
        f"file:{uri}?mode=rw", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S
    )
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute(
        "PRAGMA synchronous = NORMAL"
    )  # as every bus connection: no fsync per commit in WAL
    return conn


def _identities(
    conn: sqlite3.Connection, payload: dict[str, Any], agent: str | None, topic: str | None
) -> list[tuple[str, str]]:
    topic_id = None
    if topic:
        topic_id = inbox_q.topic_id_for(conn, topic)
        if topic_id is None:
            raise HookFailure(f"no topic {topic!r}")
        if agent:
            return [(topic_id, agent)]
    elif agent:
        return inbox_q.open_identities_of(conn, agent)
    session_ids = [bindings.session_id_from_env(os.environ) or ""]
    if isinstance(payload.get("session_id"), str):
        session_ids.append(payload["session_id"])
    cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) else None
    found, _rule = bindings.find_session_identities(
        conn,
        session_ids=session_ids,
        hook_parents=ancestry.chain(os.getpid())[1:],
        cwd=cwd or os.getcwd(),
    )
    if topic_id is not None:
        found = [ident for ident in found if ident[0] == topic_id]
    return found


def _session_key(client: str, payload: dict[str, Any]) -> str:
    sid = payload.get("session_id")
    if isinstance(sid, str) and sid:
        return f"{client}:{sid}"
    me = ancestry.client_of(ancestry.chain(os.getpid())[1:])
    return f"{client}:pid:{me.pid}:{me.start}" if me else f"{client}:unknown"


def _signature(boxes: list[inbox.TopicInbox]) -> str:
    return ",".join(sorted(f"{b.topic_id}:{b.agent_name}:{b.newest_seq}" for b in boxes))


def _write(conn: sqlite3.Connection, fn: Any) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        fn()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _stop_decision(
    conn: sqlite3.Connection,
    client: str,
    payload: dict[str, Any],
    boxes: list[inbox.TopicInbox],
    log: Any,
) -> bool:
    """Whether to ask the client to continue; keeps the loop guard's count durable.

    A count of blocks in a row is kept per client session. It restarts when a new
    message arrived since the last block, or when ``stop_hook_active`` is false (a
    person started this turn, so it is no loop). At ``AGENT_BUS_HOOK_MAX_BLOCKS``
    blocks without anything new the hook lets the agent stop.
    """
    key = _session_key(client, payload)
    max_blocks = c.env_int(c.HOOK_MAX_BLOCKS_ENV, c.HOOK_MAX_BLOCKS_DEFAULT)
    previous = state_q.get_hook_state(conn, key)
    if not boxes:
        if previous is not None:
            _write(conn, lambda: state_q.clear_hook_state(conn, key))
        return False
    signature = _signature(boxes)
    blocks = previous[0] if previous else 0
    active = payload.get("stop_hook_active", True) is not False
    if not active or previous is None or previous[1] != signature:
        blocks = 0
    if blocks >= max_blocks:
        log(f"loop guard: {blocks} blocks in a row without a new message; letting {key} stop")
        return False
    now = time.time()

    def save() -> None:
        state_q.set_hook_state(conn, key, blocks + 1, signature, now)
        if previous is None:
            state_q.prune_hook_state(conn, now - STATE_TTL_SECONDS)

    _write(conn, save)
    return True


def _wait(
    conn: sqlite3.Connection, payload: dict[str, Any], agent: str | None, topic: str | None
) -> int:
    """Claude Code ``asyncRewake``: long-poll, exit 2 with the digest when new mail arrives.

    Only messages newer than those unread at start count (the ``stop`` hook answers
    those). A newer waiter of the same session supersedes this one.
    """
    wait_s = c.env_int(c.HOOK_WAIT_SECONDS_ENV, c.HOOK_WAIT_SECONDS_DEFAULT, minimum=1)
    key = "wait:" + _session_key("claude-code", payload)
    me = f"{os.getpid()}"
    _write(conn, lambda: state_q.set_hook_state(conn, key, 0, me, time.time()))
    baseline = {
        (b.topic_id, b.agent_name): b.newest_seq for b in _boxes(conn, payload, agent, topic)
    }
    deadline = time.monotonic() + wait_s
    version = None
    while time.monotonic() < deadline:
        current = conn.execute("PRAGMA data_version").fetchone()[0]
        if current != version:
            version = current
            held = state_q.get_hook_state(conn, key)
            if held is None or held[1] != me:
                return 0
            fresh = [
                b
                for b in _boxes(conn, payload, agent, topic)
                if b.newest_seq > baseline.get((b.topic_id, b.agent_name), b.cursor)
            ]
            if fresh:
                sys.stderr.write(inbox.describe_all(fresh) + "\n")
                sys.stderr.flush()
                return 2
        time.sleep(WAIT_POLL_SECONDS)
    return 0


def _boxes(
    conn: sqlite3.Connection, payload: dict[str, Any], agent: str | None, topic: str | None
) -> list[inbox.TopicInbox]:
    return inbox.unread(conn, _identities(conn, payload, agent, topic))


def _logger(db: str, client: str, event: str) -> Any:
    def log(message: str) -> None:
        folder = os.path.dirname(db)
        if not os.path.isdir(folder):
            return  # no bus here yet: nothing to log next to
        path = os.path.join(folder, HOOK_LOG_NAME)
        try:
            if os.path.exists(path) and os.path.getsize(path) > MAX_LOG_BYTES:
                os.replace(path, path + ".1")
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            line = " ".join(f"{stamp} pid={os.getpid()} {client} {event}: {message}".split())
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line[:2000] + "\n")
        except OSError:
            pass

    return log


def run(argv: list[str]) -> int:
    """The whole hook; returns the exit code (0, or 2 when a ``wait`` wakes Claude)."""
    db = db_path_from_env()
    client = argv[0] if argv else "?"
    event_name = argv[1] if len(argv) > 1 else "?"
    log = _logger(db, client, event_name)
    conn = None
    try:
        if argv in (["-h"], ["--help"]):
            print(USAGE)
            return 0
        client, event_name, agent, topic = _parse(argv)
        event = c.event_for(client, event_name)
        payload = _read_payload()
        conn = _open(db)
        if event.kind == c.WAIT:
            return _wait(conn, payload, agent, topic)
        boxes = _boxes(conn, payload, agent, topic)
        if event.kind == c.STOP:
            if not _stop_decision(conn, client, payload, boxes, log):
                return 0
            out = c.continue_output(client, inbox.describe_all(boxes))
        elif boxes:
            out = c.context_output(event, inbox.describe_all(boxes))
        else:
            return 0
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return 0
    except BaseException as exc:  # the door's one catch-all: a hook never breaks its client
        if isinstance(exc, KeyboardInterrupt):
            return 0
        log(f"{type(exc).__name__}: {exc}")
        return 0
    finally:
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass


def main(argv: list[str]) -> None:
    code = run(argv)
    try:
        sys.stdout.flush()
    except OSError:
        pass
    sys.exit(code)
