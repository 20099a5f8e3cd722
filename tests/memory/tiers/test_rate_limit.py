"""Contract tests of the fixed-window rate limiter on real Redis (system and bundled).

The limiter takes a clock: every test freezes it at a known point of a window,
so no run can straddle a window edge, and ``retry_after`` is pinned exactly to
the time left in the window.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from memory.errors import RateLimited
from memory.tiers.cache import RedisRateLimiter, create_redis

HOUR = 3600
WINDOW_START = 1_800_000_000.0  # a multiple of 3600 and of 60: the first instant of a window
assert WINDOW_START % HOUR == 0


class Clock:
    """A frozen wall clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = await create_redis(redis_url)
    await c.flushdb()
    yield c
    await c.aclose()


async def _refusal(limiter: RedisRateLimiter, user: str, **limits: int) -> RateLimited:
    with pytest.raises(RateLimited) as refused:
        await limiter.check(user, **limits)
    return refused.value


async def test_user_limit_allows_n_then_refuses_until_the_window_ends(client: aioredis.Redis) -> None:
    clock = Clock(WINDOW_START + 1000.25)  # 2599.75 s left in this hour
    limiter = RedisRateLimiter(client, clock)
    limits = {"per_user": 3, "global_limit": 1000, "window_seconds": HOUR}
    for _ in range(3):
        await limiter.check("alice", **limits)
    first = await _refusal(limiter, "alice", **limits)
    assert (first.scope, first.retry_after, first.notify) == ("user", 2600.0, True)
    clock.now = WINDOW_START + 3599.5  # half a second before the window ends
    second = await _refusal(limiter, "alice", **limits)
    assert (second.scope, second.retry_after, second.notify) == ("user", 1.0, False)
    await limiter.check("bob", **limits)  # another user has their own counter

    clock.now = WINDOW_START + HOUR  # the next window: a fresh counter and a fresh notice
    for _ in range(3):
        await limiter.check("alice", **limits)
    third = await _refusal(limiter, "alice", **limits)
    assert (third.retry_after, third.notify) == (3600.0, True)


async def test_the_counter_expires_with_its_window(client: aioredis.Redis) -> None:
    """Redis holds the counter for the time left in the window (2600 s here), so nothing outlives it."""
    limiter = RedisRateLimiter(client, Clock(WINDOW_START + 1000.25))
    await limiter.check("alice", per_user=5, global_limit=1000, window_seconds=HOUR)
    window = int(WINDOW_START // HOUR)
    assert await client.get(f"mnemo:rate:alice:{window}") == b"1"
    assert await client.get(f"mnemo:rate:*:{window}") == b"1"
    # Redis's own clock runs on while the test does: allow it a few seconds, never more than 2600
    assert 2590 <= await client.ttl(f"mnemo:rate:alice:{window}") <= 2600


async def test_global_limit_spans_users(client: aioredis.Redis) -> None:
    limiter = RedisRateLimiter(client, Clock(WINDOW_START + 30.0))
    limits = {"per_user": 10, "global_limit": 4, "window_seconds": 60}
    for n in range(4):
        await limiter.check(f"user{n}", **limits)
    refused = await _refusal(limiter, "user9", **limits)
    assert (refused.scope, refused.retry_after, refused.notify) == ("global", 30.0, True)
    again = await _refusal(limiter, "user8", **limits)
    assert (again.scope, again.notify) == ("global", False)


async def _storm(redis_url: str, clock: Clock, users: list[str], per_user: int,
                 global_limit: int) -> list[RateLimited | None]:
    """Every request at once through four clients (four "processes"); None for a request let through."""
    clients = [await create_redis(redis_url) for _ in range(4)]
    limiters = [RedisRateLimiter(c, clock) for c in clients]

    async def one(i: int, user: str) -> RateLimited | None:
        try:
            await limiters[i % len(limiters)].check(user, per_user=per_user, global_limit=global_limit,
                                                    window_seconds=HOUR)
        except RateLimited as exc:
            return exc
        return None

    try:
        return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(users))))
    finally:
        for c in clients:
            await c.aclose()


async def test_per_user_limit_is_atomic_and_notifies_once(client: aioredis.Redis, redis_url: str) -> None:
    results = await _storm(redis_url, Clock(WINDOW_START + 10.0), ["alice"] * 200, per_user=50,
                           global_limit=10_000)
    refusals = [r for r in results if r is not None]
    assert len(refusals) == 150
    assert {r.scope for r in refusals} == {"user"}
    assert sum(r.notify for r in refusals) == 1  # exactly one polite notice among 150 refusals
    assert {r.retry_after for r in refusals} == {3590.0}


async def test_global_limit_is_atomic_and_notifies_once(client: aioredis.Redis, redis_url: str) -> None:
    users = [f"user{n}" for n in range(200)]
    results = await _storm(redis_url, Clock(WINDOW_START + 10.0), users, per_user=5, global_limit=50)
    refusals = [r for r in results if r is not None]
    assert len(refusals) == 150 and {r.scope for r in refusals} == {"global"}
    assert sum(r.notify for r in refusals) == 1


async def test_both_limits_contending_at_once(client: aioredis.Redis, redis_url: str) -> None:
    """10 users send 8 requests each, all at once; 5 per user and 40 overall are allowed.

    Each user's first 5 requests pass the user limit (50 in all) and meet the
    global one, which lets exactly 40 through; the other 3 per user are refused
    by the user limit before they count globally. Every user refused by their
    own limit is told once; the global refusals carry one notice between them.
    """
    users = [f"user{n}" for n in range(10) for _ in range(8)]
    results = await _storm(redis_url, Clock(WINDOW_START + 10.0), users, per_user=5, global_limit=40)
    passed = [u for u, r in zip(users, results, strict=True) if r is None]
    by_user = [r for r in results if r is not None and r.scope == "user"]
    by_global = [r for r in results if r is not None and r.scope == "global"]
    assert (len(passed), len(by_user), len(by_global)) == (40, 30, 10)
    assert max(passed.count(u) for u in set(users)) <= 5
    assert sum(r.notify for r in by_user) == 10  # one per user
    assert sum(r.notify for r in by_global) == 1
    window = int(WINDOW_START // HOUR)
    assert await client.get(f"mnemo:rate:*:{window}") == b"50"
    assert [await client.get(f"mnemo:rate:user{n}:{window}") for n in range(10)] == [b"8"] * 10
