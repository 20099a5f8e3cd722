"""The chat path when a tier is down: Redis (rate limits fail open) and the archive (not remembered).

Each test runs its own redis-server and PostgreSQL (Debian's, as ``make test``
installs them) so it can stop them; Chroma is on disk and the graph is the
session's Bolt server.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import SecretStr

from bot.chat import NOT_STORED_NOTE, ChatHandler, IncomingMessage
from bot.llm import ChatLLM
from bot.reports import Card, show_card
from memory.launcher import Addresses
from memory.manager import HierarchicalMemoryManager
from memory.settings import MemorySettings, Neo4jSettings, PostgresSettings, RedisSettings, RetrievalSettings
from tests import servers
from tests.bot.conftest import bot_settings, memory_settings_for
from tests.bot.fake_llm import FakeLLM


@dataclass
class Stack:
    memory: HierarchicalMemoryManager
    stop_redis: Callable[[], None]
    stop_postgres: Callable[[], None]


@pytest_asyncio.fixture
async def stack(bundled: Addresses, tmp_path: Path) -> AsyncIterator[Stack]:
    if not (servers.have_system_redis() and servers.have_system_postgres()):
        pytest.skip("needs Debian's redis-server and PostgreSQL 15 of the test's own to stop")
    redis_url, stop_redis = servers.start_system_redis()
    dsn, stop_postgres = servers.start_system_postgres()
    stopped: set[str] = set()

    def once(name: str, stop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if name not in stopped:
                stopped.add(name)
                stop()
        return run

    auth = bundled.neo4j_auth or ("neo4j", "")
    settings = MemorySettings(
        data_dir=tmp_path, redis=RedisSettings(url=redis_url), postgres=PostgresSettings(dsn=SecretStr(dsn)),
        neo4j=Neo4jSettings(uri=bundled.neo4j_uri, user=auth[0], password=SecretStr(auth[1]),
                            database=bundled.neo4j_database),
        retrieval=RetrievalSettings(cache_timeout_ms=5000, archive_timeout_ms=5000, summaries_timeout_ms=5000,
                                    graph_timeout_ms=5000))
    memory = await HierarchicalMemoryManager.create(settings)
    try:
        yield Stack(memory, once("redis", stop_redis), once("postgres", stop_postgres))
    finally:
        await memory.aclose()
        once("redis", stop_redis)()
        once("postgres", stop_postgres)()


def _msg(text: str, user: str = "u-outage") -> IncomingMessage:
    return IncomingMessage(user_id=user, text=text, guild_id="g1", channel_id="c1", user_name="Ada")


async def test_redis_down_the_bot_still_answers_and_remembers(stack: Stack, chat_llm: ChatLLM,
                                                              fake_llm: FakeLLM, tmp_path: Path) -> None:
    """Rate limiting fails open: with Redis gone nobody is refused, and the exchange is archived."""
    handler = ChatHandler(stack.memory, chat_llm, bot_settings(fake_llm, tmp_path, rate_limit_per_user=1))
    first = await handler.handle(_msg("my kayak is called Otter"))
    assert first is not None and (first.kind, first.text) == ("answer", "ECHO: my kayak is called Otter")
    stack.stop_redis()

    replies = [await handler.handle(_msg(f"question {i} while Redis is down")) for i in range(3)]

    # over the limit of 1 per window, yet answered: the limiter could not count, so it let them through
    assert [(r.kind, r.text) for r in replies if r] == [
        ("answer", f"ECHO: question {i} while Redis is down") for i in range(3)]
    assert all(r is not None and "cache" in r.degraded and r.exchange_id for r in replies)
    assert (await stack.memory.counts("u-outage", guild_id="g1"))["archive"] == 4


async def test_archive_down_the_reply_says_it_will_not_be_remembered(
        stack: Stack, chat_llm: ChatLLM, fake_llm: FakeLLM, tmp_path: Path) -> None:
    handler = ChatHandler(stack.memory, chat_llm, bot_settings(fake_llm, tmp_path))
    stored = await handler.handle(_msg("I grow chillies on my balcony"))
    assert stored is not None and stored.exchange_id is not None and NOT_STORED_NOTE not in stored.text
    stack.stop_postgres()

    reply = await handler.handle(_msg("what do I grow?"))

    assert reply is not None and reply.kind == "answer"
    assert reply.text == "ECHO: what do I grow?" + NOT_STORED_NOTE
    assert "won't remember this exchange" in reply.text
    assert reply.exchange_id is None and "archive" in reply.degraded
    # a user whose time zone this process never read: it cannot be read now, so their dates are UTC
    other = await handler.handle(_msg("what time is it for me?", user="u-outage-zone"))
    assert other is not None and other.kind == "answer" and "archive" in other.degraded
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert "(UTC)." in system and "where the user is" not in system


async def test_graph_down_memory_show_says_so_instead_of_an_empty_profile(
        bundled: Addresses, tmp_path: Path, own_bolt: servers.OwnBolt) -> None:
    """A profile that cannot be read is not an empty one: /memory show names the outage."""
    auth = own_bolt.addresses["neo4j_auth"]
    settings = memory_settings_for(bundled, tmp_path).model_copy(update={"neo4j": Neo4jSettings(
        uri=own_bolt.addresses["neo4j_uri"], user=auth[0], password=SecretStr(auth[1]), database="memory")})
    memory = await HierarchicalMemoryManager.create(settings)
    try:
        user = f"show-{uuid.uuid4().hex[:8]}"
        await memory.store_conversation(user, "Hi, I'm Priya and I live in Leeds.", "Hello Priya!")
        await memory.flush()
        up = {s.name: s.value for s in (await show_card(memory, user, None)).sections}
        assert "Lives in Leeds" in up["Profile (/memory profile to correct it)"]

        await own_bolt.stop()
        card = await show_card(memory, user, None)
        down = {s.name: s.value for s in card.sections}
        assert down["Profile (/memory profile to correct it)"] == "(graph unavailable right now)"
        assert down["Top entities and topics"] == "(graph unavailable right now)"
        assert "graph" in card.footer and "Hi, I'm Priya" in down["Recent exchanges"]
    finally:
        await memory.aclose()


async def test_memory_show_says_what_is_still_being_taken_in(bundled: Addresses, tmp_path: Path) -> None:
    """Found in the console: right after chatting, /memory show said "Profile: nothing yet" with no word
    that the worker had not reached the new exchanges yet."""
    dsn = await servers.create_database(bundled.postgres_dsn)
    settings = memory_settings_for(bundled, tmp_path / "data", dsn)
    settings.worker.in_process = False  # nothing is taken in until the test runs the worker
    async with HierarchicalMemoryManager.from_env(settings) as memory:
        user, other = f"q-{uuid.uuid4().hex[:8]}", f"q-{uuid.uuid4().hex[:8]}"
        for text in ("Hi, I'm Priya.", "I live in Leeds."):
            await memory.store_conversation(user, text, "Noted.")
        await memory.store_conversation(user, "In the server now.", "Hi!", guild_id="77001")
        await memory.store_conversation(other, "Someone else.", "Hi!")

        def stored(card: Card) -> str:
            return {s.name: s.value for s in card.sections}["Stored per tier (-1: tier down)"]

        dms = stored(await show_card(memory, user, None))
        assert "2 recent exchanges still being taken in" in dms  # this scope's only, not the guild's
        assert "1 recent exchange still being taken in" in stored(await show_card(memory, user, "77001"))
        while await memory.queued(user) + await memory.queued(other):
            await memory.worker.run_once()
        assert "still being taken in" not in stored(await show_card(memory, user, None))
        assert "Lives in Leeds" in {s.name: s.value for s in (await show_card(memory, user, None)).sections}[
            "Profile (/memory profile to correct it)"]
