"""What the bot asks of memory besides context: rate limits, curated facts, token usage,
rolling summaries and stats. ``BotServices`` is one of ``HierarchicalMemoryManager``'s bases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memory.errors import InvalidInput, RateLimited, TierUnavailable
from memory.llm_extraction import ExtractionStats
from memory.models import (
    Scope,
    clean_id,
    clean_text,
)
from memory.parts import ManagerParts
from memory.stack import MemoryStats, tier_health
from memory.tiers.ledger import FACT_CATEGORIES, Fact, UsageRow


class BotServices(ManagerParts):
    """Rate limits, facts, usage, rolling summaries and stats (see the module doc)."""

    if TYPE_CHECKING:
        async def _activity_stats(self) -> dict[str, Any]: ...

    # ---- bot services: rate limits, facts, usage, rolling summaries, stats --------------------

    async def check_rate_limit(self, user_id: str, *, per_user: int = 30, global_limit: int = 10_000,
                               window_seconds: int = 60) -> None:
        """Count one request; raise RateLimited (with ``.notify``) when over a limit.

        Raises TierUnavailable if Redis is down: the caller decides whether to fail open.
        """
        try:
            await self.t.limiter.check(clean_id(user_id, "user_id"), per_user=per_user,
                                       global_limit=global_limit, window_seconds=window_seconds)
        except RateLimited as exc:
            self.metrics.rate_limited.labels(exc.scope).inc()
            raise

    async def remember_fact(self, user_id: str, text: str, guild_id: str | None = None, *,
                            category: str = "other", importance: int = 3) -> Fact:
        """Save a fact; raises InvalidInput for bad text, an unknown category or importance outside 1-5."""
        if category not in FACT_CATEGORIES:
            raise InvalidInput(f"must be one of {', '.join(FACT_CATEGORIES)}", field="category")
        if not isinstance(importance, int) or not 1 <= importance <= 5:
            raise InvalidInput("must be an integer from 1 to 5", field="importance")
        return await self.t.ledger.add_fact(Scope.of(user_id, guild_id),
                                            clean_text(text, "fact", max_chars=2000).strip(), category, importance)

    async def forget_fact(self, user_id: str, fact_id: str, guild_id: str | None = None) -> bool:
        return await self.t.ledger.remove_fact(Scope.of(user_id, guild_id), clean_id(fact_id, "fact_id"))

    async def facts(self, user_id: str, guild_id: str | None = None) -> list[Fact]:
        return await self.t.ledger.facts(Scope.of(user_id, guild_id))

    async def record_usage(self, user_id: str, guild_id: str | None, prompt_tokens: int,
                           completion_tokens: int) -> None:
        await self.t.ledger.record_usage(Scope.of(user_id, guild_id), prompt_tokens, completion_tokens)

    async def usage(self, guild_id: str | None = None) -> list[UsageRow]:
        return await self.t.ledger.usage(None if guild_id is None else clean_id(guild_id, "guild_id"))

    async def rolling_summary(self, user_id: str, guild_id: str | None, channel_id: str | None) -> str | None:
        return await self.t.state.get(self.t.state.rolling_key(Scope.of(user_id, guild_id), channel_id))

    async def set_rolling_summary(self, user_id: str, guild_id: str | None, channel_id: str | None,
                                  text: str) -> None:
        await self.t.state.set(self.t.state.rolling_key(Scope.of(user_id, guild_id), channel_id),
                               clean_text(text, "summary", allow_empty=True, max_chars=20_000))

    async def guild_totals(self, guild_id: str) -> tuple[int, int]:
        """(exchanges, distinct users) archived in one guild: what its admins may see."""
        return await self.t.archive.guild_totals(clean_id(guild_id, "guild_id"))

    async def stats(self) -> MemoryStats:
        """Tier health and latency, archive totals, queue depth and token totals."""
        health = await tier_health(self.t)
        exchanges = users = pending = prompt = completion = forgets = dead = -1
        if health["archive"].ok:
            exchanges, users = await self.t.archive.totals()
            pending = await self.t.outbox.pending()
            forgets = await self.t.forgets.pending()
            dead = await self.dead_letters.count()
            rows = await self.t.ledger.usage()
            prompt = sum(r.prompt_tokens for r in rows)
            completion = sum(r.completion_tokens for r in rows)
        activity = await self._activity_stats() if health["archive"].ok else {}
        return MemoryStats(health, exchanges, users, pending, self.worker.processed, prompt, completion,
                           self.t.addresses.bundled, forgets, extraction=self.extraction_stats(),
                           extraction_total=await self._shared_extraction_stats(), **activity,
                           dead_letters=dead,
                           restarts=self.t.servers.restarts if self.t.servers is not None else {})

    async def _shared_extraction_stats(self) -> dict[str, object]:
        """Every process's extraction counters (``RedisExtractionCounters``) with calls and tokens
        per exchange; {} when nothing was counted; {"unavailable": why} when Redis does not answer."""
        if self.t.extraction_counters is None:
            return {}
        try:
            totals = await self.t.extraction_counters.totals()
        except TierUnavailable as exc:
            return {"unavailable": str(exc)}
        return ExtractionStats.from_totals(totals).as_dict() if totals else {}

    def extraction_stats(self) -> dict[str, object]:
        """This process's extraction counters: mode, calls, tokens and fallbacks per exchange."""
        stats = getattr(self.extractor, "stats", None)
        return stats.as_dict() if stats is not None else {"mode": "deterministic"}
