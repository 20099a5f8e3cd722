"""The read path's copy of a user's typed facts (memory/tiers/facts_memo.py), on the real servers:
it saves the graph query while nothing changed, and never outlives a change, in this process or
another (two managers on the same servers stand for two processes)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from memory import HierarchicalMemoryManager
from memory.bundled import free_port
from memory.launcher import Addresses
from memory.models import Scope
from memory.tiers.facts_memo import FactsMemoGraph
from memory.tiers.graph import create_graph
from tests import servers
from tests.memory.conftest import ManagerFactory, settings_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def memo(manager: HierarchicalMemoryManager) -> FactsMemoGraph:
    assert isinstance(manager.graph, FactsMemoGraph)
    return manager.graph


async def profile_text(manager: HierarchicalMemoryManager, user: str, query: str) -> str:
    ctx = await manager.get_conversation_context(user, query, max_tokens=1000)
    return ctx.to_context_string().split("\n\n")[0]  # the profile heads the context


async def test_a_copy_never_outlives_a_new_fact_or_a_forget_in_another_process(
        bundled: Addresses, tmp_path: Path, make_manager: ManagerFactory, uid: Callable[[str], str]) -> None:
    own = replace(bundled, postgres_dsn=await servers.create_database(bundled.postgres_dsn))
    reader = await make_manager(settings_for(own, tmp_path / "reader"))
    writer = await make_manager(settings_for(own, tmp_path / "writer"))
    user = uid("mo")
    await writer.store_conversation(user, "I live in Lisbon and I have a cat named Miso", "Nice!", timestamp=T0)
    await writer.flush()
    await reader.flush()
    assert "Lives in Lisbon" in await profile_text(reader, user, "hi")
    saved = memo(reader).hits
    assert "Lives in Lisbon" in await profile_text(reader, user, "what's new?")
    assert memo(reader).hits == saved + 1  # nothing changed: no graph query for the facts

    # another process learns a new fact: the next read here sees it
    await writer.store_conversation(user, "I moved to Porto last week", "Exciting!", timestamp=T0 + timedelta(days=9))
    await writer.flush()
    await reader.flush()
    text = await profile_text(reader, user, "how are you?")
    assert "Lives in Porto" in text and "cat Miso" in text

    # another process forgets the message with the cat: gone here at the next read
    [cat] = [e for e in (await writer.export(user))["exchanges"] if "Miso" in e["user_message"]]
    await writer.forget(user, exchange_id=cat["id"])
    text = await profile_text(reader, user, "how are you?")
    assert "Miso" not in text and "Lives in Porto" in text

    # ... and everything: no profile is left
    await writer.forget(user)
    ctx = await reader.get_conversation_context(user, "how are you?", max_tokens=1000)
    assert not ctx.profile.lines and "Porto" not in ctx.to_context_string()


async def test_this_process_drops_its_copy_at_once_and_scopes_stay_apart(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("ida")
    await memory.store_conversation(user, "I work as a nurse", "Hi!", guild_id="g1", timestamp=T0)
    await memory.store_conversation(user, "I work as a pilot", "Hi!", timestamp=T0)
    await memory.flush()
    assert "Works as nurse" in await profile_text_in(memory, user, "g1")
    assert "Works as pilot" in await profile_text_in(memory, user, None)  # the DMs' copy is their own
    await memory.forget(user, guild_id="g1")
    assert "nurse" not in await profile_text_in(memory, user, "g1")
    assert "Works as pilot" in await profile_text_in(memory, user, None)


async def profile_text_in(manager: HierarchicalMemoryManager, user: str, guild: str | None) -> str:
    ctx = await manager.get_conversation_context(user, "hello", guild_id=guild, max_tokens=1000)
    return ctx.to_context_string()


async def test_without_redis_the_facts_come_from_the_graph_and_a_write_still_succeeds(
        bolt: tuple[str, tuple[str, str] | None, str | None], caplog: pytest.LogCaptureFixture) -> None:
    # a Redis client aimed at a port where nothing listens: the token can be neither read nor replaced
    uri, auth, database = bolt
    graph = await create_graph(uri, auth, database)
    nowhere = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    try:
        wrapped = FactsMemoGraph(graph, nowhere)
        scope = Scope.of("nobody-" + uuid.uuid4().hex[:12])
        assert await wrapped.facts(scope, support=False) == []
        assert await wrapped.facts(scope, support=False) == []
        assert wrapped.hits == 0  # no token, no copy used
        with caplog.at_level("WARNING"):
            await wrapped.changed([scope.user_id])
        assert "not replaced" in caplog.text
    finally:
        await nowhere.aclose()
        await graph.aclose()
