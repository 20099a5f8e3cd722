"""The graph tier against a real Bolt server (ArcadeDB's, the one that runs here)."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from neo4j import AsyncGraphDatabase

from memory.errors import InvalidInput, TierUnavailable
from memory.models import Exchange, Extraction, ForgetTarget, Mention, Scope
from memory.tiers.graph import Neo4jGraph, create_graph

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
Bolt = tuple[str, tuple[str, str] | None, str | None]


@pytest_asyncio.fixture
async def graph(bolt: Bolt) -> AsyncIterator[Neo4jGraph]:
    uri, auth, database = bolt
    g = await create_graph(uri, auth, database)
    await raw(g, "MATCH (n) DETACH DELETE n")
    yield g
    await g.aclose()


async def raw(g: Neo4jGraph, query: str, **params: Any) -> list[dict[str, Any]]:
    """Run Cypher directly, bypassing the tier, to check what is really stored."""
    async with g._driver.session(database=g._database) as session:
        result = await session.run(query, params)
        return await result.data()


async def raw_count(g: Neo4jGraph, user_id: str) -> int:
    """Nodes that name the user in any property the tier writes."""
    rows = await raw(g, "MATCH (n) WHERE n.user_id = $u OR n.ukey STARTS WITH $p OR n.key STARTS WITH $p "
                        "RETURN count(n) AS c", u=user_id, p=f"{user_id}|")
    return int(rows[0]["c"])


def item(xid: str, user: str = "u1", guild: str | None = "g1", minutes: int = 0,
         entities: Sequence[str] = (), topics: Sequence[str] = (),
         labels: dict[str, str] | None = None) -> tuple[Exchange, Extraction]:
    labels = labels or {}
    exchange = Exchange(xid, user, guild, "c1", "user says", "bot says", T0 + timedelta(minutes=minutes))
    mentions = tuple([Mention(e, "entity", labels.get(e, "")) for e in entities]
                     + [Mention(t, "topic", labels.get(t, "")) for t in topics])
    return exchange, Extraction(xid, "summary", ("summary",), mentions)


S1 = Scope("u1", "g1")


def sample() -> list[tuple[Exchange, Extraction]]:
    return [
        item("x1", minutes=1, entities=["paris"], topics=["travel"], labels={"paris": "Paris"}),
        item("x2", minutes=2, entities=["paris", "louvre"], topics=["travel", "art"]),
        item("x3", minutes=3, topics=["travel"]),
        item("x4", minutes=4, entities=["rust"], topics=["programming"]),
    ]


async def test_ingest_related_profile_and_topic_exchanges(graph: Neo4jGraph) -> None:
    assert await graph.ingest(sample()) == 4

    hits = await graph.related(S1, ["Paris", "  TRAVEL "], 10)
    assert [h.exchange_id for h in hits] == ["x2", "x1", "x3"]  # two names beat one; then newest
    assert {h.source for h in hits} == {"graph"}
    assert hits[0].detail == "paris, travel"
    assert hits[2].detail == "travel"
    assert hits[0].score == pytest.approx(1 / math.log(3) + 1 / math.log(4))  # paris x2, travel x3
    assert [h.exchange_id for h in await graph.related(S1, ["travel"], 2)] == ["x3", "x2"]

    profile = await graph.profile(S1, 10)
    top = profile[0]
    assert (top.name, top.kind, top.count) == ("travel", "topic", 3)
    assert (top.first_seen, top.last_seen) == (T0 + timedelta(minutes=1), T0 + timedelta(minutes=3))
    assert top.first_seen.tzinfo is not None and top.first_seen.utcoffset() == timedelta(0)
    paris = next(r for r in profile if r.name == "paris")
    assert (paris.kind, paris.count, paris.label) == ("entity", 2, "Paris")
    assert {(r.name, r.kind, r.count) for r in profile[2:]} == {
        ("louvre", "entity", 1), ("art", "topic", 1), ("rust", "entity", 1), ("programming", "topic", 1)}
    assert len(await graph.profile(S1, 2)) == 2

    assert await graph.topic_exchanges(S1, "travel") == ["x1", "x2", "x3"]
    assert await graph.topic_exchanges(S1, "Rust") == ["x4"]
    assert await graph.topic_exchanges(S1, "nothing") == []

    # 1 user + 4 exchanges + 3 entities + 3 topics
    assert await graph.count("u1") == 11 == await raw_count(graph, "u1")
    assert await graph.count("u1", S1) == 11


async def test_rare_names_outweigh_common_ones(graph: Neo4jGraph) -> None:
    common = [item(f"c{i}", minutes=i, topics=["chat"]) for i in range(6)]
    rare = item("r1", minutes=0, entities=["kyoto"])
    await graph.ingest([*common, rare])
    hits = await graph.related(S1, ["chat", "kyoto"], 3)
    assert [h.exchange_id for h in hits] == ["r1", "c5", "c4"]
    assert hits[0].score > hits[1].score


async def test_related_with_no_or_unknown_names_is_empty(graph: Neo4jGraph) -> None:
    await graph.ingest(sample())
    assert await graph.related(S1, [], 10) == []
    assert await graph.related(S1, ["  "], 10) == []
    assert await graph.related(S1, ["atlantis"], 10) == []
    assert await graph.profile(Scope("nobody", "g1"), 10) == []


async def test_replayed_batch_changes_nothing(graph: Neo4jGraph) -> None:
    batch = sample()
    assert await graph.ingest(batch) == 4
    before = (await graph.profile(S1, 50), await graph.count("u1"))
    assert await graph.ingest(batch) == 0
    assert await graph.ingest(list(reversed(batch))) == 0
    assert (await graph.profile(S1, 50), await graph.count("u1")) == before
    edges = await raw(graph, "MATCH (:Exchange)-[r:MENTIONS]->() RETURN count(r) AS c")
    assert edges[0]["c"] == 9


async def test_existing_names_the_ingested_exchanges(graph: Neo4jGraph) -> None:
    assert await graph.existing(["x1", "x2"]) == set()
    await graph.ingest(sample()[:2])
    assert await graph.existing(["x1", "x2", "x3", "nope"]) == {"x1", "x2"}
    await graph.forget(ForgetTarget("u1", S1, ("x1",)))
    assert await graph.existing(["x1", "x2"]) == {"x2"}
    assert await graph.existing([]) == set()


async def test_overlapping_batches_count_each_exchange_once(graph: Neo4jGraph) -> None:
    first = [item(f"x{i}", minutes=i, topics=["music"]) for i in range(4)]
    second = [item(f"x{i}", minutes=i, topics=["music"]) for i in range(2, 6)]
    assert await graph.ingest(first) == 4
    assert await graph.ingest(second) == 2
    assert await graph.ingest([first[0], first[0], second[-1]]) == 0  # duplicates inside a batch too
    [music] = await graph.profile(S1, 10)
    assert music.count == 6
    assert (music.first_seen, music.last_seen) == (T0, T0 + timedelta(minutes=5))
    rel = await raw(graph, "MATCH (:User {key: 'u1|g:g1'})-[m:MENTIONED]->(t:Topic) "
                           "RETURN m.count AS c, t.count AS n")
    assert rel == [{"c": 6, "n": 6}]
    assert await graph.topic_exchanges(S1, "music") == [f"x{i}" for i in range(6)]


async def test_concurrent_ingest_of_the_same_batch_stores_it_once(graph: Neo4jGraph) -> None:
    batch = [item(f"x{i}", minutes=i, entities=["berlin"], topics=["cities"]) for i in range(20)]
    results = await asyncio.gather(graph.ingest(batch), graph.ingest(batch), graph.ingest(batch))
    assert sum(results) == 20
    assert {(r.name, r.count) for r in await graph.profile(S1, 10)} == {("berlin", 20), ("cities", 20)}
    assert await graph.count("u1") == 1 + 20 + 2


async def test_concurrent_batches_sharing_new_names_count_exactly(graph: Neo4jGraph) -> None:
    batches = [[item(f"w{w}-{i}", minutes=i, entities=["berlin"], topics=[f"t{i}"]) for i in range(5)]
               for w in range(4)]
    assert await asyncio.gather(*(graph.ingest(b) for b in batches)) == [5, 5, 5, 5]
    counts = {r.name: r.count for r in await graph.profile(S1, 50)}
    assert counts == {"berlin": 20, **{f"t{i}": 4 for i in range(5)}}
    assert await graph.count("u1") == 1 + 20 + 1 + 5


async def test_mismatched_extraction_is_refused(graph: Neo4jGraph) -> None:
    exchange, _ = item("x1")
    _, other = item("x2", topics=["t"])
    with pytest.raises(InvalidInput):
        await graph.ingest([item("x0", topics=["t"]), (exchange, other)])
    assert await graph.count("u1") == 0


ISOLATION_SCOPES = [Scope("u1", "g1"), Scope("u1", "g2"), Scope("u1", None), Scope("u2", "g1")]


async def seed_isolation(graph: Neo4jGraph) -> None:
    items = []
    for n, scope in enumerate(ISOLATION_SCOPES):
        tag = f"{scope.user_id}-{scope.key.replace(':', '')}"
        items.append(item(f"{tag}-a", scope.user_id, scope.guild_id, n, ["alice"], ["secret"]))
        items.append(item(f"{tag}-b", scope.user_id, scope.guild_id, n, [f"only {tag}"]))
    assert await graph.ingest(items) == 8


async def test_nothing_crosses_users_or_scopes(graph: Neo4jGraph) -> None:
    await seed_isolation(graph)
    for scope in ISOLATION_SCOPES:
        tag = f"{scope.user_id}-{scope.key.replace(':', '')}"
        every_name = ["alice", "secret"] + [f"only {s.user_id}-{s.key.replace(':', '')}"
                                            for s in ISOLATION_SCOPES]
        hits = await graph.related(scope, every_name, 50)
        assert sorted(h.exchange_id for h in hits) == [f"{tag}-a", f"{tag}-b"]
        profile = await graph.profile(scope, 50)
        assert sorted((r.name, r.count) for r in profile) == [("alice", 1), (f"only {tag}", 1),
                                                             ("secret", 1)]
        assert await graph.topic_exchanges(scope, "secret") == [f"{tag}-a"]
        others = [s for s in ISOLATION_SCOPES if s != scope]
        for other in others:
            other_tag = f"{other.user_id}-{other.key.replace(':', '')}"
            assert await graph.topic_exchanges(scope, f"only {other_tag}") == []
        assert await graph.count(scope.user_id, scope) == 1 + 2 + 3
    assert await graph.count("u1") == 3 * 6
    assert await graph.count("u2") == 6


async def test_forget_user_removes_every_scope_and_nothing_else(graph: Neo4jGraph) -> None:
    await seed_isolation(graph)
    u2_before = (await graph.profile(Scope("u2", "g1"), 50), await graph.count("u2"))
    assert await graph.forget(ForgetTarget("u1")) == 18
    assert await graph.count("u1") == 0
    assert await raw_count(graph, "u1") == 0
    total = await raw(graph, "MATCH (n) RETURN count(n) AS c")
    assert total[0]["c"] == 6
    assert (await graph.profile(Scope("u2", "g1"), 50), await graph.count("u2")) == u2_before
    assert await graph.related(Scope("u1", "g1"), ["alice"], 10) == []
    assert await graph.forget(ForgetTarget("u1")) == 0


async def test_forget_scope_keeps_the_users_other_scopes(graph: Neo4jGraph) -> None:
    await seed_isolation(graph)
    assert await graph.forget(ForgetTarget("u1", Scope("u1", None))) == 6
    assert await graph.count("u1", Scope("u1", None)) == 0
    rows = await raw(graph, "MATCH (n) WHERE n.ukey = 'u1|dm' OR n.key STARTS WITH 'u1|dm' "
                            "RETURN count(n) AS c")
    assert rows[0]["c"] == 0
    assert await graph.count("u1") == 12
    assert [h.exchange_id for h in await graph.related(Scope("u1", "g2"), ["alice"], 10)] == ["u1-gg2-a"]


async def test_forget_exchanges_recounts_and_drops_orphans(graph: Neo4jGraph) -> None:
    await graph.ingest(sample())
    # x1 mentions paris + travel; paris stays (x2), travel stays (x2, x3)
    assert await graph.forget(ForgetTarget("u1", S1, ("x1",))) == 1
    profile = {r.name: r for r in await graph.profile(S1, 50)}
    assert (profile["travel"].count, profile["travel"].first_seen) == (2, T0 + timedelta(minutes=2))
    assert (profile["paris"].count, profile["paris"].first_seen) == (1, T0 + timedelta(minutes=2))
    rel = await raw(graph, "MATCH (:User {key: 'u1|g:g1'})-[m:MENTIONED]->(t:Topic {name: 'travel'}) "
                           "RETURN m.count AS c, m.first_seen AS f")
    assert rel == [{"c": 2, "f": (T0 + timedelta(minutes=2)).timestamp()}]
    assert await graph.topic_exchanges(S1, "travel") == ["x2", "x3"]

    # x4 alone mentions rust and programming: both go with it
    assert await graph.forget(ForgetTarget("u1", S1, ("x4",))) == 3
    assert await graph.topic_exchanges(S1, "programming") == []
    assert await raw(graph, "MATCH (n) WHERE n.name IN ['rust', 'programming'] RETURN n.name") == []

    # another scope's ids name nothing here
    await graph.ingest([item("y1", "u1", "g2", topics=["travel"])])
    assert await graph.forget(ForgetTarget("u1", S1, ("y1",))) == 0
    assert await graph.count("u1", Scope("u1", "g2")) == 3

    # the last exchanges take the scope's user node with them
    before = await graph.count("u1", S1)
    assert await graph.forget(ForgetTarget("u1", S1, ("x2", "x3", "missing"))) == before
    assert await graph.count("u1", S1) == 0
    assert await graph.count("u1") == 3


HOSTILE = [
    "o'brien \"the\" quote",
    "back\\slash \\' \\\" end\\",
    "'}) detach delete n //",
    "\"}) match (m) detach delete m return 1 //",
    "zürich 東京 🚀 ﷽",
    "$ukey {key: 'u2|g:g1'}",
]


async def test_hostile_names_and_labels_are_stored_faithfully(graph: Neo4jGraph) -> None:
    await graph.ingest([item("other", "u2", "g1", entities=["bystander"])])
    labels = {name: name.upper() + " ¶" for name in HOSTILE}
    assert await graph.ingest([item("h1", entities=HOSTILE[:3], topics=HOSTILE[3:], labels=labels)]) == 1
    profile = await graph.profile(S1, 50)
    assert sorted((r.name, r.label) for r in profile) == sorted((n, labels[n]) for n in HOSTILE)
    for name in HOSTILE:
        assert await graph.topic_exchanges(S1, name) == ["h1"]
        [hit] = await graph.related(S1, [name], 5)
        assert (hit.exchange_id, hit.detail) == ("h1", name)
    assert await graph.count("u2") == 3
    assert await graph.forget(ForgetTarget("u1", S1, ("h1",))) == 1 + len(HOSTILE) + 1
    assert await graph.count("u2") == 3


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_server_raises_tier_unavailable() -> None:
    uri = f"bolt://127.0.0.1:{closed_port()}"
    with pytest.raises(TierUnavailable) as info:
        await create_graph(uri, ("neo4j", "pw"), None, connection_timeout=1.0, max_retry_time=0.2)
    assert info.value.tier == "graph"

    driver = AsyncGraphDatabase.driver(uri, auth=("neo4j", "pw"), connection_timeout=1.0,
                                       max_transaction_retry_time=0.2)
    graph = Neo4jGraph(driver, None)
    try:
        calls = [graph.ping, lambda: graph.related(S1, ["x"], 5), lambda: graph.ingest(sample()),
                 lambda: graph.count("u1"), lambda: graph.forget(ForgetTarget("u1"))]
        for call in calls:
            with pytest.raises(TierUnavailable):
                await call()
    finally:
        await graph.aclose()


async def test_ping_and_schema_are_idempotent(graph: Neo4jGraph) -> None:
    await graph.ping()
    await graph.ensure_schema()
    constraints = await raw(graph, "SHOW CONSTRAINTS")
    assert {tuple(c["labelsOrTypes"]) for c in constraints} >= {("User",), ("Exchange",), ("Entity",),
                                                                ("Topic",)}
