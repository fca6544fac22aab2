"""Validate ``queries.jsonl`` against ``messages.jsonl`` (``python check_queries.py [SET_DIR]``).

Checks, each reported as a problem line (exit code 1 if any):

- every relevant id exists, every grade names a relevant id, classes are known;
- topic-scoped queries name a topic, and all their relevant messages are in it;
- identifier queries occur verbatim (case-insensitive) in each relevant message, and
  every message containing the identifier is labelled (the label set is complete);
- paraphrase queries share **no content word** with any of their relevant messages.
  Words are compared after lower-casing, splitting on anything that is not a letter
  or digit (so ``retry_backoff_ms`` contributes ``retry``, ``backoff``, ``ms``), dropping
  stop-words and words shorter than three letters, and crude suffix stripping, so
  ``saving``/``saves`` or ``failed``/``fails`` count as the same word.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Set 1 (this folder) and set 2 (set2/) name their classes differently; the checks map.
CLASSES = {"identifier", "paraphrase", "keyword", "topic_scoped", "exact", "multi_facet", "scoped"}
SCOPED = {"topic_scoped", "scoped"}
EXACT = {"identifier", "exact"}

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can cannot could did do does doing down during
    each either ever few for from further had has have having he her here hers him his how
    i if in into is it its itself just let me more most my no nor not now of off on once
    only or other our ours out over own same she should so some such than that the their
    them then there these they this those through to too under until up upon us very was
    we were what when where which while who whom whose why will with would you your
    yours yet still one two get got make made use used via per each
    """.split()
)

_SUFFIXES = (
    "ations",
    "ation",
    "ings",
    "ing",
    "ers",
    "ies",
    "ied",
    "ed",
    "es",
    "er",
    "ly",
    "s",
    "e",
)


def stem(word: str) -> str:
    """A deliberately aggressive suffix stripper: over-matching is the safe side here."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {stem(w) for w in words if len(w) >= 3 and w not in STOPWORDS}


def load_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def check(messages: list[dict], queries: list[dict]) -> list[str]:
    by_id = {m["id"]: m for m in messages}
    problems: list[str] = []
    seen_ids: set[str] = set()
    for q in queries:
        qid = q["id"]
        if qid in seen_ids:
            problems.append(f"{qid}: duplicate query id")
        seen_ids.add(qid)
        if q["class"] not in CLASSES:
            problems.append(f"{qid}: unknown class {q['class']!r}")
        relevant = q.get("relevant") or []
        if not relevant:
            problems.append(f"{qid}: no relevant messages")
        missing = [r for r in relevant if r not in by_id]
        if missing:
            problems.append(f"{qid}: unknown message ids {missing}")
            continue
        extra_grades = set(q.get("grades", {})) - set(relevant)
        if extra_grades:
            problems.append(f"{qid}: grades for non-relevant ids {sorted(extra_grades)}")
        if q["class"] in SCOPED:
            topic = q.get("topic")
            if not topic:
                problems.append(f"{qid}: topic_scoped query without topic")
            elif off := [r for r in relevant if by_id[r]["topic"] != topic]:
                problems.append(f"{qid}: relevant outside topic {topic}: {off}")
        if q["class"] in EXACT:
            needle = q["query"].lower().removesuffix("()")
            for r in relevant:
                if needle not in by_id[r]["content_markdown"].lower():
                    problems.append(f"{qid}: {q['query']!r} not in {r}")
            unlabelled = [
                m["id"]
                for m in messages
                if needle in m["content_markdown"].lower() and m["id"] not in relevant
            ]
            if unlabelled:
                problems.append(f"{qid}: unlabelled messages contain it: {unlabelled}")
        if q["class"] == "paraphrase":
            query_words = content_words(q["query"])
            for r in relevant:
                shared = query_words & content_words(by_id[r]["content_markdown"])
                if shared:
                    problems.append(f"{qid}: shares {sorted(shared)} with {r}")
    return problems


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    messages = load_jsonl(folder / "messages.jsonl")
    queries = load_jsonl(folder / "queries.jsonl")
    problems = check(messages, queries)
    for problem in problems:
        print(problem)
    counts: dict[str, int] = {}
    for q in queries:
        counts[q["class"]] = counts.get(q["class"], 0) + 1
    print(f"{len(queries)} queries {counts}, {len(messages)} messages, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
