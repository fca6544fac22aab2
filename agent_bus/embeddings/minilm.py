"""The default embedding model: all-MiniLM-L6-v2 as int8 ONNX, run with onnxruntime.

The weights (``minilm-l6-v2-int8.onnx``, see MINILM-NOTICE.md) are our own export of
the upstream model's published ``model.safetensors``, checked against the sha256 its
repository publishes, by ``benchmarks/model_export/export_minilm.py``: int8 weights
and int8 matrix products (onnxruntime's dynamic quantisation), 23 MB. The tokenizer
is built with ``tokenizers`` from the vendored WordPiece vocabulary
(``minilm-vocab.txt``), identical to the model's own tokenizer.json. Vectors: mean
pooling over the attention mask, L2-normalised, 384 dimensions, inputs truncated at
256 tokens as sentence-transformers does. No torch; loads in a fraction of a second
and needs no network.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DIMENSIONS = 384
MAX_TOKENS = 256
VOCAB_PATH = Path(__file__).with_name("minilm-vocab.txt")

_lock = threading.Lock()
_instance: MiniLM | None = None


def _threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


MODEL_PATH = Path(__file__).with_name("minilm-l6-v2-int8.onnx")
# Load only the file export_minilm.py wrote (a damaged or swapped file is refused).
WEIGHTS_SHA256 = "77ae3a690d9f9df9f7b2bc5e7cf9fd36da4e07e82b2e481df273e46a0802f520"
TOKEN_BUDGET = 512
"""Most tokens (padding included) in one model run: short texts go in big batches, a
long one with few others, so a batch is not padded to its longest member's length.
512 rather than 4,096: the activations of a smaller run stay in cache (measured: 612
messages embedded at 124 messages/s instead of 92), and a query waits less behind it."""


def _check_weights(path: Path) -> None:
    import hashlib

    from agent_bus.errors import EmbeddingsUnavailable

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise EmbeddingsUnavailable(
            f"{path} is not the all-MiniLM-L6-v2 int8 file agent-bus was built with "
            f"(sha256 {digest[:16]}…); reinstall agent-bus",
            model="agent-bus-minilm",
        )


def build_tokenizer(vocab_path: Path = VOCAB_PATH) -> Any:
    """all-MiniLM-L6-v2's BERT-uncased WordPiece tokenizer, from its vocab.txt."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    with open(vocab_path, encoding="utf-8") as f:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.enable_truncation(MAX_TOKENS)
    return tok


class MiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime's CPU provider."""

    def __init__(self, model_path: str | None = None) -> None:
        import onnxruntime as ort

        if model_path is None:
            model_path = str(MODEL_PATH)
            _check_weights(MODEL_PATH)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # After a run, onnxruntime's threads spin-wait for the next one by default. On a
        # small shared machine that steals the cores the searching process needs for its
        # matrix product right after a query is embedded (measured: vector scan 15 ms
        # instead of 5 ms at 100k messages). A query or a batch gains nothing from spinning.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        # The arena keeps the peak of the largest batch forever (measured: 891 MiB RSS
        # after one batch of 32 long messages, 251 MiB without it) at no speed gain here.
        options.enable_cpu_mem_arena = False
        self.session = ort.InferenceSession(
            model_path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = build_tokenizer()
        self._run_lock = threading.Lock()

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        """L2-normalised float32 vectors, one row per text."""
        import numpy as np

        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        # Shortest first, then cut where the padded size would pass the budget: padding
        # (and so work) stays small (measured: 4x the messages/s of fixed batches of 32
        # in arrival order, where one long message pads 31 short ones to 256 tokens).
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            end = start + 1
            while (
                end < len(order)
                and end - start < batch_size
                and (end - start + 1) * len(encodings[order[end]].ids) <= TOKEN_BUDGET
            ):
                end += 1
            idx = order[start:end]
            width = len(encodings[idx[-1]].ids)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            with self._run_lock:  # one run at a time: the session already uses every core
                (hidden,) = self.session.run(None, feeds)
            weights = mask[:, :, None].astype(np.float32)
            out[idx] = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            start = end
        _trim_heap()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def _trim_heap() -> None:
    """Hand the freed activation buffers back to the OS (glibc keeps them otherwise).

    Without it the embedding service stays at the peak of its largest batch: measured
    215 MiB resident after indexing 612 messages, 104 MiB after trimming.
    """
    global _libc
    if _libc is None:
        import ctypes
        import ctypes.util

        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc.malloc_trim  # noqa: B018 - glibc only; others have no such call
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc: Any = None


def get_minilm() -> MiniLM:
    """The process's one MiniLM (loaded on first use, ~0.7 s)."""
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = MiniLM()
    return _instance
