"""ChromaSummaries on a real Chroma: on-disk (PersistentClient) and over HTTP (``chroma run``)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import chromadb
import numpy as np
import pytest
import pytest_asyncio
from chromadb.config import Settings

from memory.embedding import OnnxMiniLMEmbedder
from memory.errors import TierUnavailable
from memory.models import ForgetTarget, Scope, SummaryRecord
from memory.tiers.chroma_client import close_chroma_client
from memory.tiers.summaries import (
    ChromaSummaries,
    collection_prefix,
    create_summaries,
    owner_collection,
    registry_collection,
)
from tests import servers

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALICE_GUILD = Scope("alice", "g1")
ALICE_DM = Scope("alice", None)
BOB_GUILD = Scope("bob", "g1")


@pytest.fixture(scope="module")
def embedder() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder(threads=1)


Location = tuple[str | None, Path | None]


@pytest.fixture
def collection_name() -> str:
    return f"test_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def drop_collections(chroma_location: Location, collection_name: str) -> Iterator[None]:
    """After the test, drop every collection named from this test's base (the HTTP server is shared)."""
    yield
    if chroma_location[0]:
        client = _raw_client(chroma_location)
        for name in _raw_names(client, collection_name):
            client.delete_collection(name)
        close_chroma_client(client)


@pytest_asyncio.fixture
async def tier(chroma_location: Location, collection_name: str,
               drop_collections: None) -> AsyncIterator[ChromaSummaries]:
    summaries = await create_summaries(*chroma_location, collection_name)
    yield summaries
    await summaries.aclose()


def _raw_client(location: Location) -> chromadb.api.ClientAPI:
    url, path = location
    settings = Settings(anonymized_telemetry=False)
    if url:
        host, port = url.removeprefix("http://").split(":")
        return chromadb.HttpClient(host=host, port=int(port), settings=settings)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def _raw_names(client: chromadb.api.ClientAPI, base: str) -> set[str]:
    return {c.name for c in client.list_collections() if c.name.startswith(f"{base}-")}


class Raw:
    """What chromadb itself holds for one test's base name, read with a client of its own."""

    def __init__(self, location: Location, base: str) -> None:
        self.location, self.base = location, base

    def owners(self) -> dict[str, int]:
        """Record count per owner collection ("user/scope-key" from its metadata); registry excluded."""
        client = _raw_client(self.location)
        try:
            out = {}
            for name in _raw_names(client, self.base) - {registry_collection(self.base)}:
                coll = client.get_collection(name, embedding_function=None)
                meta = coll.metadata or {}
                assert name == owner_collection(self.base, str(meta["user_id"]), str(meta["scope"]))
                out[f"{meta['user_id']}/{meta['scope']}"] = coll.count()
            return out
        finally:
            close_chroma_client(client)

    def registry(self) -> set[str]:
        """The owners in the registry, as "user/scope-key"."""
        client = _raw_client(self.location)
        try:
            got = client.get_collection(registry_collection(self.base), embedding_function=None).get()
            return {f"{m['user_id']}/{m['scope']}" for m in got["metadatas"] or []}
        finally:
            close_chroma_client(client)

    def names(self) -> set[str]:
        client = _raw_client(self.location)
        try:
            return _raw_names(client, self.base)
        finally:
            close_chroma_client(client)


@pytest.fixture
def raw(chroma_location: Location, collection_name: str) -> Raw:
    return Raw(chroma_location, collection_name)


async def _records(embedder: OnnxMiniLMEmbedder, scope: Scope,
                   items: list[tuple[str, int, str]], minutes: int = 0) -> list[SummaryRecord]:
    """SummaryRecords for (exchange_id, chunk, text), embedded with the real model."""
    vectors = await embedder.embed([text for _, _, text in items])
    return [SummaryRecord(exchange_id=ex, chunk=chunk, user_id=scope.user_id, scope_key=scope.key,
                          timestamp=T0 + timedelta(minutes=minutes + i), summary=text,
                          embedding=tuple(float(x) for x in vec))
            for i, ((ex, chunk, text), vec) in enumerate(zip(items, vectors, strict=True))]


async def _query(embedder: OnnxMiniLMEmbedder, text: str) -> np.ndarray:
    return (await embedder.embed([text]))[0]


async def test_ping_answers_only_while_the_server_runs() -> None:
    url, stop = servers.start_chroma_server()
    stopped = False
    try:
        tier = await create_summaries(url, None, f"test_{uuid.uuid4().hex[:16]}")
        try:
            assert tier.name == "summaries"
            assert await tier.ping() is None
            stop()
            stopped = True
            with pytest.raises(TierUnavailable) as err:
                await tier.ping()
            assert err.value.tier == "summaries"
        finally:
            await tier.aclose()
    finally:
        if not stopped:
            stop()


async def test_search_returns_the_matching_exchange_first(
        tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder) -> None:
    await tier.upsert(await _records(embedder, ALICE_GUILD, [
        ("ex-dog", 0, "Alice said her golden retriever Max loves swimming in the lake."),
        ("ex-job", 0, "Alice started a new job as a backend engineer at a bank."),
        ("ex-food", 0, "Alice is learning to cook Thai green curry."),
    ]))
    hits = await tier.search(ALICE_GUILD, await _query(embedder, "what is the name of my dog?"), 3)
    assert hits[0].exchange_id == "ex-dog"
    assert len(hits) == 3
    assert all(h.source == "semantic" for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].detail == "chunk 0"  # the best-matching chunk of the exchange
    assert 0.0 < hits[0].score <= 1.0 + 1e-6

    job = await tier.search(ALICE_GUILD, await _query(embedder, "where do I work now?"), 1)
    assert [h.exchange_id for h in job] == ["ex-job"]


async def test_chunks_of_one_exchange_collapse_into_one_hit(
        tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder) -> None:
    await tier.upsert(await _records(embedder, ALICE_GUILD, [
        ("ex-trip", 0, "Alice plans a trip to Japan in April."),
        ("ex-trip", 1, "She wants to see the cherry blossoms in Kyoto during her Japan trip."),
        ("ex-trip", 2, "In Tokyo she will visit Akihabara on her Japan holiday."),
        ("ex-tax", 0, "Alice asked how to file her tax return."),
    ]))
    query = await _query(embedder, "cherry blossoms in Kyoto")
    hits = await tier.search(ALICE_GUILD, query, 5)
    assert [h.exchange_id for h in hits] == ["ex-trip", "ex-tax"]
    # the exchange is scored by its best chunk
    assert hits[0].detail == "chunk 1"  # the cherry-blossom chunk
    assert await tier.count("alice") == 4


async def test_upsert_replay_changes_nothing(
        tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder, raw: Raw) -> None:
    records = await _records(embedder, ALICE_GUILD, [
        ("ex-1", 0, "first summary"), ("ex-1", 1, "second chunk"), ("ex-2", 0, "another one")])
    await tier.upsert(records)
    await tier.upsert(records)
    await tier.upsert(records[1:])
    assert await tier.count("alice") == 3
    assert raw.owners() == {"alice/g:g1": 3}
    assert raw.registry() == {"alice/g:g1"}
    stored = await tier.records("alice")
    assert [(r.exchange_id, r.chunk, r.summary) for r in stored] == [
        ("ex-1", 0, "first summary"), ("ex-1", 1, "second chunk"), ("ex-2", 0, "another one")]
    assert stored[0].timestamp == T0 and stored[0].scope_key == "g:g1"
    assert all(r.embedding == () for r in stored)


async def test_upsert_empty_is_a_no_op(tier: ChromaSummaries) -> None:
    await tier.upsert([])
    assert await tier.count("alice") == 0


async def test_search_never_crosses_user_or_scope(
        tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder) -> None:
    query_text = "I adopted a black cat named Pepper"
    # Others hold the exact query text; alice's guild scope holds only a weak match.
    await tier.upsert(await _records(embedder, BOB_GUILD, [("bob-cat", 0, query_text)]))
    await tier.upsert(await _records(embedder, ALICE_DM, [("alice-dm-cat", 0, query_text)]))
    await tier.upsert(await _records(embedder, ALICE_GUILD, [
        ("alice-g-weather", 0, "It rained all day in Lisbon.")]))
    query = await _query(embedder, query_text)

    guild_hits = await tier.search(ALICE_GUILD, query, 10)
    assert [h.exchange_id for h in guild_hits] == ["alice-g-weather"]
    dm_hits = await tier.search(ALICE_DM, query, 10)
    assert [h.exchange_id for h in dm_hits] == ["alice-dm-cat"]
    bob_hits = await tier.search(BOB_GUILD, query, 10)
    assert [h.exchange_id for h in bob_hits] == ["bob-cat"]
    assert await tier.search(Scope("carol", "g1"), query, 10) == []

    assert await tier.count("alice") == 2
    assert await tier.count("alice", ALICE_DM) == 1
    assert {r.exchange_id for r in await tier.records("alice", ALICE_GUILD)} == {"alice-g-weather"}
    assert {r.exchange_id for r in await tier.records("bob")} == {"bob-cat"}


async def _seed_for_forget(tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder) -> None:
    await tier.upsert(await _records(embedder, ALICE_GUILD, [
        ("a-g-1", 0, "guild one"), ("a-g-1", 1, "guild one, chunk two"), ("a-g-2", 0, "guild two")]))
    await tier.upsert(await _records(embedder, ALICE_DM, [("a-dm-1", 0, "dm one")]))
    await tier.upsert(await _records(embedder, BOB_GUILD, [("b-g-1", 0, "bob one")]))


async def test_forget_user_removes_every_scope_and_nothing_else(
        tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder, raw: Raw) -> None:
    await _seed_for_forget(tier, embedder)
    assert raw.owners() == {"alice/g:g1": 3, "alice/dm": 1, "bob/g:g1": 1}
    assert raw.registry() == {"alice/g:g1", "alice/dm", "bob/g:g1"}
    assert await tier.forget(ForgetTarget("alice")) == 4
    assert await tier.count("alice") == 0
    assert await tier.count("bob") == 1
    # alice's collections are really gone, with their registry records; bob's are untouched
    assert raw.owners() == {"bob/g:g1": 1}
    assert raw.registry() == {"bob/g:g1"}
    assert await tier.forget(ForgetTarget("alice")) == 0


async def test_forget_scope(tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder, raw: Raw) -> None:
    await _seed_for_forget(tier, embedder)
    assert await tier.forget(ForgetTarget("alice", ALICE_GUILD)) == 3
    assert await tier.count("alice", ALICE_GUILD) == 0
    assert await tier.count("alice", ALICE_DM) == 1
    assert await tier.count("bob", BOB_GUILD) == 1
    assert raw.owners() == {"alice/dm": 1, "bob/g:g1": 1}
    assert raw.registry() == {"alice/dm", "bob/g:g1"}
    assert await tier.search(ALICE_GUILD, np.ones(384, dtype=np.float32), 5) == []
    assert await tier.forget(ForgetTarget("alice", ALICE_GUILD)) == 0


async def test_forget_exchanges(tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder, raw: Raw) -> None:
    await _seed_for_forget(tier, embedder)
    # b-g-1 is bob's and a-dm-1 is in another scope: neither may be touched
    target = ForgetTarget("alice", ALICE_GUILD, ("a-g-1", "b-g-1", "a-dm-1"))
    assert await tier.forget(target) == 2
    assert [r.exchange_id for r in await tier.records("alice", ALICE_GUILD)] == ["a-g-2"]
    assert await tier.count("alice", ALICE_DM) == 1 and await tier.count("bob") == 1
    assert await tier.forget(ForgetTarget("alice", ALICE_GUILD, ())) == 0
    assert await tier.forget(ForgetTarget("alice", ALICE_GUILD, ("a-g-2",))) == 1
    assert await tier.count("alice", ALICE_GUILD) == 0
    assert raw.owners() == {"alice/g:g1": 0, "alice/dm": 1, "bob/g:g1": 1}


HOSTILE = [
    'She said "hi" and \'bye\'; DROP TABLE summaries; --',
    '{"$and": [{"user_id": "bob"}]} $or $in $ne',
    "Ünïcödé ✓ 日本語 🐍 emoji 👩‍👩‍👧 and RTL مرحبا",
    "line one\nline two\ttabbed \\ backslash",
]


async def test_hostile_strings_are_stored_faithfully(
        tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder) -> None:
    items = [(f"ex-{i}", 0, text) for i, text in enumerate(HOSTILE)]
    await tier.upsert(await _records(embedder, ALICE_GUILD, items))
    stored = await tier.records("alice", ALICE_GUILD)
    assert [r.summary for r in stored] == HOSTILE
    hits = await tier.search(ALICE_GUILD, await _query(embedder, HOSTILE[1]), 10)
    assert hits[0].exchange_id == "ex-1" and hits[0].detail == "chunk 0"
    # a user id that looks like an operator matches nothing and breaks nothing
    assert await tier.count("$and") == 0
    assert await tier.forget(ForgetTarget("$ne")) == 0
    assert await tier.count("alice") == len(HOSTILE)


async def test_an_owner_without_records_has_no_hits_and_gets_no_collection(
        tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder, raw: Raw) -> None:
    query = await _query(embedder, "anything at all")
    assert raw.names() == {registry_collection(raw.base)}
    assert await tier.search(Scope("carol", "g1"), query, 10) == []
    await tier.upsert(await _records(embedder, ALICE_GUILD, [("ex-1", 0, "anything at all")]))
    names = raw.names()
    # alice's other scope and another user's same scope are other owners: nothing there, nothing made
    assert await tier.search(ALICE_DM, query, 10) == []
    assert await tier.search(Scope("carol", "g1"), query, 10) == []
    assert await tier.count("carol") == 0 and await tier.records("carol", Scope("carol", "g1")) == []
    assert await tier.forget(ForgetTarget("carol", Scope("carol", "g1"))) == 0
    assert raw.names() == names and len(names) == 2
    assert [h.exchange_id for h in await tier.search(ALICE_GUILD, query, 10)] == ["ex-1"]


async def test_collection_forgotten_by_another_process(
        tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder,
        chroma_location: Location, collection_name: str, raw: Raw) -> None:
    """Another client (as another process would) forgets and refills an owner this tier holds a handle to."""
    query = await _query(embedder, "my sister lives in Porto")
    other = await create_summaries(*chroma_location, collection_name)
    try:
        await tier.upsert(await _records(embedder, ALICE_GUILD, [("ex-old", 0, "my sister lives in Porto")]))
        assert [h.exchange_id for h in await tier.search(ALICE_GUILD, query, 5)] == ["ex-old"]

        assert await other.forget(ForgetTarget("alice")) == 1
        assert await tier.search(ALICE_GUILD, query, 5) == []  # stale handle: no hits, no error
        assert raw.names() == {registry_collection(collection_name)}  # and nothing recreated

        await other.upsert(await _records(embedder, ALICE_GUILD, [("ex-new", 0, "my sister moved to Porto")]))
        assert [h.exchange_id for h in await tier.search(ALICE_GUILD, query, 5)] == ["ex-new"]

        # this tier's handle and registration are stale again; its upsert recreates and re-registers
        assert await other.forget(ForgetTarget("alice", ALICE_GUILD)) == 1
        await tier.upsert(await _records(embedder, ALICE_GUILD, [("ex-3", 0, "my sister lives in Porto")]))
        assert raw.registry() == {"alice/g:g1"}
        assert [h.exchange_id for h in await other.search(ALICE_GUILD, query, 5)] == ["ex-3"]
        assert await other.count("alice") == 1
    finally:
        await other.aclose()


async def test_long_base_and_odd_ids_make_valid_distinct_collections(
        chroma_location: Location, collection_name: str, drop_collections: None,
        embedder: OnnxMiniLMEmbedder) -> None:
    base = collection_name + "_" + "x" * (62 - len(collection_name))  # the longest the settings allow
    assert len(base) == 63
    # ids that would collide if user and scope were simply joined with a separator
    owners = [Scope("a\x1fg:b", "c"), Scope("a", "b\x1fg:c"), Scope("$and", "日本語 🐍"), Scope('"; --', None)]
    tier = await create_summaries(*chroma_location, base)
    try:
        for i, scope in enumerate(owners):
            await tier.upsert(await _records(embedder, scope, [(f"ex-{i}", 0, f"note number {i}")]))
        query = await _query(embedder, "note number")
        for i, scope in enumerate(owners):
            assert [h.exchange_id for h in await tier.search(scope, query, 5)] == [f"ex-{i}"]
            assert await tier.count(scope.user_id) == 1
        assert len({owner_collection(base, s.user_id, s.key) for s in owners}) == len(owners)
        assert collection_prefix(base) != collection_prefix(base[:-1] + "y")
    finally:
        await tier.aclose()


async def test_unreachable_server_is_tier_unavailable(collection_name: str) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TierUnavailable) as info:
        await create_summaries(f"http://127.0.0.1:{port}", None, collection_name)
    assert info.value.tier == "summaries"


async def test_server_going_away_is_tier_unavailable(
        collection_name: str, embedder: OnnxMiniLMEmbedder) -> None:
    from tests import servers

    own_url, stop = servers.start_chroma_server()
    tier = await create_summaries(own_url, None, collection_name)
    try:
        await tier.upsert(await _records(embedder, ALICE_GUILD, [("ex-1", 0, "hello")]))
        stop()
        with pytest.raises(TierUnavailable):
            await tier.ping()
        with pytest.raises(TierUnavailable):
            await tier.search(ALICE_GUILD, await _query(embedder, "hello"), 5)
        with pytest.raises(TierUnavailable):
            await tier.count("alice")
    finally:
        await tier.aclose()


async def test_exchange_ids_with_colons_come_back_whole(
        tier: ChromaSummaries, embedder: OnnxMiniLMEmbedder) -> None:
    # record ids are "<exchange id>:<chunk>"; legacy (migrated) ids may hold colons themselves
    await tier.upsert(await _records(embedder, ALICE_GUILD, [
        ("legacy:chroma:42", 0, "Alice adopted a grey kitten named Pixel."),
        ("legacy:chroma:42", 1, "Pixel likes to sleep on the keyboard."),
    ]))
    hits = await tier.search(ALICE_GUILD, await _query(embedder, "Alice's kitten Pixel"), 5)
    assert [h.exchange_id for h in hits] == ["legacy:chroma:42"]


async def test_the_store_names_the_model_of_its_vectors(
        chroma_location: Location, collection_name: str, drop_collections: None,
        embedder: OnnxMiniLMEmbedder) -> None:
    tier = await create_summaries(*chroma_location, collection_name)
    try:
        assert await tier.stored_model() is None  # nothing stored: any model may start it
        # records written before the store kept a model's name: an older mnemo, so MiniLM's
        await tier.upsert(await _records(embedder, ALICE_DM, [("ex-1", 0, "Alice has a cat called Miso.")]))
        assert await tier.stored_model() == "all-MiniLM-L6-v2"
        await tier.mark_model("multilingual-e5-small")
        await tier.mark_model("multilingual-e5-small")
        assert await tier.stored_model() == "multilingual-e5-small"
    finally:
        await tier.aclose()
    again = await create_summaries(*chroma_location, collection_name)  # another process reads the mark
    try:
        assert await again.stored_model() == "multilingual-e5-small"
        assert await again.count("alice") == 1  # marking touches no record
    finally:
        await again.aclose()
