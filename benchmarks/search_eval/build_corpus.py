"""Build ``messages.jsonl`` from the hand-written conversations in ``corpus/*.md``.

Each source file holds one topic::

    @@ topic retry-policy
    @@ 01 swift-heron message
    markdown body …
    @@ 02 amber-otter question
    …

Message ids are ``<topic>:<nn>`` so that query labels stay readable.

Run ``python build_corpus.py [SET_DIR]`` (default: this folder, set 1) after editing a
source file; it rewrites it deterministically (sorted by file name, then by order in file).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS_DIR = HERE / "corpus"
OUTPUT = HERE / "messages.jsonl"

_TOPIC_RE = re.compile(r"^@@ topic (?P<topic>[a-z0-9.-]+)\s*$")
_HEADER_RE = re.compile(r"^@@ (?P<num>\d{2}) (?P<sender>[a-z0-9-]+) (?P<type>[a-z_]+)\s*$")


class CorpusFormatError(Exception):
    "A corpus source file does not follow the ``@@`` header format"


def parse_source(path: Path) -> list[dict[str, str]]:
    """Parse one topic file into message records.

    Raises:
        CorpusFormatError: on a missing topic line, a malformed header or an empty body.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not (match := _TOPIC_RE.match(lines[0])):
        raise CorpusFormatError(f"{path.name}: first line must be '@@ topic <name>'")
    topic = match["topic"]
    messages: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    body: list[str] = []

    def flush() -> None:
        if current is None:
            return
        text = "\n".join(body).strip()
        if not text:
            raise CorpusFormatError(f"{path.name}: message {current['id']} is empty")
        current["content_markdown"] = text
        messages.append(current)

    for lineno, line in enumerate(lines[1:], start=2):
        if line.startswith("@@ "):
            header = _HEADER_RE.match(line)
            if header is None:
                raise CorpusFormatError(f"{path.name}:{lineno}: bad header {line!r}")
            flush()
            current = {
                "id": f"{topic}:{header['num']}",
                "topic": topic,
                "sender": header["sender"],
                "message_type": header["type"],
            }
            body = []
        else:
            body.append(line)
    flush()
    return messages


def build(corpus_dir: Path = CORPUS_DIR) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for path in sorted(corpus_dir.glob("*.md")):
        messages.extend(parse_source(path))
    ids = [m["id"] for m in messages]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CorpusFormatError(f"duplicate message ids: {duplicates}")
    return messages


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    output = folder / "messages.jsonl"
    messages = build(folder / "corpus")
    with output.open("w", encoding="utf-8") as fh:
        for message in messages:
            fh.write(json.dumps(message, ensure_ascii=False) + "\n")
    topics = sorted({m["topic"] for m in messages})
    print(f"wrote {len(messages)} messages in {len(topics)} topics to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
