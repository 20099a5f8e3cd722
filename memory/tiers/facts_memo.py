"""The graph tier with the read path's typed facts kept in memory between their changes.

Every context reads the user's typed facts for the profile: a second graph query beside the
entity search, worth about 3 ms of p95 at 20 requests a second on two cores (docs/benchmarks.md).
Those facts change only when a statement is ingested or something is forgotten, so
``FactsMemoGraph`` keeps each scope's last answer with a token that every such write replaces in
Redis (``mnemo:facts-token:{user}``, one per user, so a forget of all scopes replaces it too).
A read whose token matches its copy skips the query; any other reads the graph.

Why a copy cannot outlive a forget or a new fact:
- the token is replaced after the graph write has committed, so a read that saw the old token
  and raced the write keeps its copy only until the next read sees the new token;
- a missing token (never set, expired, or deleted) is replaced by a new random one, which no
  copy holds;
- this process drops its own copies of the user at once, whatever Redis says;
- when Redis cannot be read, no copy is used; when the token cannot be replaced (Redis down
  during the write), copies in other processes live at most ``max_age`` seconds.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from memory.models import Exchange, Extraction, ForgetTarget, Hit, Relation, Scope, TypedFact
from memory.protocols import GraphTier

log = logging.getLogger(__name__)
TOKEN_TTL_SECONDS = 7 * 86400  # an idle user's token expires; the next read makes a new one


def _token_key(user_id: str) -> str:
    return f"mnemo:facts-token:{user_id}"


class FactsMemoGraph:
    """A ``GraphTier`` that answers ``facts(scope, support=False)`` from memory while the user's
    token in Redis is unchanged (see the module doc); every other call goes to ``graph``."""

    def __init__(self, graph: GraphTier, redis: aioredis.Redis, *, max_age: float = 60.0,
                 size: int = 10_000) -> None:
        self.inner = graph
        self.name = graph.name
        self._redis = redis
        self.max_age = max_age
        self.size = size
        self._copies: OrderedDict[tuple[str, str], tuple[str, float, list[TypedFact]]] = OrderedDict()
        self.hits = 0  # reads answered from memory (for tests and the curious)

    # ---- the read path ----------------------------------------------------------------------

    async def facts(self, scope: Scope, *, support: bool = True) -> list[TypedFact]:
        if support:  # the profile commands and event windows want the supporting exchanges: not kept
            return await self.inner.facts(scope, support=True)
        try:
            token = await self._token(scope.user_id)
        except (RedisError, OSError) as exc:
            log.debug("facts token unreadable, reading the graph: %s", exc)
            return await self.inner.facts(scope, support=False)
        key = (scope.user_id, scope.key)
        copy = self._copies.get(key)
        if copy is not None and copy[0] == token and time.monotonic() - copy[1] < self.max_age:
            self._copies.move_to_end(key)
            self.hits += 1
            return list(copy[2])
        facts = await self.inner.facts(scope, support=False)
        self._copies[key] = (token, time.monotonic(), list(facts))
        self._copies.move_to_end(key)
        while len(self._copies) > self.size:
            self._copies.popitem(last=False)
        return facts

    async def _token(self, user_id: str) -> str:
        """The user's token, set to a new random one when there is none (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(_token_key(user_id), uuid.uuid4().hex, nx=True, ex=TOKEN_TTL_SECONDS)
            pipe.get(_token_key(user_id))
            _, token = await pipe.execute()
        return token.decode() if isinstance(token, bytes) else str(token)

    # ---- writes: after each, the users' copies are stale everywhere ---------------------------

    async def ingest(self, items: Sequence[tuple[Exchange, Extraction]]) -> int:
        try:
            return await self.inner.ingest(items)
        finally:  # even a failed batch may have committed before the error reached us
            await self.changed(e.user_id for e, x in items if x.statements)

    async def forget(self, target: ForgetTarget) -> int:
        try:
            return await self.inner.forget(target)
        finally:
            await self.changed([target.user_id])

    async def changed(self, user_ids: Iterable[str]) -> None:
        """Make every copy of these users' facts stale: this process's now, other processes' at
        their next read (a new token in Redis)."""
        users = set(user_ids)
        if not users:
            return
        for key in [k for k in self._copies if k[0] in users]:
            del self._copies[key]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in users:
                    pipe.set(_token_key(user_id), uuid.uuid4().hex, ex=TOKEN_TTL_SECONDS)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("facts token of %d user(s) not replaced (copies elsewhere expire within %.0f s): %s",
                        len(users), self.max_age, exc)

    # ---- everything else is the graph's ---------------------------------------------------------

    async def ping(self) -> None:
        await self.inner.ping()

    async def count(self, user_id: str, scope: Scope | None = None) -> int:
        return await self.inner.count(user_id, scope)

    async def related(self, scope: Scope, names: Sequence[str], limit: int) -> list[Hit]:
        return await self.inner.related(scope, names, limit)

    async def profile(self, scope: Scope, limit: int) -> list[Relation]:
        return await self.inner.profile(scope, limit)

    async def topic_exchanges(self, scope: Scope, name: str) -> list[str]:
        return await self.inner.topic_exchanges(scope, name)

    async def existing(self, exchange_ids: Sequence[str]) -> set[str]:
        return await self.inner.existing(exchange_ids)

    def __getattr__(self, name: str) -> Any:  # the concrete graph's extras (aclose, ensure_schema, ...)
        return getattr(self.inner, name)
