"""Which embedding model to use, and a uniform way to call it.

The default model (``agent-bus-minilm``) is called directly, so a server that
only searches never imports llm (1.3 s of imports). Any other model id goes
through ``llm.get_embedding_model`` — OpenAI's, Ollama's, sentence-transformers',
or a test model a plugin registers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from agent_bus.embeddings import DEFAULT_MODEL_ID, INSTALL_HINT, missing_default_modules
from agent_bus.errors import EmbeddingsUnavailable, InvalidArgument


class Embedder:
    """An embedding model as the bus uses it: texts in, L2-normalised float32 rows out."""

    model_id: str

    def embed(self, texts: Sequence[str]) -> Any:  # numpy.ndarray
        raise NotImplementedError


class MiniLMEmbedder(Embedder):
    model_id = DEFAULT_MODEL_ID

    def embed(self, texts: Sequence[str]) -> Any:
        from agent_bus.embeddings.minilm import get_minilm

        return get_minilm().embed(list(texts))


class LlmEmbedder(Embedder):
    """Any llm embedding model."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.model_id = model.model_id

    def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        vectors = list(self.model.embed_multi(list(texts)))
        if len(vectors) != len(texts):
            raise RuntimeError(
                f"model {self.model_id} returned {len(vectors)} vectors for {len(texts)} texts"
            )
        out = np.asarray(vectors, dtype=np.float32)
        if out.ndim != 2 or not np.all(np.isfinite(out)):
            raise RuntimeError(f"model {self.model_id} returned malformed vectors")
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


_cache: dict[str, Embedder] = {}
_cache_lock = threading.Lock()


def default_model_id(configured: str | None) -> str:
    return configured or DEFAULT_MODEL_ID


def installed_model_ids() -> list[str]:
    """Every embedding model llm knows (imports llm and its plugins)."""
    import llm

    return sorted(m.model_id for m in llm.get_embedding_models())


def get_embedder(model_id: str, *, explicit: bool) -> Embedder:
    """The embedder for a model id or alias, loaded once per process.

    Args:
        model_id: an llm embedding model id or alias.
        explicit: the caller named the model (an unknown one is then INVALID_ARGUMENT);
            otherwise it came from settings or the default (then EMBEDDINGS_UNAVAILABLE).

    Raises:
        EmbeddingsUnavailable: the default model's packages are missing, or the configured
            model is not installed.
        InvalidArgument: ``explicit`` and llm has no such embedding model.
    """
    found = _cache.get(model_id)
    if found is not None:
        return found
    with _cache_lock:
        found = _cache.get(model_id)
        if found is not None:
            return found
        if model_id == DEFAULT_MODEL_ID:
            missing = missing_default_modules()
            if missing:
                raise EmbeddingsUnavailable(
                    f"the default embedding model {DEFAULT_MODEL_ID} needs "
                    f"{', '.join(missing)}: install them with {INSTALL_HINT}, or set "
                    "AGENT_BUS_EMBEDDING_MODEL to another llm embedding model.",
                    missing=missing,
                )
            embedder: Embedder = MiniLMEmbedder()
        else:
            embedder = LlmEmbedder(_llm_model(model_id, explicit=explicit))
        _cache[model_id] = embedder
        _cache[embedder.model_id] = embedder
        return embedder


def _llm_model(model_id: str, *, explicit: bool) -> Any:
    import llm

    try:
        return llm.get_embedding_model(model_id)
    except llm.UnknownModelError:
        installed = installed_model_ids()
        listing = ", ".join(installed) if installed else "none"
        if explicit:
            raise InvalidArgument(
                f"unknown embedding model {model_id!r}; installed embedding models: {listing}. "
                f"({DEFAULT_MODEL_ID} comes with {INSTALL_HINT}; see `llm embed-models`.)",
                field="model",
                installed=installed,
            ) from None
        raise EmbeddingsUnavailable(
            f"AGENT_BUS_EMBEDDING_MODEL={model_id!r} is not an installed llm embedding model; "
            f"installed: {listing}.",
            installed=installed,
        ) from None


def forget(model_id: str) -> None:
    """Drop a cached embedder (tests register and unregister models)."""
    with _cache_lock:
        for key in [k for k, v in _cache.items() if k == model_id or v.model_id == model_id]:
            del _cache[key]
