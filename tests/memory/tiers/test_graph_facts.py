"""Typed facts in the graph tier, on the real Bolt server: support, closing, resolution, forget."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from memory.models import Exchange, Extraction, ForgetTarget, Scope, Statement, TypedFact
from memory.tiers.graph import Neo4jGraph, create_graph
from tests.memory.tiers.test_graph import Bolt, raw

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def graph(bolt: Bolt) -> AsyncIterator[Neo4jGraph]:
    uri, auth, database = bolt
    g = await create_graph(uri, auth, database)
    yield g
    await g.aclose()


@pytest.fixture
def scope() -> Scope:
    return Scope(f"facts-{uuid.uuid4().hex[:8]}", "g1")


def said(scope: Scope, xid: str, weeks: int, *statements: tuple[str, str, str]) -> tuple[Exchange, Extraction]:
    e = Exchange(xid, scope.user_id, scope.guild_id, None, "...", "...", T0 + timedelta(weeks=weeks))
    return e, Extraction(xid, "...", ("...",), (),
                         tuple(Statement(p, o.lower(), o, d) for p, o, d in statements))


def view(facts: list[TypedFact]) -> set[tuple[str, str, bool, tuple[str, ...]]]:
    return {(f.predicate, f.label, f.current, f.support) for f in facts}


async def test_a_newer_contradicting_statement_closes_the_old_fact(graph: Neo4jGraph, scope: Scope) -> None:
    p = scope.user_id
    await graph.ingest([said(scope, f"{p}-1", 0, ("LIVES_IN", "Paris", ""), ("HAS_PET", "Tofu", "cat"))])
    await graph.ingest([said(scope, f"{p}-2", 2, ("LIVES_IN", "Paris", ""))])
    await graph.ingest([said(scope, f"{p}-3", 5, ("LIVES_IN", "Berlin", ""), ("HAS_PET", "Rex", "dog"))])
    facts = await graph.facts(scope)
    assert view(facts) == {("LIVES_IN", "Paris", False, (f"{p}-1", f"{p}-2")),
                           ("LIVES_IN", "Berlin", True, (f"{p}-3",)),
                           ("HAS_PET", "Tofu", True, (f"{p}-1",)), ("HAS_PET", "Rex", True, (f"{p}-3",))}
    paris = next(f for f in facts if f.label == "Paris")
    assert (paris.valid_from, paris.valid_to) == (T0, T0 + timedelta(weeks=5))
    rows = await raw(graph, "MATCH (f:Fact {ukey: $k}) WHERE f.predicate = 'LIVES_IN' AND f.valid_to IS NULL "
                            "RETURN f.obj AS obj", k=f"{scope.user_id}|{scope.key}")
    assert rows == [{"obj": "berlin"}]


async def test_an_older_statement_arriving_late_does_not_replace_the_current_fact(
        graph: Neo4jGraph, scope: Scope) -> None:
    p = scope.user_id
    await graph.ingest([said(scope, f"{p}-2", 5, ("WORKS_AS", "teacher", ""))])
    await graph.ingest([said(scope, f"{p}-1", 1, ("WORKS_AS", "nurse", ""))])
    facts = {f.label: f for f in await graph.facts(scope)}
    assert facts["teacher"].current and not facts["nurse"].current
    assert facts["nurse"].valid_to == T0 + timedelta(weeks=5)


async def test_a_newer_opposite_statement_about_one_thing_closes_the_old_one(graph: Neo4jGraph, scope: Scope) -> None:
    p = scope.user_id
    await graph.ingest([said(scope, f"{p}-1", 0, ("LIKES", "coffee", ""), ("LIKES", "tea", ""))])
    await graph.ingest([said(scope, f"{p}-2", 3, ("DISLIKES", "coffee", ""))])
    assert view(await graph.facts(scope)) == {("LIKES", "coffee", False, (f"{p}-1",)),
                                              ("LIKES", "tea", True, (f"{p}-1",)),
                                              ("DISLIKES", "coffee", True, (f"{p}-2",))}
    # a statement older than the current one arrives late: it held until the current one began
    await graph.ingest([said(scope, f"{p}-0", -1, ("DISLIKES", "tea", ""))])
    await graph.ingest([said(scope, f"{p}-3", 6, ("LIKES", "coffee", ""))])
    facts = await graph.facts(scope)
    assert {(f.predicate, f.label) for f in facts if f.current} == {("LIKES", "tea"), ("LIKES", "coffee")}
    late = next(f for f in facts if f.predicate == "DISLIKES" and f.label == "tea")
    assert (late.valid_from, late.valid_to) == (T0 - timedelta(weeks=1), T0)  # until "likes tea" began
    hate = next(f for f in facts if f.predicate == "DISLIKES" and f.label == "coffee")
    assert (hate.valid_from, hate.valid_to) == (T0 + timedelta(weeks=3), T0 + timedelta(weeks=6))
    # forgetting the newest statement brings the one it closed back
    await graph.forget(ForgetTarget(scope.user_id, scope, (f"{p}-3",)))
    assert {(f.predicate, f.label) for f in await graph.facts(scope) if f.current} == {
        ("LIKES", "tea"), ("DISLIKES", "coffee")}


async def test_short_and_long_names_of_one_person_are_one_fact(graph: Neo4jGraph, scope: Scope) -> None:
    p = scope.user_id
    await graph.ingest([said(scope, f"{p}-1", 0, ("FRIEND_OF", "Mel", "friend"))])
    await graph.ingest([said(scope, f"{p}-2", 1, ("FRIEND_OF", "Melanie", "friend")),
                        said(scope, f"{p}-3", 1, ("FRIEND_OF", "Melvin", "friend"))])
    facts = await graph.facts(scope)
    # Mel -> Melanie (first, unique match at that point); Melvin is someone else
    assert sorted((f.obj, f.aliases, f.support) for f in facts) == [
        ("melanie", ("mel",), (f"{p}-1", f"{p}-2")), ("melvin", (), (f"{p}-3",))]


async def test_forgetting_an_exchange_drops_its_support_and_unsupported_facts(
        graph: Neo4jGraph, scope: Scope) -> None:
    p = scope.user_id
    await graph.ingest([said(scope, f"{p}-1", 0, ("LIVES_IN", "Paris", "")),
                        said(scope, f"{p}-2", 1, ("LIVES_IN", "Paris", ""), ("LIKES", "chess", "")),
                        said(scope, f"{p}-3", 4, ("LIVES_IN", "Berlin", ""))])
    await graph.forget(ForgetTarget(scope.user_id, scope, (f"{p}-2",)))
    assert view(await graph.facts(scope)) == {("LIVES_IN", "Paris", False, (f"{p}-1",)),
                                              ("LIVES_IN", "Berlin", True, (f"{p}-3",))}
    removed = await graph.forget(ForgetTarget(scope.user_id, scope, (f"{p}-3",)))
    assert removed == 2  # the exchange and the Berlin fact; Paris is current again
    assert view(await graph.facts(scope)) == {("LIVES_IN", "Paris", True, (f"{p}-1",))}
    await graph.forget(ForgetTarget(scope.user_id))
    assert await graph.facts(scope) == []
    assert await raw(graph, "MATCH (f:Fact) WHERE f.user_id = $u RETURN f.fid", u=scope.user_id) == []


async def test_facts_are_confined_to_their_scope(graph: Neo4jGraph, scope: Scope) -> None:
    await graph.ingest([said(scope, f"{scope.user_id}-1", 0, ("LIVES_IN", "Paris", ""))])
    assert await graph.facts(Scope(scope.user_id, None)) == []
    assert await graph.facts(Scope("someone-else", "g1")) == []


async def test_replaying_a_batch_changes_no_fact(graph: Neo4jGraph, scope: Scope) -> None:
    batch = [said(scope, f"{scope.user_id}-1", 0, ("LIVES_IN", "Paris", ""), ("LIKES", "chess", ""))]
    await graph.ingest(batch)
    before = await graph.facts(scope)
    assert await graph.ingest(batch) == 0
    assert await graph.facts(scope) == before


async def test_the_read_paths_brief_facts_match_the_full_ones_without_support(
        graph: Neo4jGraph, scope: Scope) -> None:
    """``support=False`` (one auto-commit query, the reply path's) returns the same facts, in the
    same order, with their validity and aliases, only without supporting ids; and only this scope's."""
    p = scope.user_id
    other = Scope(p, "g2")
    await graph.ingest([said(scope, f"{p}-1", 0, ("LIVES_IN", "Paris", ""), ("FRIEND_OF", "Mel", "friend"))])
    await graph.ingest([said(scope, f"{p}-2", 3, ("LIVES_IN", "Berlin", ""), ("FRIEND_OF", "Melanie", "friend")),
                        said(other, f"{p}-3", 1, ("WORKS_AS", "nurse", ""))])
    full, brief = await graph.facts(scope), await graph.facts(scope, support=False)
    assert {f.obj: f.support for f in full} == {"paris": (f"{p}-1",), "melanie": (f"{p}-1", f"{p}-2"),
                                                "berlin": (f"{p}-2",)}
    assert brief == [replace(f, support=()) for f in full]
    assert {(f.predicate, f.obj, f.current, f.aliases) for f in brief} == {
        ("LIVES_IN", "paris", False, ()), ("FRIEND_OF", "melanie", True, ("mel",)), ("LIVES_IN", "berlin", True, ())}
    assert [f.obj for f in await graph.facts(other, support=False)] == ["nurse"]
