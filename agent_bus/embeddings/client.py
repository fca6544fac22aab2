"""Talking to the embedding service of a database: where it listens, starting it, asking it.

The embedding service (`agent_bus.embeddings.daemon`) is one process per bus
database. It holds the indexing lease, indexes queued messages, and embeds
search queries for every other process over a Unix domain socket, so the
stdio servers never load a model (onnxruntime and the weights cost ~+220 MiB
and, in-process, hold the GIL while a server should be answering).

Protocol: one JSON line per request, one JSON line per reply, several requests
per connection allowed.

- ``{"model": "agent-bus-minilm", "texts": ["…", …]}`` →
  ``{"model": "<model id>", "dim": 384, "vectors": [[…], …]}``
- ``{"op": "status"}`` → ``{"pid": …, "model": …, "state": …, "embedded": …, "queries": …}``
- any failure → ``{"error": {"code": "…", "message": "…"}}``

This module imports only the standard library (numpy only once a vector has
arrived): the stdio server imports it on its background check.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 0.5
REPLY_TIMEOUT = 120.0  # the first query of a service loads the model (~1 s); a batch is short
SPAWN_INTERVAL = 10.0
"""A process starts at most one service per database in this many seconds."""
MAX_LINE = 16 * 1024 * 1024
# Answers that mean "this service cannot use that model": embed in-process instead.
FALLBACK_CODES = frozenset({"INVALID_ARGUMENT", "EMBEDDINGS_UNAVAILABLE"})
_SUN_PATH_MAX = 100  # sockaddr_un.sun_path is 104 (macOS) or 108 (Linux) bytes


class ServiceDown(Exception):
    """Nothing listens on the service socket."""


class ServiceError(Exception):
    """The service answered with an error object."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def supported() -> bool:
    """Unix domain sockets and flock exist on this platform."""
    if not hasattr(socket, "AF_UNIX"):
        return False
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return False
    return True


def _db_key(db: Path | str) -> str:
    return os.path.realpath(os.path.expanduser(str(db)))


def socket_path(db: Path | str) -> str:
    """``<db>.embed.sock`` next to the database (its directory is 0700).

    When that path is too long for a socket address, a hashed name in a private
    per-user directory (``$XDG_RUNTIME_DIR`` or the temp dir, ``agent-bus-<uid>``, 0700).
    """
    key = _db_key(db)
    path = f"{key}.embed.sock"
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    private = Path(base) / f"agent-bus-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    st = private.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(f"{private} is not a private directory of this user")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return str(private / f"{digest}.embed.sock")


def log_path(db: Path | str) -> str:
    """The service's log file, next to the database."""
    return f"{_db_key(db)}.embed.log"


def request(path: str, payload: dict[str, Any], *, timeout: float = REPLY_TIMEOUT) -> Any:
    """Send one request line, return the decoded reply.

    Raises:
        ServiceDown: no process listens on ``path``.
        ServiceError: the service answered ``{"error": …}``.
        OSError, ValueError: the connection broke or the reply was not JSON.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ServiceDown(str(exc)) from None
        sock.settimeout(timeout)
        sock.sendall(json.dumps(payload).encode("utf-8") + b"\n")
        with sock.makefile("rb") as reader:
            line = reader.readline(MAX_LINE)
    finally:
        sock.close()
    if not line.endswith(b"\n"):
        raise ValueError("the embedding service closed the connection without a reply")
    reply = json.loads(line)
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        err = reply["error"]
        raise ServiceError(str(err.get("code", "INTERNAL_ERROR")), str(err.get("message", "")))
    return reply


def status(db: Path | str) -> dict[str, Any] | None:
    """The running service's own status, or None when none answers."""
    if not supported():
        return None
    try:
        return request(socket_path(db), {"op": "status"}, timeout=2.0)
    except (ServiceDown, ServiceError, OSError, ValueError):
        return None


# --- starting the service --------------------------------------------------------------------

_spawn_lock = threading.Lock()
_spawned: dict[str, tuple[float, subprocess.Popen[bytes]]] = {}


def spawn(settings: Any) -> subprocess.Popen[bytes] | None:
    """Start the database's embedding service, detached; at most once per SPAWN_INTERVAL.

    Extra services exit at once (one per database: a lock file decides), so several
    servers starting one at the same moment cost a short-lived process each, no more.
    Returns the child (a thread waits on it: no zombie), or the one started recently.
    """
    key = _db_key(settings.db)
    with _spawn_lock:
        recent = _spawned.get(key)
        if recent is not None and time.monotonic() - recent[0] < SPAWN_INTERVAL:
            return recent[1]
        cmd = [sys.executable, "-m", "agent_bus.embeddings.daemon", "--db", key]
        if settings.embedding_model:
            cmd += ["--model", settings.embedding_model]
        env = {**os.environ, "AGENT_BUS_DB": key}
        try:
            child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                start_new_session=True,
                env=env,
            )
        except OSError as exc:
            logger.warning("could not start the embedding service: %s", exc)
            _spawned[key] = (time.monotonic(), None)  # type: ignore[assignment]
            return None
        threading.Thread(target=child.wait, name="agent-bus-embed-reaper", daemon=True).start()
        _spawned[key] = (time.monotonic(), child)
        logger.info("started the embedding service (pid %d) for %s", child.pid, key)
        return child


# --- query embedding ---------------------------------------------------------------------------

_lacking: set[tuple[str, str]] = set()  # (db, model) the service said it cannot embed


def embed_via_service(settings: Any, model_id: str, texts: list[str]) -> Any | None:
    """Vectors (float32 rows) from the database's embedding service, starting it if needed.

    Returns None when the caller should embed in its own process: the service is off
    (``AGENT_BUS_EMBED_SERVICE=false``), unsupported here, could not start within
    ``embed_service_wait_seconds``, or cannot load this model. Each such case is logged.

    Raises:
        ServiceError: the service has the model but it failed on these texts.
    """
    if not getattr(settings, "embed_service", False) or not supported():
        return None
    key = (_db_key(settings.db), model_id)
    if key in _lacking:
        return None
    try:
        path = socket_path(settings.db)
        reply = _ask_or_start(settings, path, {"model": model_id, "texts": texts})
    except ServiceError as exc:
        if exc.code in FALLBACK_CODES:
            _lacking.add(key)
            logger.warning(
                "the embedding service cannot use %s (%s); embedding the query in-process",
                model_id,
                exc.message,
            )
            return None
        raise
    except (ServiceDown, OSError, ValueError) as exc:
        logger.warning("embedding service unavailable (%s); embedding the query in-process", exc)
        return None
    import numpy as np

    vectors = np.asarray(reply["vectors"], dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ValueError("the embedding service sent malformed vectors")
    return vectors


def _ask_or_start(settings: Any, path: str, payload: dict[str, Any]) -> Any:
    try:
        return request(path, payload)
    except ServiceDown:
        pass
    child = spawn(settings)
    deadline = time.monotonic() + settings.embed_service_wait_seconds
    while True:
        try:
            return request(path, payload)
        except ServiceDown:
            if time.monotonic() >= deadline:
                raise ServiceDown(
                    f"no embedding service answered on {path} within "
                    f"{settings.embed_service_wait_seconds:g} s"
                ) from None
            if child is not None and child.poll() not in (None, 0):
                raise ServiceDown(
                    f"the embedding service exited with status {child.returncode}; see "
                    f"{log_path(settings.db)}"
                ) from None
            time.sleep(0.05)
