"""Daily token budgets in Redis, shared by every worker process: what LLM extraction spent per guild;
and the extraction counters every process adds to (``RedisExtractionCounters``).

Keys are ``mnemo:xbudget:<UTC day>:<owner>`` (owner ``g:<guild id>``, or ``dm:<user id>``
for direct messages) and expire after two days.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from redis.exceptions import RedisError

from memory.tiers.cache import _RedisEdge

_TTL = 2 * 86400


def _key(owner: str) -> str:
    return f"mnemo:xbudget:{datetime.now(UTC):%Y-%m-%d}:{owner}"


class RedisTokenBudget(_RedisEdge):
    async def spent(self, owners: Sequence[str]) -> dict[str, int]:
        """Tokens spent today by each owner (0 when nothing was recorded); raises TierUnavailable."""
        if not owners:
            return {}
        try:
            values = await self.client.mget([_key(o) for o in owners])
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        return {o: int(v or 0) for o, v in zip(owners, values, strict=True)}

    async def add(self, owner: str, tokens: int) -> None:
        """Count ``tokens`` against the owner's budget of today; raises TierUnavailable."""
        if tokens <= 0:
            return
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incrby(_key(owner), tokens)
                pipe.expire(_key(owner), _TTL)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc


_COUNTERS = "mnemo:xstats"


class RedisExtractionCounters(_RedisEdge):
    """What LLM extraction and session summaries did, summed over every process (``memory stats``).

    One hash, ``mnemo:xstats``: an integer field per counter of ``ExtractionStats`` and the
    structured-output mode last in use. Counts of calls and tokens only, nothing a user said.
    """

    async def add(self, counts: Mapping[str, int], mode: str) -> None:
        """Add ``counts`` to the totals and record ``mode``; raises TierUnavailable."""
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for name, n in counts.items():
                    if n:
                        pipe.hincrby(_COUNTERS, name, n)
                pipe.hset(_COUNTERS, "mode", mode)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc

    async def totals(self) -> dict[str, int | str]:
        """The totals ({} when nothing was counted yet); raises TierUnavailable."""
        try:
            raw = await self.client.hgetall(_COUNTERS)
        except (RedisError, OSError) as exc:
            raise self._unavailable(exc) from exc
        out: dict[str, int | str] = {}
        for key, value in raw.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            text = value.decode() if isinstance(value, bytes) else str(value)
            out[name] = text if name == "mode" else int(text)
        return out
