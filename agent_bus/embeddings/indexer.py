"""Embedding messages into a model's llm collection, in batches.

Two drivers share this: the background worker (`worker.BackgroundIndexer`)
takes due jobs from the queue and records failures with backoff; the
foreground ``agent-bus embeddings index`` walks the messages a collection
lacks. The model runs outside any transaction, so a slow model never holds
the write lock that ``sync`` needs.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from agent_bus.embeddings import DEFAULT_MODEL_ID, collection_name
from agent_bus.embeddings.chunking import embedded_pieces
from agent_bus.embeddings.models import Embedder, default_model_id, get_embedder
from agent_bus.store import embeddings as store
from agent_bus.store.connection import retry, write_transaction

logger = logging.getLogger(__name__)


@dataclass
class BatchReport:
    embedded: int = 0
    failed: int = 0  # attempts recorded this batch
    gave_up: int = 0  # of which reached the max attempt count
    dropped: int = 0  # jobs whose message no longer exists
    errors: list[str] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.embedded + self.failed + self.dropped


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with ±25 % jitter after ``attempts`` failures."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return delay * (0.75 + random.random() / 2)


def ensure_collection(bus: Any, embedder: Embedder) -> int:
    """The id of the model's collection, created through ``llm.Collection`` if missing."""
    name = collection_name(embedder.model_id)
    found = bus.read(lambda c: store.collection_id(c, name))
    if found is not None:
        return found
    import llm
    from sqlite_utils import Database

    model = getattr(embedder, "model", None)
    if model is None and embedder.model_id == DEFAULT_MODEL_ID:
        from agent_bus.embeddings.llm_model import AgentBusMiniLM

        model = AgentBusMiniLM()
    conn = bus.conn()

    def create() -> int:
        # One transaction: llm applies its table migrations one transaction each, and a
        # reader between two of them met an `embeddings` table without its later columns
        # (`agent-bus embeddings status` failed on "no such column: e.updated"). Inside
        # ours, sqlite-utils turns each into a savepoint.
        with write_transaction(conn):
            return int(llm.Collection(name, Database(conn), model=model).id)

    return retry(create, bus.settings.busy_timeout_ms)


class Indexer:
    """Embeds messages with one model into its collection."""

    def __init__(self, bus: Any, embedder: Embedder, collection_id: int) -> None:
        self.bus = bus
        self.settings = bus.settings
        self.embedder = embedder
        self.collection_id = collection_id
        # Queue jobs mean "embed with the background model"; another model leaves them be.
        self.owns_queue = embedder.model_id == default_model_id(self.settings.embedding_model)

    @classmethod
    def for_model(cls, bus: Any, model_id: str | None, *, explicit: bool = False) -> Indexer:
        """Raises EmbeddingsUnavailable / InvalidArgument like `get_embedder`."""
        mid = model_id or default_model_id(bus.settings.embedding_model)
        embedder = get_embedder(mid, explicit=explicit)
        return cls(bus, embedder, ensure_collection(bus, embedder))

    # --- embedding (no transaction) ---------------------------------------------------------

    def _chunks(self, job: store.Job) -> tuple[list[str], int]:
        """The texts of the message's rows and how many are chunks: each chunk under its
        context line, then, for the bundled model, each passage alone (a paraphrase often
        matches a few sentences of a message better than the whole; docs/benchmarks.md).
        Another model, often a paid API, embeds the chunks only."""
        chunks, passages = embedded_pieces(
            job.content or "", self.settings.chunk_chars, self.settings.chunk_overlap_chars
        )
        if self.embedder.model_id != DEFAULT_MODEL_ID:
            passages = []
        return [embedding_text(job, piece) for piece in chunks] + passages, len(chunks)

    def embed_jobs(
        self, jobs: list[store.Job]
    ) -> tuple[dict[str, list[tuple[str, bytes, bytes, str]]], dict[str, str]]:
        """Vectors per message (rows ready to store) and an error per failed message."""
        pieces = {j.message_id: self._chunks(j) for j in jobs}
        texts = [t for j in jobs for t in pieces[j.message_id][0]]
        done: dict[str, list[tuple[str, bytes, bytes, str]]] = {}
        failed: dict[str, str] = {}
        try:
            vectors = self.embedder.embed(texts)
        except Exception as exc:  # noqa: BLE001 - a model plugin may raise anything
            if len(jobs) == 1:
                failed[jobs[0].message_id] = _describe(exc)
                return done, failed
            # Find the message(s) the model chokes on; the others still get embedded.
            for job in jobs:
                one_done, one_failed = self.embed_jobs([job])
                done.update(one_done)
                failed.update(one_failed)
            return done, failed
        at = 0
        for job in jobs:
            chunks, whole = pieces[job.message_id]
            rows = []
            for i, text in enumerate(chunks):
                vec = vectors[at + i]
                rows.append(
                    (
                        store.chunk_id(job.message_id, i),
                        vec.astype("<f4").tobytes(),
                        hashlib.md5(text.encode("utf-8")).digest(),
                        store.chunk_metadata(job.topic_id, i, len(chunks), passage=i >= whole),
                    )
                )
            at += len(chunks)
            done[job.message_id] = rows
        return done, failed

    # --- the queue (background) ----------------------------------------------------------------

    def run_batch(self, now: float | None = None) -> BatchReport:
        """Embed up to ``embed_batch_size`` due jobs; record successes and failures."""
        now = time.time() if now is None else now
        batch = self.settings.embed_batch_size
        jobs = self.bus.read(lambda c: store.due_jobs(c, now, batch))
        report = BatchReport()
        if not jobs:
            return report
        live = [j for j in jobs if j.content is not None]
        gone = [j.message_id for j in jobs if j.content is None]
        done, failed = self.embed_jobs(live) if live else ({}, {})
        attempts = {j.message_id: j.attempts + 1 for j in live}
        max_attempts = self.settings.embed_max_attempts
        stamp = int(time.time())

        def tx(conn: Any) -> None:
            for mid, rows in done.items():
                store.replace_message_vectors(conn, self.collection_id, mid, rows, stamp)
            store.delete_jobs(conn, [*done, *gone])
            for mid, error in failed.items():
                n = attempts[mid]
                give_up = n >= max_attempts
                store.record_failure(
                    conn,
                    mid,
                    attempts=n,
                    error=error,
                    next_attempt_at=now
                    + backoff_seconds(
                        n,
                        self.settings.embed_retry_base_seconds,
                        self.settings.embed_retry_max_seconds,
                    ),
                    failed_at=now if give_up else None,
                )
                report.gave_up += int(give_up)

        self.bus.write(tx)
        report.embedded, report.failed, report.dropped = len(done), len(failed), len(gone)
        report.errors = sorted(set(failed.values()))
        for mid, error in failed.items():
            logger.warning(
                "embedding message %s with %s failed (attempt %d of %d): %s",
                mid,
                self.embedder.model_id,
                attempts[mid],
                max_attempts,
                error,
            )
        return report

    def refresh_passages(self, after_rowid: int) -> int | None:
        """Embed again up to ``embed_batch_size`` messages (after ``after_rowid``) that an
        older version embedded without passages; the last rowid looked at, or None when
        none is left. Their old rows serve searches until these replace them."""
        batch = self.settings.embed_batch_size
        rows = self.bus.read(
            lambda c: store.without_passages(c, self.collection_id, after_rowid, batch)
        )
        if not rows:
            return None
        done, _failed = self.embed_jobs([job for _, job in rows])  # a failure keeps its rows

        def tx(conn: Any) -> None:
            stamp = int(time.time())
            for mid, vectors in done.items():
                store.replace_message_vectors(conn, self.collection_id, mid, vectors, stamp)

        self.bus.write(tx)
        return rows[-1][0]

    # --- foreground -------------------------------------------------------------------------------

    def missing(self) -> int:
        """Messages that have no vector in this collection yet."""
        return self.bus.read(lambda c: store.missing_count(c, self.collection_id))

    def index_missing(self, progress: Callable[[BatchReport], None] | None = None) -> BatchReport:
        """Embed every message the collection lacks (failures are counted, not retried)."""
        total = BatchReport()
        for jobs in self._missing_batches():
            done, failed = self.embed_jobs(jobs)

            def tx(conn: Any, done: dict[str, Any] = done) -> None:
                stamp = int(time.time())
                for mid, rows in done.items():
                    store.replace_message_vectors(conn, self.collection_id, mid, rows, stamp)
                if self.owns_queue:
                    store.delete_jobs(conn, list(done))

            self.bus.write(tx)
            step = BatchReport(embedded=len(done), failed=len(failed))
            step.errors = sorted(set(failed.values()))
            total.embedded += step.embedded
            total.failed += step.failed
            total.errors = sorted(set(total.errors) | set(step.errors))
            if progress is not None:
                progress(step)
        return total

    def _missing_batches(self) -> Iterator[list[store.Job]]:
        batch = self.settings.embed_batch_size
        after = 0
        while True:
            rows = self.bus.read(
                lambda c, a=after: store.missing_messages(c, self.collection_id, a, batch)
            )
            if not rows:
                return
            after = rows[-1][0]
            yield [job for _, job in rows]


EMBED_CONTEXT = True
"""Embed each chunk with its context line (see `embedding_text`); the benchmarks toggle it."""


def embedding_text(job: store.Job, piece: str) -> str:
    """What a chunk is embedded as: its topic, its type and what it answers, then the text.

    A message like "yes, ship it" means nothing alone; under "release-1.4 · decision ·
    re: should we tag the release today?" it does. Measured on benchmarks/search_eval
    (docs/benchmarks.md, "levers"). Snippets and full-text search use the text alone.
    """
    if not EMBED_CONTEXT:
        return piece
    head = [x for x in (job.topic_name, job.message_type) if x and x != "message"]
    if job.reply_first_line:
        head.append("re: " + job.reply_first_line[:200])
    return " · ".join(head) + "\n" + piece if head else piece


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= store.MAX_ERROR_CHARS else text[: store.MAX_ERROR_CHARS - 1] + "…"
