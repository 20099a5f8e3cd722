"""Archive-side bookkeeping of the worker: dead letters and cache lists left stale.

Same PostgreSQL pool and schema as ``memory.tiers.archive`` (``005_dead_letters.sql``).
A dead letter is an exchange the worker failed on ``WORKER__MAX_ATTEMPTS`` times
for a reason other than an outage; it stays in the archive, leaves the outbox,
and waits here, with its error, until an operator retries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from memory.errors import ArchiveUnavailable
from memory.models import Scope
from memory.tiers.archive import _DRIVER_ERRORS, _PgEdge


@dataclass(frozen=True, slots=True)
class DeadLetter:
    exchange_id: str
    user_id: str
    attempts: int
    error: str
    failed_at: datetime


class PostgresDeadLetters(_PgEdge):
    """Exchanges taken out of the derived-work queue after repeated failures."""

    async def recent(self, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters first."""
        rows = await self._fetch("SELECT exchange_id, user_id, attempts, error, failed_at FROM dead_letters"
                                 " ORDER BY failed_at DESC, exchange_id LIMIT $1", limit)
        return [DeadLetter(r["exchange_id"], r["user_id"], int(r["attempts"]), r["error"], r["failed_at"])
                for r in rows]

    async def of_user(self, user_id: str) -> list[DeadLetter]:
        """The user's dead letters (for export: an error may quote the message)."""
        rows = await self._fetch("SELECT exchange_id, user_id, attempts, error, failed_at FROM dead_letters"
                                 " WHERE user_id = $1 ORDER BY failed_at, exchange_id", user_id)
        return [DeadLetter(r["exchange_id"], r["user_id"], int(r["attempts"]), r["error"], r["failed_at"])
                for r in rows]

    async def count(self) -> int:
        return int(await self._fetchval("SELECT count(*) FROM dead_letters"))

    async def retry(self, exchange_id: str | None = None) -> int:
        """Queue one dead letter (or all of them) again with a clean failure count;
        returns how many went back to the outbox."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch("DELETE FROM dead_letters WHERE $1::text IS NULL OR exchange_id = $1"
                                        " RETURNING exchange_id, cache_stale", exchange_id)
                if rows:
                    await conn.executemany(
                        "INSERT INTO outbox (exchange_id, cache_stale, revision)"
                        " SELECT id, $2, revision FROM exchanges WHERE id = $1 ON CONFLICT (exchange_id)"
                        " DO UPDATE SET available_at = now(), failures = 0",
                        [(r["exchange_id"], r["cache_stale"]) for r in rows])
        except _DRIVER_ERRORS as exc:
            raise ArchiveUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return len(rows)


class PostgresStaleCaches(_PgEdge):
    """Scopes whose cached recent list must be dropped once Redis answers again."""

    async def add(self, scope: Scope, error: str) -> None:
        await self._execute("INSERT INTO stale_caches (user_id, scope, last_error) VALUES ($1, $2, $3)"
                            " ON CONFLICT (user_id, scope) DO UPDATE SET last_error = EXCLUDED.last_error",
                            scope.user_id, scope.key, error[:2000])

    async def due(self, limit: int = 200) -> list[Scope]:
        rows = await self._fetch("SELECT user_id, scope FROM stale_caches ORDER BY since LIMIT $1", limit)
        return [Scope(r["user_id"], Scope.guild_of(r["scope"])) for r in rows]

    async def done(self, scope: Scope) -> None:
        await self._execute("DELETE FROM stale_caches WHERE user_id = $1 AND scope = $2",
                            scope.user_id, scope.key)
