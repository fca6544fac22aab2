"""The bundled embedding model as an llm ``EmbeddingModel``.

Apart from the plugin so that the indexer can build llm's collection with it
without importing the plugin (which imports the indexer's service in turn).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import llm

from agent_bus.embeddings import DEFAULT_MODEL_ID


class AgentBusMiniLM(llm.EmbeddingModel):
    """all-MiniLM-L6-v2, int8 ONNX on onnxruntime: offline, no torch, 384 dimensions."""

    model_id = DEFAULT_MODEL_ID
    batch_size = 32

    def embed_batch(self, items: Iterable[str | bytes]) -> Iterator[list[float]]:
        from agent_bus.embeddings.minilm import get_minilm

        texts = [i.decode("utf-8", "replace") if isinstance(i, bytes) else i for i in items]
        for vector in get_minilm().embed(texts):
            yield vector.tolist()

    def __str__(self) -> str:
        return f"AgentBusMiniLM: {self.model_id}"
