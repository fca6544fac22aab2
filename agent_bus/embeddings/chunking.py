"""Cutting long messages into overlapping chunks for embedding.

Short messages (most of them) are one chunk. A longer one is cut into pieces
of at most ``size`` characters that start ``size - overlap`` apart; each cut is
moved back to the nearest paragraph break, line break or space in the last
quarter of the piece, so chunks rarely split a word or an identifier.
"""

from __future__ import annotations

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
