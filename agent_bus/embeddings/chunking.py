"""Cutting long messages into overlapping chunks for embedding.

Short messages (most of them) are one chunk. A longer one is cut into pieces
of at most ``size`` characters that start ``size - overlap`` apart; each cut is
moved back to the nearest paragraph break, line break or space in the last
quarter of the piece, so chunks rarely split a word or an identifier.
"""

from __future__ import annotations

import re

_BREAKS = ("\n\n", "\n", " ")


def chunk_text(text: str, size: int, overlap: int) -> list[str]:
    """The chunks of ``text`` (never empty: an empty text is one empty chunk)."""
    if size < 1:
        raise ValueError("size must be >= 1")
    overlap = max(0, min(overlap, size // 2))
    if len(text) <= size:
        return [text]
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            floor = start + (size * 3) // 4
            for sep in _BREAKS:
                cut = text.rfind(sep, floor, end)
                if cut > start:
                    end = cut + len(sep)
                    break
        chunks.append(text[start:end])
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return chunks


PASSAGE_SENTENCES = 3
"""Sentences in one passage: a message is also embedded as passages of this many
sentences, each starting PASSAGE_STRIDE sentences after the last (0 = no passages)."""
PASSAGE_STRIDE = 2
MAX_PASSAGES = 24
"""Passages of one message at most; the chunks still cover the rest of a very long one."""
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=\S)|\n+")
_MIN_WORDS = 3


def sentences(text: str) -> list[str]:
    """The text's sentences and lines; a fragment of fewer than three words (a heading,
    a bullet's "- ok") joins the sentence before it, or the one after at the start."""
    out: list[str] = []
    pending = ""
    for part in _SENTENCE_END.split(text):
        part = part.strip()
        if not part:
            continue
        if pending:
            part, pending = f"{pending} {part}", ""
        if len(part.split()) < _MIN_WORDS:
            if out:
                out[-1] = f"{out[-1]} {part}"
            else:
                pending = part
            continue
        out.append(part)
    if pending:
        out.append(pending)
    return out


def passages(text: str) -> list[str]:
    """The text as runs of PASSAGE_SENTENCES sentences, PASSAGE_STRIDE apart, the last
    one ending with the text; a text of that many sentences or fewer is one passage."""
    if PASSAGE_SENTENCES <= 0:
        return []
    parts = sentences(text)
    if len(parts) <= PASSAGE_SENTENCES:
        return [text.strip()] if text.strip() else []
    starts = list(range(0, len(parts) - PASSAGE_SENTENCES, PASSAGE_STRIDE))
    starts.append(len(parts) - PASSAGE_SENTENCES)
    runs = [" ".join(parts[s : s + PASSAGE_SENTENCES]) for s in dict.fromkeys(starts)]
    return runs[:MAX_PASSAGES]


def embedded_pieces(text: str, size: int, overlap: int) -> tuple[list[str], list[str]]:
    """What a message is embedded as, in row order: its chunks (row 0 is the first, the
    message's own id) and then its passages. The search maps a row back to its text."""
    return chunk_text(text, size, overlap), passages(text)
