"""Opening the tiers: the memory library's composition root.

``open_tiers`` starts bundled servers for unconfigured tiers, connects every
client inside one ``AsyncExitStack`` and returns them together; closing the
stack closes them all in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime

import openai

from memory.embedding import create_embedder
from memory.errors import TierUnavailable
from memory.extraction import DeterministicExtractor
from memory.launcher import Addresses, EmbeddedServers
from memory.llm_extraction import LLMExtractor
from memory.llm_sessions import LLMSessionWriter
from memory.models import ActiveConversation
from memory.protocols import CacheTier, Embedder, Extractor, GraphTier, SummaryTier
from memory.sessions import SessionWriter
from memory.settings import MemorySettings
from memory.tiers.archive import PostgresArchive, create_pool
from memory.tiers.budget import RedisExtractionCounters, RedisTokenBudget
from memory.tiers.cache import RedisCache, RedisRateLimiter, RedisState, create_redis
from memory.tiers.graph import create_graph
from memory.tiers.ledger import PostgresLedger
from memory.tiers.outbox import PostgresForgetQueue, PostgresOutbox
from memory.tiers.policy import PostgresPolicies
from memory.tiers.sessions import PostgresSessions
from memory.tiers.summaries import create_summaries

log = logging.getLogger(__name__)


@dataclass
class Tiers:
    cache: CacheTier
    limiter: RedisRateLimiter
    state: RedisState
    archive: PostgresArchive
    outbox: PostgresOutbox
    forgets: PostgresForgetQueue
    ledger: PostgresLedger
    policies: PostgresPolicies
    sessions: PostgresSessions
    summaries: SummaryTier
    graph: GraphTier
    embedder: Embedder
    extractor: Extractor
    addresses: Addresses
    stack: AsyncExitStack
    servers: EmbeddedServers | None = None  # the bundled servers' launcher: restart counts
    session_writer: SessionWriter | None = None  # the LLM's session summaries, when extraction uses one
    extraction_counters: RedisExtractionCounters | None = None  # what every process's extractor counted


@dataclass(frozen=True)
class TierHealth:
    ok: bool
    ms: float
    detail: str = ""


@dataclass(frozen=True)
class MemoryStats:
    tiers: dict[str, TierHealth]
    exchanges: int
    users: int
    pending: int
    processed_here: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    bundled: tuple[str, ...] = field(default_factory=tuple)
    pending_forgets: int = 0
    dead_letters: int = 0  # exchanges the worker gave up on (`python -m memory dead-letters`)
    extraction: dict[str, object] = field(default_factory=dict)  # this process's extractor
    extraction_total: dict[str, object] = field(default_factory=dict)  # every process's, from Redis
    # activity and retention (memory.lifecycle)
    active: tuple[ActiveConversation, ...] = ()
    active_minutes: float = 0.0
    retention_removed: int = 0
    retention_last_run: datetime | None = None
    restarts: dict[str, int] = field(default_factory=dict)  # bundled server -> restarts by the supervisor


async def open_tiers(settings: MemorySettings) -> Tiers:
    """Connect every tier (starting bundled servers where no URL is set).

    Raises TierUnavailable naming the first tier that cannot be reached (or
    ConfigurationError), after closing whatever was opened and stopping the
    bundled servers already started.
    """
    stack = AsyncExitStack()
    try:
        launcher = EmbeddedServers(settings)
        addresses = await launcher.start()
        stack.push_async_callback(launcher.aclose)
        redis = await create_redis(addresses.redis_url)
        stack.push_async_callback(redis.aclose)
        pg = settings.postgres
        pool = await create_pool(addresses.postgres_dsn, min_size=pg.pool_min, max_size=pg.pool_max)
        stack.push_async_callback(pool.close)
        summaries = await create_summaries(addresses.chroma_url, addresses.chroma_path,
                                           settings.chroma.collection,
                                           memory_limit_bytes=settings.chroma.memory_limit_mb * 1024 * 1024,
                                           token=(settings.chroma.token.get_secret_value()
                                                  if settings.chroma.token else None))
        stack.push_async_callback(summaries.aclose)
        graph = await create_graph(addresses.neo4j_uri, addresses.neo4j_auth, addresses.neo4j_database)
        stack.push_async_callback(graph.aclose)
        counters = RedisExtractionCounters(redis)
        extractor = create_extractor(settings, stack, RedisTokenBudget(redis), counters)
        r = settings.redis
        return Tiers(
            cache=RedisCache(redis, size=r.cache_size, active_ttl=r.active_ttl_seconds,
                             idle_ttl=r.idle_ttl_seconds),
            limiter=RedisRateLimiter(redis), state=RedisState(redis),
            archive=PostgresArchive(pool), outbox=PostgresOutbox(pool), forgets=PostgresForgetQueue(pool),
            ledger=PostgresLedger(pool), policies=PostgresPolicies(pool), sessions=PostgresSessions(pool),
            summaries=summaries, graph=graph, embedder=create_embedder(settings.embedding),
            extractor=extractor, addresses=addresses, stack=stack, servers=launcher,
            session_writer=LLMSessionWriter(extractor) if isinstance(extractor, LLMExtractor) else None,
            extraction_counters=counters)
    except BaseException:
        await stack.aclose()
        raise


def create_extractor(settings: MemorySettings, stack: AsyncExitStack, budget: RedisTokenBudget | None = None,
                     counters: RedisExtractionCounters | None = None) -> Extractor:
    """The LLM extractor when ``LLM__EXTRACTION`` is on and an endpoint is set, else the deterministic one.

    The LLM client is closed with ``stack``; no request is made here.
    """
    deterministic = DeterministicExtractor(settings.worker.chunk_tokens)
    llm = settings.llm
    if not llm.extraction:
        return deterministic
    if llm.base_url is None:
        log.warning("LLM__EXTRACTION is on but LLM__BASE_URL is unset: using the deterministic extractor")
        return deterministic
    client = openai.AsyncOpenAI(base_url=llm.base_url, api_key=llm.api_key.get_secret_value(),
                                timeout=llm.timeout_seconds, max_retries=0)  # a failed call falls back at once
    stack.push_async_callback(client.close)
    return LLMExtractor(client, llm, deterministic, budget, counters)


async def tier_health(tiers: Tiers, timeout: float = 2.0) -> dict[str, TierHealth]:
    """Ping every tier in parallel; a tier that fails or is slow is reported, not raised."""
    async def one(name: str, ping: object) -> tuple[str, TierHealth]:
        start = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await ping()  # type: ignore[operator]
        except TierUnavailable as exc:
            return name, TierHealth(False, (time.perf_counter() - start) * 1000, str(exc))
        except TimeoutError:
            return name, TierHealth(False, timeout * 1000, f"no answer within {timeout:.0f}s")
        return name, TierHealth(True, (time.perf_counter() - start) * 1000)

    pairs = await asyncio.gather(one("cache", tiers.cache.ping), one("archive", tiers.archive.ping),
                                 one("summaries", tiers.summaries.ping), one("graph", tiers.graph.ping))
    return dict(pairs)
