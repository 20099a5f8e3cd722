"""A memory manager on the session's real servers, and a factory for managers on servers of a test's own."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from memory import HierarchicalMemoryManager, MemorySettings
from memory.launcher import Addresses
from tests import servers
from tests.bot.fake_llm import FakeLLM
from tests.memory.own_redis import RestartableRedis

ManagerFactory = Callable[..., Awaitable[HierarchicalMemoryManager]]


def settings_for(addresses: Addresses, data_dir: Path, **overrides: Any) -> MemorySettings:
    """Settings that point every tier at existing servers (nothing is launched)."""
    auth = addresses.neo4j_auth or ("neo4j", "")
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "redis": {"url": addresses.redis_url},
        "postgres": {"dsn": addresses.postgres_dsn},
        "chroma": {"url": addresses.chroma_url},
        "neo4j": {"uri": addresses.neo4j_uri, "user": auth[0], "password": auth[1],
                  "database": addresses.neo4j_database},
        # generous read timeouts: these tests check behaviour, not latency, on a shared 2-core machine
        "retrieval": {"cache_timeout_ms": 3000, "archive_timeout_ms": 3000, "summaries_timeout_ms": 3000,
                      "graph_timeout_ms": 3000},
    }
    for section, fields in overrides.items():
        if isinstance(fields, dict):
            values.setdefault(section, {}).update(fields)
        else:
            values[section] = fields
    return MemorySettings(**values)


@pytest_asyncio.fixture(scope="module")
async def memory(bundled: Addresses, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[HierarchicalMemoryManager]:
    """One manager per test module on the bundled servers; tests use their own user ids."""
    own = replace(bundled, postgres_dsn=await servers.create_database(bundled.postgres_dsn))
    manager = await HierarchicalMemoryManager.create(settings_for(own, tmp_path_factory.mktemp("mem")))
    yield manager
    await manager.aclose()


@pytest_asyncio.fixture
async def make_manager() -> AsyncIterator[ManagerFactory]:
    """Build managers on given settings; all are closed at the end of the test."""
    made: list[HierarchicalMemoryManager] = []

    async def factory(settings: MemorySettings) -> HierarchicalMemoryManager:
        manager = await HierarchicalMemoryManager.create(settings)
        made.append(manager)
        return manager

    yield factory
    for manager in made:
        await manager.aclose()


@pytest.fixture
def uid() -> Callable[[str], str]:
    """Fresh user ids, so tests sharing servers never see each other's data."""
    run = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{run}"



@pytest_asyncio.fixture
async def own_postgres_dsn(bundled: Addresses) -> str:
    """A database of this test's own on the bundled server (see ``servers.create_database``)."""
    return await servers.create_database(bundled.postgres_dsn)


@pytest.fixture
def own_redis_url() -> Iterator[str]:
    """A redis-server of this test's own (the extraction counters are global to a Redis)."""
    yield from servers.system_redis()


@pytest_asyncio.fixture(scope="module")
async def llm_server() -> AsyncIterator[FakeLLM]:
    """A fake OpenAI-compatible server on a real socket, one per test module (tests reset it)."""
    fake = await FakeLLM().start()
    yield fake
    await fake.aclose()


@pytest.fixture
def restartable_redis() -> Iterator[RestartableRedis]:
    """A started redis-server of this test's own that it may stop and start again (keeping its data)."""
    if not servers.have_system_redis():
        pytest.skip("redis-server is not installed (.ci/run installs Debian's redis-server)")
    server = RestartableRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir for a manager that starts its own bundled servers. Not under pytest's tmp dir: the
    PostgreSQL OS user (as root) must be able to traverse it."""
    path = Path(tempfile.mkdtemp(prefix="mnemo-own-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
