"""Semantic search: cosine similarity over a model's chunk vectors, held in numpy.

Each process keeps one `VectorIndex` per collection: llm's float32 blobs read
once into a matrix, then refreshed incrementally — rows with a rowid above the
last one seen are appended (or overwrite the row of the same id); a row count
that no longer matches (a drop, a topic deleted, a rebuild) reloads it whole.
A query is one matrix-vector product; llm's own ``similar`` (a Python loop
over every row) is not the query path.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

from agent_bus.store import embeddings as store

_INITIAL_CAPACITY = 1024
COUNT_EVERY = 5.0
LOAD_PAGE = 5000
"""Vector rows read from the database per query while loading (about 8 MB of blobs)."""
FEEDBACK_DEPTH = 2
"""Pseudo-relevance feedback: the query moves toward the mean of its top this-many rows
(weight FEEDBACK_WEIGHT) and the best rows are scored again (0 = off). On the tuning set
it raised hybrid recall@10 from 0.832 to 0.849 (keyword 0.868 -> 0.927): the top rows
carry the bus's own vocabulary for what the query says in other words. With the neighbour
term choosing the top rows, 2 beat 3 (0.893 vs 0.889, paraphrase 0.638 vs 0.613)."""
FEEDBACK_WEIGHT = 0.5
FEEDBACK_WHOLE = True
"""The query moves toward the whole-message vectors (first chunks) of the best messages,
not toward the best rows themselves, which may be passages: with passages on the tuning
set, 0.906 / paraphrase 0.678 against 0.896 / 0.639 (docs/benchmarks.md)."""
EXACT_BELOW = 20_000
"""Up to this many rows every query reads the whole float32 matrix. Above it, the rows'
sign bits (48 bytes a row for 384 dimensions) pick candidates by Hamming distance and
only those are scored exactly: the full scan is bound by memory bandwidth (150 MB at
100,000 rows), which a shared machine does not give reliably (measured 6-55 ms p50)."""
CANDIDATES = 2000
"""Rows scored exactly after the sign-bit pass (at least 40 per result asked for). On
real MiniLM vectors among 100,000 it keeps 97.5 % of the exact top 10 (docs/benchmarks.md)."""
FEEDBACK_RESCORE = 2000
"""Rows scored again after feedback (the first pass's best): the moved query stays close to
the original, so its best rows are among these; a second full scan would double the cost."""
NEIGHBOUR_WEIGHT = 0.3
"""A message's score gains this share of the mean similarity of the messages just before and
after it in its topic (seq - 1, seq + 1; 0 = off), both when picking the feedback rows and
when ranking. An answer rarely repeats the question's words, and a paraphrased query often
matches the question, report or decision next to it better than the message itself: with
FEEDBACK_DEPTH 2 it raised hybrid recall@10 on the tuning set from 0.856 to 0.893
(paraphrase 0.574 -> 0.638), on the held-out set from 0.823 to 0.833 (0.564 -> 0.588);
docs/benchmarks.md has the other weights and forms tried."""


@dataclass
class Hit:
    message_id: str
    score: float
    """What the message was ranked by: its best chunk's cosine, plus the neighbour term."""
    chunk: int
    cosine: float | None = None
    """The best chunk's cosine similarity alone (None: same as ``score``)."""


class VectorIndex:
    """One collection's vectors, their message ids, chunk numbers and topics."""

    def __init__(self, collection_id: int) -> None:
        self.collection_id = collection_id
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        import numpy as np

        self.dim: int | None = None
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self.n = 0
        self.seen = 0  # rows read, including vectors of a foreign width that were skipped
        self.max_rowid = 0
        self._counted_at = -COUNT_EVERY
        self.row_of: dict[str, int] = {}
        self.message_ids: list[str] = []
        self.chunks: list[int] = []
        self.passages: list[bool] = []  # rows of sentences embedded without a context line
        self._topic_codes = np.zeros(0, dtype=np.int32)
        self._bits = np.zeros((0, 0), dtype=np.uint64)
        self.topic_code: dict[str, int] = {}
        # Thread neighbours, kept on each message's first chunk row: the first chunk row of
        # the message before / after it in its topic (-1: none embedded). Every row points
        # at its message's first chunk row.
        self._first = np.zeros(0, dtype=np.int32)
        self._prev = np.zeros(0, dtype=np.int32)
        self._next = np.zeros(0, dtype=np.int32)
        self._first_at: dict[int, int] = {}  # _place(topic code, seq) -> first chunk row

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Bring the matrix up to date with the database (cheap when nothing changed)."""
        with self._lock:
            # MAX(rowid) is one b-tree probe and catches every insert and replace; counting
            # (to notice deletions: a drop, a deleted topic) scans the collection, ~18 ms at
            # 100k rows, so it runs at most every COUNT_EVERY seconds. Until then a deleted
            # message's vector can only produce a hit that the message join drops.
            max_rowid = store.max_vector_rowid(conn)
            now = time.monotonic()
            if max_rowid == self.max_rowid and now - self._counted_at < COUNT_EVERY:
                return
            count, max_rowid = store.vector_state(conn, self.collection_id)
            self._counted_at = now
            if count == self.seen and max_rowid == self.max_rowid:
                return
            if max_rowid < self.max_rowid or count < self.seen:
                self._reset()
            self._load_new(conn)
            if self.seen != count:  # rows were deleted as well as added: start over
                self._reset()
                self._load_new(conn)

    def _load_new(self, conn: sqlite3.Connection) -> None:
        """Append the rows written after the last one read, a page at a time: a whole
        100,000-row collection read at once held ~450 MB of blobs at its peak, and the
        process kept that memory."""
        while True:
            page = store.vectors_after(conn, self.collection_id, self.max_rowid, LOAD_PAGE)
            if not page:
                return
            self._append(conn, page)

    def _append(self, conn: sqlite3.Connection, rows: list[tuple[int, str, bytes, bool]]) -> None:
        import numpy as np

        if not rows:
            return
        if self.dim is None:
            self.dim = len(rows[0][2]) // 4
            self._matrix = np.zeros((_INITIAL_CAPACITY, self.dim), dtype=np.float32)
            self._topic_codes = np.full(_INITIAL_CAPACITY, -1, dtype=np.int32)
            # One row of words per 64 dimensions, a column per vector row: the Hamming pass
            # then runs over contiguous words (4x faster than summing each row's 6 words).
            self._bits = np.zeros((_words(self.dim), _INITIAL_CAPACITY), dtype=np.uint64)
            self._first = np.full(_INITIAL_CAPACITY, -1, dtype=np.int32)
            self._prev = np.full(_INITIAL_CAPACITY, -1, dtype=np.int32)
            self._next = np.full(_INITIAL_CAPACITY, -1, dtype=np.int32)
        shared: dict[str, str] = {}  # a message's rows share one id string
        new_ids = []
        for _, rid, _, _ in rows:
            mid = store.split_chunk_id(rid)[0]
            new_ids.append(shared.setdefault(mid, mid))
        places = store.message_places(conn, sorted(set(new_ids)))
        for (rowid, rid, blob, passage), mid in zip(rows, new_ids, strict=True):
            self.max_rowid = max(self.max_rowid, rowid)
            if len(blob) != self.dim * 4:
                self.seen += 1
                continue  # a vector of another width cannot be compared; skip it
            vec = np.frombuffer(blob, dtype="<f4")
            norm = float(np.linalg.norm(vec))
            row = self.row_of.get(rid)
            if row is None:
                row = self.n
                self._grow(row + 1)
                self.row_of[rid] = row
                self.message_ids.append(mid)
                self.chunks.append(store.split_chunk_id(rid)[1])
                self.passages.append(False)
                self.n += 1
                self.seen += 1
            self.passages[row] = passage
            self._matrix[row] = vec / norm if norm > 0 else vec
            self._bits[:, row] = _sign_bits(vec)
            topic, seq = places.get(mid, (None, 0))
            code = -1 if topic is None else self.topic_code.setdefault(topic, len(self.topic_code))
            self._topic_codes[row] = code
            self._link(row, code, seq, store.split_chunk_id(rid)[1])

    def _link(self, row: int, code: int, seq: int, chunk: int) -> None:
        """Record the row's message and its thread neighbours (first chunks come first)."""
        if code < 0:
            self._first[row] = row
            return
        place = _place(code, seq)
        if chunk > 0:
            self._first[row] = self._first_at.get(place, row)
            return
        self._first[row] = row
        self._first_at[place] = row
        before = self._first_at.get(place - 1, -1)
        after = self._first_at.get(place + 1, -1)
        self._prev[row], self._next[row] = before, after
        if before >= 0:
            self._next[before] = row
        if after >= 0:
            self._prev[after] = row

    def _grow(self, size: int) -> None:
        import numpy as np

        capacity = self._matrix.shape[0]
        if size <= capacity:
            return
        new_capacity = max(size, capacity * 2)
        matrix = np.zeros((new_capacity, self._matrix.shape[1]), dtype=np.float32)
        matrix[:capacity] = self._matrix
        codes = np.full(new_capacity, -1, dtype=np.int32)
        codes[:capacity] = self._topic_codes
        bits = np.zeros((self._bits.shape[0], new_capacity), dtype=np.uint64)
        bits[:, :capacity] = self._bits
        self._matrix, self._topic_codes, self._bits = matrix, codes, bits
        links = []
        for old in (self._first, self._prev, self._next):
            new = np.full(new_capacity, -1, dtype=np.int32)
            new[:capacity] = old
            links.append(new)
        self._first, self._prev, self._next = links

    def _candidates(self, query: Any, valid: Any, count: int) -> Any:
        """Rows whose sign bits are nearest the query's (Hamming distance), valid ones only."""
        import numpy as np

        n = self.n
        distance = np.zeros(n, dtype=np.uint16)
        word = np.empty(n, dtype=np.uint64)
        ones = np.empty(n, dtype=np.uint8)
        for k, bits in enumerate(_sign_bits(query)):
            np.bitwise_xor(self._bits[k, :n], bits, out=word)
            np.bitwise_count(word, out=ones)
            distance += ones
        distance[~valid] = np.iinfo(np.uint16).max
        if count >= n:
            return np.flatnonzero(valid)
        # The count-th smallest distance from a histogram, then every row nearer than it
        # and enough rows at it: a quarter of an argpartition's time over 200,000 rows.
        cutoff = int(np.searchsorted(np.bincount(distance).cumsum(), count))
        nearer = np.flatnonzero(distance < cutoff)
        at = np.flatnonzero(distance == cutoff)[: count - len(nearer)]
        rows = np.concatenate([nearer, at])
        return rows[valid[rows]]

    def _feedback(self, matrix: Any, query: Any, scores: Any, valid: Any) -> tuple[Any, Any, Any]:
        """After moving the query toward the best ``valid`` rows by ``scores``: (cosines,
        the moved query, the rows scored again or None for all; the others score -1)."""
        import numpy as np

        first = np.where(valid, scores, -np.inf)
        centre = self._feedback_centre(matrix, first)
        if centre is None:
            return scores, query, None
        moved = query + FEEDBACK_WEIGHT * centre
        moved = (moved / np.linalg.norm(moved)).astype(np.float32)
        if len(scores) <= FEEDBACK_RESCORE:
            return matrix @ moved, moved, None
        rows = np.argpartition(-first, FEEDBACK_RESCORE - 1)[:FEEDBACK_RESCORE]
        out = np.full(len(scores), -1.0, dtype=np.float32)  # below any rescored row
        out[rows] = matrix[rows] @ moved
        return out, moved, rows

    def _feedback_centre(self, matrix: Any, scores: Any, rows: Any = None) -> Any:
        """The mean whole-message vector (first chunk) of the FEEDBACK_DEPTH best messages
        by ``scores`` (of ``rows``, None: of every row; -inf: not a candidate), or None if
        there is none. A passage is a part of its message, not what the thread is about,
        and a message with several good rows counts once."""
        import numpy as np

        depth = min(len(scores), FEEDBACK_DEPTH * 8)
        top = np.argpartition(-scores, depth - 1)[:depth]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[np.isfinite(scores[top])]
        if rows is not None:
            top = rows[top]
        if not FEEDBACK_WHOLE:
            return matrix[top[:FEEDBACK_DEPTH]].mean(axis=0) if len(top) else None
        firsts = list(dict.fromkeys(self._first[top].tolist()))[:FEEDBACK_DEPTH]
        return matrix[firsts].mean(axis=0) if firsts else None

    def _with_neighbours(self, on: bool, matrix: Any, rows: Any, cosines: Any, vector: Any) -> Any:
        """``cosines`` (of ``rows`` with ``vector``) plus each row's neighbour term."""
        if not on or NEIGHBOUR_WEIGHT <= 0 or len(rows) == 0:
            return cosines
        return cosines + self._neighbour_term(matrix, rows, cosines, vector)

    def _neighbour_term(self, matrix: Any, rows: Any, scores: Any, vector: Any) -> Any:
        """NEIGHBOUR_WEIGHT x the mean cosine of each row's thread neighbours (0 if none).

        ``scores`` are the exact cosines of ``rows`` with ``vector``; a neighbour outside
        ``rows`` is scored here. A neighbour counts by its message's first chunk.
        """
        import numpy as np

        first = self._first[rows]
        near = np.stack([self._prev[first], self._next[first]])
        have = near >= 0
        known = np.full(self.n, np.nan, dtype=np.float32)
        known[rows] = scores
        cos = np.where(have, known[np.where(have, near, 0)], 0.0).astype(np.float32)
        missing = have & np.isnan(cos)
        if missing.any():
            cos[missing] = matrix[near[missing]] @ vector
        return _mean_term(cos, have)

    def vector_of(self, message_ids: list[str]) -> Any:
        """The mean of the stored vectors of these messages' chunks (unit length, passages
        left out: they repeat parts of the message without its context), or None."""
        import numpy as np

        with self._lock:
            wanted = set(message_ids)
            rows = [
                r
                for r, mid in enumerate(self.message_ids)
                if mid in wanted and not self.passages[r]
            ]
            if not rows:
                return None
            mean = self._matrix[rows].mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm > 0 else None

    def search(
        self,
        query: Any,
        *,
        topic_id: str | None,
        limit: int,
        feedback: bool = True,
        exclude_topic: str | None = None,
        allowed: set[str] | None = None,
    ) -> list[Hit]:
        """The best chunk of the ``limit`` most similar messages, best first.

        ``feedback=False`` scores the vector as given, with no pseudo-relevance feedback
        and no neighbour term (a message's own vector needs neither); ``exclude_topic``
        leaves one topic's messages out; ``allowed`` (message ids) keeps only those (the
        search filters).
        """
        import numpy as np

        with self._lock:
            n = self.n
            if n == 0 or self.dim is None or query.shape[-1] != self.dim:
                return []
            matrix = self._matrix[:n]
            valid = self._topic_codes[:n] >= 0
            if exclude_topic is not None and exclude_topic in self.topic_code:
                valid = valid & (self._topic_codes[:n] != self.topic_code[exclude_topic])
            if topic_id is not None:
                code = self.topic_code.get(topic_id)
                if code is None:
                    return []
                valid = self._topic_codes[:n] == code
            if allowed is not None:
                keep = np.fromiter((m in allowed for m in self.message_ids[:n]), bool, n)
                valid = valid & keep
            query = query.astype(np.float32)
            if n > EXACT_BELOW and hasattr(np, "bitwise_count"):
                rows = self._candidates(query, valid, max(CANDIDATES, limit * 40))
                return self._rank_rows(matrix, rows, query, limit, feedback)
            everything = np.arange(n)
            cosines = matrix @ query
            scores = self._with_neighbours(feedback, matrix, everything, cosines, query)
            if feedback and FEEDBACK_DEPTH > 0 and n > FEEDBACK_DEPTH:
                cosines, vector, rescored = self._feedback(matrix, query, scores, valid)
                scored = everything if rescored is None else rescored
                scores = cosines.copy()
                scores[scored] = self._with_neighbours(
                    feedback, matrix, scored, cosines[scored], vector
                )
            scores = np.where(valid, scores, -np.inf)
            message_ids, chunks = self.message_ids, self.chunks
        depth = min(n, limit * 4 + 16)
        while True:
            top = np.argpartition(-scores, depth - 1)[:depth] if depth < n else np.arange(n)
            top = top[np.argsort(-scores[top], kind="stable")]
            hits = self._hits(top, scores[top], cosines[top], limit, message_ids, chunks)
            if len(hits) >= limit or depth >= n:
                return hits
            depth = min(n, depth * 4)

    def _rank_rows(
        self, matrix: Any, rows: Any, query: Any, limit: int, feedback: bool
    ) -> list[Hit]:
        """Exact scores of candidate rows only (feedback, neighbour term), best message first.

        The candidates' thread neighbours are scored in the same block: one gather from the
        matrix instead of one per pass (at 100,000 rows the term cost +3.4 ms semantic p50
        that way, +2.5 ms this way).
        """
        import numpy as np

        near = None
        block_rows = rows
        if feedback and NEIGHBOUR_WEIGHT > 0 and len(rows):
            first = self._first[rows]
            near = np.stack([self._prev[first], self._next[first]])
            extra = np.setdiff1d(near[near >= 0], rows, assume_unique=False)
            block_rows = np.concatenate([rows, extra])
        block = matrix[block_rows]
        at = None
        if near is not None:
            at = np.full(self.n, -1, dtype=np.int64)
            at[block_rows] = np.arange(len(block_rows))
            near = np.where(near >= 0, at[np.maximum(near, 0)], -1)
        count = len(rows)
        every = block @ query
        scores = _plus_neighbours(every, near, count)
        cosines = every[:count]
        if feedback and FEEDBACK_DEPTH > 0 and count > FEEDBACK_DEPTH:
            vector = query + FEEDBACK_WEIGHT * self._feedback_centre(matrix, scores, rows)
            vector = (vector / np.linalg.norm(vector)).astype(np.float32)
            every = block @ vector
            scores = _plus_neighbours(every, near, count)
            cosines = every[:count]
        order = np.argsort(-scores, kind="stable")
        return self._hits(
            rows[order], scores[order], cosines[order], limit, self.message_ids, self.chunks
        )

    @staticmethod
    def _hits(
        rows: Any, scores: Any, cosines: Any, limit: int, message_ids: Any, chunks: Any
    ) -> list[Hit]:
        """The first ``limit`` messages of rows sorted best first (a message's best chunk)."""
        hits: dict[str, Hit] = {}
        ranked = zip(rows.tolist(), scores.tolist(), cosines.tolist(), strict=True)
        for row, score, cosine in ranked:
            if score == float("-inf"):
                break
            mid = message_ids[row]
            if mid not in hits:
                hits[mid] = Hit(mid, score, chunks[row], cosine)
                if len(hits) >= limit:
                    break
        return list(hits.values())


def _plus_neighbours(cosines: Any, near: Any, count: int) -> Any:
    """The first ``count`` cosines plus NEIGHBOUR_WEIGHT x the mean cosine of each one's
    neighbours, given as positions in ``cosines`` (-1: none); ``near`` None: no term."""
    import numpy as np

    if near is None:
        return cosines[:count]
    have = near >= 0
    return cosines[:count] + _mean_term(np.where(have, cosines[np.maximum(near, 0)], 0.0), have)


def _mean_term(cos: Any, have: Any) -> Any:
    """NEIGHBOUR_WEIGHT x the mean of each column's neighbour cosines (rows: before, after;
    ``cos`` is 0 where ``have`` is false; 0 for a message with no neighbour)."""
    import numpy as np

    return NEIGHBOUR_WEIGHT * cos.sum(axis=0) / np.maximum(have.sum(axis=0), 1)


def _place(code: int, seq: int) -> int:
    """One int for (topic code, seq): a dict of 100,000 ints is a third of one of tuples."""
    return (code << 40) | seq


def _words(dim: int) -> int:
    return (dim + 63) // 64


def _sign_bits(vec: Any) -> Any:
    """The vector's signs packed into 64-bit words (zero-padded to a whole word)."""
    import numpy as np

    packed = np.packbits(vec > 0)
    padded = np.zeros(_words(len(vec)) * 8, dtype=np.uint8)
    padded[: len(packed)] = packed
    return padded.view(np.uint64)


class SemanticEngine:
    """A process's vector caches, one per collection (a `Bus` owns one)."""

    def __init__(self) -> None:
        self._indexes: dict[tuple[int, str], VectorIndex] = {}
        self._lock = threading.Lock()

    def index(self, conn: sqlite3.Connection, collection_id: int, collection: str) -> VectorIndex:
        key = (collection_id, collection)
        with self._lock:
            found = self._indexes.get(key)
            if found is None:
                found = self._indexes[key] = VectorIndex(collection_id)
        found.refresh(conn)
        return found
