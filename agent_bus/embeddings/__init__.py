"""Embeddings of messages: chunking, the models that embed them, the job queue worker.

Importing this package is cheap (stdlib only): the stdio server's start path
may touch it. numpy, onnxruntime, tokenizers and llm are imported on first
semantic use, in the module that needs them.
"""

from __future__ import annotations

import importlib.util

DEFAULT_MODEL_ID = "agent-bus-minilm"
"""The offline default: all-MiniLM-L6-v2, int8 ONNX, registered by our llm plugin."""

COLLECTION_PREFIX = "agent-bus-messages-"
INSTALL_HINT = "pip install 'agent-bus[semantic]'"
# What the default model needs at run time (the `semantic` extra).
DEFAULT_MODEL_MODULES = ("numpy", "onnxruntime", "tokenizers")


def collection_name(model_id: str) -> str:
    """The llm collection holding a model's message vectors in the bus database."""
    return f"{COLLECTION_PREFIX}{model_id}"


def missing_default_modules() -> list[str]:
    """Modules of the `semantic` extra that are not installed (found without importing)."""
    return [m for m in DEFAULT_MODEL_MODULES if importlib.util.find_spec(m) is None]
