"""Daily token budgets in Redis, shared by every worker process: what LLM extraction spent per guild.

Keys are ``mnemo:xbudget:<UTC day>:<owner>`` (owner ``g:<guild id>``, or ``dm:<user id>``
for direct messages) and expire after two days.
"""

from __future__ import annotations

from collections.abc import Sequence
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
