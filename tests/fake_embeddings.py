"""Deterministic embedding models for tests, registered through llm's own plugin hook."""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
from collections.abc import Iterator

import llm
from llm.plugins import pm

from agent_bus.embeddings.models import forget

DIMS = 64
_WORD = re.compile(r"\w+")


def bag_of_words(text: str) -> list[float]:
    """Each word adds 1 to a hashed dimension: texts sharing words are similar."""
    vec = [0.0] * DIMS
    for word in _WORD.findall(text.lower()):
        vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIMS] += 1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


class WordsEmbed(llm.EmbeddingModel):
    model_id = "test-words"
    batch_size = 8

    def embed_batch(self, items):
        for item in items:
            yield bag_of_words(item if isinstance(item, str) else item.decode())


class PoisonEmbed(WordsEmbed):
    """Fails on any batch that holds a text containing POISON (like a model's size limit)."""

    model_id = "test-poison"
    calls = 0

    def embed_batch(self, items):
        items = list(items)
        PoisonEmbed.calls += 1
        if any("POISON" in (i if isinstance(i, str) else i.decode()) for i in items):
            raise RuntimeError("model rejected the input")
        yield from super().embed_batch(items)


class _Plugin:
    __name__ = "AgentBusTestEmbeddings"

    @llm.hookimpl
    def register_embedding_models(self, register):
        register(WordsEmbed())
        register(PoisonEmbed())


@contextlib.contextmanager
def registered() -> Iterator[None]:
    name = "undo-agent-bus-test-embeddings"
    pm.register(_Plugin(), name=name)
    try:
        yield
    finally:
        pm.unregister(name=name)
        for model_id in (WordsEmbed.model_id, PoisonEmbed.model_id):
            forget(model_id)
