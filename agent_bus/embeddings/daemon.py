"""The embedding service of one bus database: ``python -m agent_bus.embeddings.daemon --db PATH``.

One per database (an exclusive ``flock`` on ``<socket>.lock`` decides; a second
one exits at once with status 0, and the kernel drops the lock of a killed one).
It

- runs the `BackgroundIndexer` (indexing lease with heartbeat and TTL, batches from
  the job queue, retries with backoff) — the same code a server ran in-process;
- embeds queries for other processes on a Unix domain socket (see
  `agent_bus.embeddings.client` for the protocol), one thread per connection;
- exits after ``embed_service_idle_seconds`` without a query or an embedded job
  (and no due job it could take), on SIGTERM/SIGINT, or when the database file is
  gone — handing the lease back and removing its socket.

Servers and searches start it (`client.spawn`); nobody needs to run it by hand.
Its log goes to ``<db>.embed.log``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socketserver
import sys
import threading
import time
from pathlib import Path
from typing import Any

from agent_bus.embeddings import client

logger = logging.getLogger("agent_bus.embeddings.daemon")

MAX_TEXTS = 1024
_LOG_MAX_BYTES = 1024 * 1024


class _Handler(socketserver.StreamRequestHandler):
    timeout = 300  # an idle connection is dropped

    def handle(self) -> None:
        service: EmbeddingService = self.server.service  # type: ignore[attr-defined]
        while True:
            try:
                line = self.rfile.readline(client.MAX_LINE)
            except OSError:
                return
            if not line:
                return
            if not line.endswith(b"\n"):
                reply: dict[str, Any] = _error("INVALID_ARGUMENT", "request line too long")
            else:
                reply = service.answer(line)
            try:
                self.wfile.write(json.dumps(reply).encode("utf-8") + b"\n")
                self.wfile.flush()
            except OSError:
                return


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class EmbeddingService:
    def __init__(self, settings: Any, sock_path: str) -> None:
        self.settings = settings
        self.sock_path = sock_path
        self.model_id = settings.embedding_model
        self.stop = threading.Event()
        self.last_activity = time.monotonic()
        self.queries = 0
        self.indexer: Any = None

    # --- queries ----------------------------------------------------------------------------

    def answer(self, line: bytes) -> dict[str, Any]:
        self.last_activity = time.monotonic()
        try:
            req = json.loads(line)
        except ValueError:
            return _error("INVALID_ARGUMENT", "the request is not JSON")
        if not isinstance(req, dict):
            return _error("INVALID_ARGUMENT", "the request must be a JSON object")
        if req.get("op") == "status":
            return self.status()
        texts = req.get("texts")
        if (
            not isinstance(texts, list)
            or not all(isinstance(t, str) for t in texts)
            or len(texts) > MAX_TEXTS
        ):
            return _error("INVALID_ARGUMENT", f"texts: a list of at most {MAX_TEXTS} strings")
        model = req.get("model")
        if model is not None and not isinstance(model, str):
            return _error("INVALID_ARGUMENT", "model must be a string")
        from agent_bus.embeddings.models import default_model_id, get_embedder
        from agent_bus.errors import BusError

        try:
            embedder = get_embedder(model or default_model_id(self.model_id), explicit=True)
        except BusError as exc:
            return _error(exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - a model plugin may raise anything
            return _error("EMBEDDINGS_UNAVAILABLE", f"{type(exc).__name__}: {exc}")
        try:
            vectors = embedder.embed(texts) if texts else None
        except Exception as exc:  # noqa: BLE001
            return _error("EMBEDDING_FAILED", f"{type(exc).__name__}: {exc}")
        self.queries += 1
        self.last_activity = time.monotonic()
        if vectors is None:
            return {"model": embedder.model_id, "dim": 0, "vectors": []}
        return {
            "model": embedder.model_id,
            "dim": int(vectors.shape[1]),
            "vectors": vectors.tolist(),
        }

    def status(self) -> dict[str, Any]:
        ix = self.indexer
        return {
            "pid": os.getpid(),
            "socket": self.sock_path,
            "model": self.model_id,
            "state": None if ix is None else ix.state,
            "embedded": 0 if ix is None else ix.embedded,
            "last_error": None if ix is None else ix.last_error,
            "queries": self.queries,
            "idle_seconds": round(time.monotonic() - self.last_activity, 1),
        }

    # --- life cycle ----------------------------------------------------------------------------

    def run(self) -> int:
        from agent_bus.bus import Bus
        from agent_bus.embeddings.worker import BackgroundIndexer
        from agent_bus.store import embeddings as store

        db = Path(self.settings.db)
        bus = Bus(self.settings)
        # We hold the lock: a socket file left here belongs to a dead service.
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass
        old_umask = os.umask(0o177)
        try:
            server = _Server(self.sock_path, _Handler)
        finally:
            os.umask(old_umask)
        server.service = self  # type: ignore[attr-defined]
        sock_inode = os.stat(self.sock_path).st_ino
        serving = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True
        )
        serving.start()
        self.indexer = BackgroundIndexer(bus, model_id=self.model_id).start()
        logger.info("embedding service %d on %s for %s", os.getpid(), self.sock_path, db)
        idle = self.settings.embed_service_idle_seconds
        embedded = 0
        reason = "stopped"
        try:
            while not self.stop.wait(min(1.0, idle / 4)):
                if not db.exists():
                    reason = "database removed"
                    break
                if self.indexer.embedded != embedded:
                    embedded = self.indexer.embedded
                    self.last_activity = time.monotonic()
                if time.monotonic() - self.last_activity < idle:
                    continue
                if self.indexer.is_leader:
                    try:
                        due = bus.read(lambda c: store.has_due_job(c, time.time()))
                    except Exception:  # noqa: BLE001 - a busy DB: look again later
                        due = True
                    if due and self.indexer.state != "unavailable":
                        continue
                reason = f"idle for {idle:g} s"
                break
        finally:
            logger.info("embedding service %d exiting: %s", os.getpid(), reason)
            server.shutdown()
            server.server_close()
            try:
                if os.stat(self.sock_path).st_ino == sock_inode:
                    os.unlink(self.sock_path)
            except OSError:
                pass
            self.indexer.stop()
            bus.close()
        return 0


def _setup_logging(db: str) -> None:
    path = client.log_path(db)
    try:
        if os.path.getsize(path) > _LOG_MAX_BYTES:
            os.replace(path, path + ".1")
    except OSError:
        pass
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        stream: Any = os.fdopen(fd, "a", encoding="utf-8")
    except OSError:
        stream = sys.stderr
    logging.basicConfig(
        level=logging.INFO,
        stream=stream,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent_bus.embeddings.daemon",
        description="The embedding service of one agent-bus database (started on demand).",
    )
    parser.add_argument("--db", required=True, help="the bus database file")
    parser.add_argument("--model", default=None, help="llm embedding model id to index with")
    args = parser.parse_args(argv)
    if not client.supported():
        print("the embedding service needs Unix domain sockets and flock", file=sys.stderr)
        return 2
    import fcntl

    from agent_bus.settings import SettingsError, load_settings

    try:
        settings = load_settings(db=args.db, embedding_model=args.model)
    except SettingsError as exc:
        print(f"agent-bus embeddings service: {exc}", file=sys.stderr)
        return 2
    if not Path(settings.db).exists():
        return 2
    sock_path = client.socket_path(settings.db)
    lock_fd = os.open(sock_path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another service runs for this database
    _setup_logging(str(settings.db))
    service = EmbeddingService(settings, sock_path)

    def on_signal(_signum: int, _frame: Any) -> None:
        service.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return service.run()
    except Exception:
        logger.exception("the embedding service failed")
        return 2
    finally:
        os.close(lock_fd)


if __name__ == "__main__":
    sys.exit(main())
