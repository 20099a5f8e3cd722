"""Tier 1: Redis. Recent exchanges per user and scope, rate limits, small shared state.

Keys (user ids never contain ':'):
    mnemo:recent:{user}:{scope}        list of exchange JSON, newest first, capped
    mnemo:rate:{user|*}:{window}       fixed-window counters
    mnemo:rate-notice:{user|*}:{window} set once per window when a limit is hit
    mnemo:rolling:{user}:{scope}:{channel}  rolling conversation summary
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from memory.errors import RateLimited, TierUnavailable
from memory.models import Exchange, ForgetTarget, Scope

_INCR_WINDOW = """
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {c, redis.call('TTL', KEYS[1])}
"""


def _recent_key(user_id: str, scope_key: str) -> str:
    return f"mnemo:recent:{user_id}:{scope_key}"


class _RedisEdge:
    name = "cache"

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    def _unavailable(self, exc: BaseException) -> TierUnavailable:
        return TierUnavailable(self.name, f"{type(exc).__name__}: {exc}")


class RedisCache(_RedisEdge):
    """Recent exchanges per user and scope: a capped list with an activity-based TTL.

    A new exchange refreshes the TTL to ``active_ttl``; a list rebuilt from the
    archive on a read (the user was inactive long enough for it to expire) lives
    ``idle_ttl``. A push to a missing list is skipped, so a list is never a
    partial copy: the next read warms it whole from the archive.
    """

    def __init__(self, client: aioredis.Redis, *, size: int = 20, active_ttl: int = 86400,
                 idle_ttl: int = 3600) -> None:
        super().__init__(client)
        self.size = size
        self.active_ttl = active_ttl
        self.idle_ttl = idle_ttl

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def push(self, exchange: Exchange) -> None:
        key = _recent_key(exchange.user_id, exchange.scope.key)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.lpushx(key, json.dumps(exchange.to_json()))
                pipe.ltrim(key, 0, self.size - 1)
                pipe.expire(key, self.active_ttl)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def recent(self, scope: Scope, limit: int) -> list[Exchange] | None:
        if limit <= 0:
            return []
        try:
            raw = await self.client.lrange(_recent_key(scope.user_id, scope.key), 0, max(0, limit - 1))
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        if not raw:
            return None
        return [Exchange.from_json(json.loads(item)) for item in raw]

    async def warm(self, scope: Scope, exchanges: Sequence[Exchange]) -> None:
        if not exchanges:
            return
        key = _recent_key(scope.user_id, scope.key)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.rpush(key, *[json.dumps(e.to_json()) for e in exchanges[: self.size]])
                pipe.expire(key, self.idle_ttl)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def invalidate(self, scope: Scope) -> None:
        try:
            await self.client.delete(_recent_key(scope.user_id, scope.key))
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def _user_keys(self, pattern: str) -> AsyncIterator[str]:
        async for key in self.client.scan_iter(match=pattern, count=500):
            yield key.decode() if isinstance(key, bytes) else key

    async def _keys(self, user_id: str, scope: Scope | None) -> list[str]:
        if scope is not None:
            return [_recent_key(user_id, scope.key)]
        return [k async for k in self._user_keys(f"mnemo:recent:{user_id}:*")]

    async def forget(self, target: ForgetTarget) -> int:
        """Remove cached exchanges and the rolling summaries of the scope(s), which may quote
        them; returns exchanges removed."""
        try:
            keys = await self._keys(target.user_id, target.scope)
            removed = 0
            if target.exchange_ids is None:
                for key in keys:
                    removed += int(await self.client.llen(key))
                rolling = f"mnemo:rolling:{target.user_id}:{target.scope.key if target.scope else '*'}:*"
                keys += [k async for k in self._user_keys(rolling)]
                if keys:
                    await self.client.delete(*keys)
                return removed
            wanted = set(target.exchange_ids)
            for key in keys:
                for item in await self.client.lrange(key, 0, -1):
                    if json.loads(item)["id"] in wanted:
                        removed += int(await self.client.lrem(key, 0, item))  # type: ignore[arg-type]
            # a rolling summary may quote a forgotten exchange: drop the scope's (they are rebuilt)
            scope_key = target.scope.key if target.scope is not None else "*"
            stale = [k async for k in self._user_keys(f"mnemo:rolling:{target.user_id}:{scope_key}:*")]
            if stale:
                await self.client.delete(*stale)
            return removed
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def count(self, user_id: str, scope: Scope | None = None) -> int:
        try:
            total = 0
            for key in await self._keys(user_id, scope):
                total += int(await self.client.llen(key))
            return total
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def clear(self) -> int:
        """Drop every recent list (used by ``rebuild``); returns lists removed."""
        try:
            keys = [k async for k in self._user_keys("mnemo:recent:*")]
            if keys:
                await self.client.delete(*keys)
            return len(keys)
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc


class RedisRateLimiter(_RedisEdge):
    """Fixed-window counters, atomic across processes (one Lua script per key)."""

    def __init__(self, client: aioredis.Redis, clock: Callable[[], float] = time.time) -> None:
        super().__init__(client)
        self._script = client.register_script(_INCR_WINDOW)
        self.clock = clock  # wall-clock seconds; every process must agree on the window number

    async def check(self, user_id: str, *, per_user: int, global_limit: int, window_seconds: int) -> None:
        """Count one request; raise RateLimited when the user's or the global limit is exceeded.

        ``RateLimited.notify`` is True for the first refusal of a window only, so
        the caller sends its polite notice once. ``RateLimited.retry_after`` is
        the time left in the current window, rounded up to whole seconds.
        """
        now = self.clock()
        window = int(now // window_seconds)
        ends_in = max(1, math.ceil((window + 1) * window_seconds - now))  # the counter dies with its window
        try:
            for who, limit, scope in ((user_id, per_user, "user"), ("*", global_limit, "global")):
                count, _ttl = await self._script(keys=[f"mnemo:rate:{who}:{window}"], args=[ends_in])
                if int(count) > limit:
                    first = await self.client.set(f"mnemo:rate-notice:{who}:{window}", 1, nx=True,
                                                  ex=ends_in)
                    error = RateLimited(ends_in, scope=scope)
                    error.notify = bool(first)
                    raise error
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc


class RedisState(_RedisEdge):
    """Small shared values with a TTL (rolling summaries): no process keeps its own copy."""

    def __init__(self, client: aioredis.Redis, ttl: int = 7 * 86400) -> None:
        super().__init__(client)
        self.ttl = ttl

    @staticmethod
    def rolling_key(scope: Scope, channel_id: str | None) -> str:
        return f"mnemo:rolling:{scope.user_id}:{scope.key}:{channel_id or '-'}"

    async def get(self, key: str) -> str | None:
        try:
            value: Any = await self.client.get(key)
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str) -> None:
        try:
            await self.client.set(key, value, ex=self.ttl)
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def rolling_summaries(self, user_id: str) -> dict[str, str]:
        """Every rolling summary of the user, as {"<scope key> <channel>": stored text} (for export)."""
        prefix = f"mnemo:rolling:{user_id}:"
        try:
            keys = [k.decode() if isinstance(k, bytes) else k
                    async for k in self.client.scan_iter(match=prefix + "*", count=500)]
            values = await self.client.mget(keys) if keys else []
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        out = {}
        for key, value in zip(keys, values, strict=True):
            if value is not None:
                scope, _, channel = key.removeprefix(prefix).rpartition(":")
                out[f"{scope} {channel}"] = value.decode() if isinstance(value, bytes) else value
        return out

    async def delete(self, *keys: str) -> int:
        """Remove the keys; returns how many existed."""
        if not keys:
            return 0
        try:
            return int(await self.client.delete(*keys))
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc


async def create_redis(url: str) -> aioredis.Redis:
    """A pooled client for ``url`` (redis://, rediss:// or unix://); raises TierUnavailable if unreachable."""
    client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5,
                                     health_check_interval=30)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise TierUnavailable("cache", f"{type(exc).__name__}: {exc}") from exc
    return client
