"""PostgreSQL's queues: the durable outbox of derived work, written in the same
transaction as its exchange and claimed by workers under a lease, and the
forget requests waiting for a derived tier that was down.
"""

from __future__ import annotations

from collections.abc import Sequence

from memory.errors import ArchiveUnavailable
from memory.models import Exchange, ForgetTarget, Scope
from memory.tiers.archive import _COLUMNS, _DRIVER_ERRORS, _PgEdge, _row_to_exchange


class PostgresOutbox(_PgEdge):
    """The durable queue of derived work: one row per exchange until the worker finishes it."""

    async def claim(self, limit: int, lease_seconds: float) -> list[tuple[Exchange, bool]]:
        rows = await self._fetch(
            "WITH c AS (UPDATE outbox SET available_at = now() + make_interval(secs => $2),"
            "                             attempts = attempts + 1"
            "           WHERE exchange_id IN (SELECT exchange_id FROM outbox WHERE available_at <= now()"
            "                                 ORDER BY available_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
            "           RETURNING exchange_id, cache_stale)"
            f" SELECT {', '.join('e.' + c for c in _COLUMNS.split(', '))}, c.cache_stale"
            " FROM c JOIN exchanges e ON e.id = c.exchange_id ORDER BY e.created_at",
            limit, float(lease_seconds))
        return [(_row_to_exchange(r), bool(r["cache_stale"])) for r in rows]

    async def complete(self, exchange_ids: Sequence[str], revisions: Sequence[int] | None = None) -> set[str]:
        """Remove finished exchanges from the queue. With ``revisions`` (the revision of each
        exchange as processed), an exchange edited since stays queued and claimable at once.

        Returns the ids whose rows were still queued (removed or kept for the edit); the others
        were forgotten, or finished by another worker, while the caller held them.
        """
        if revisions is None:
            rows = await self._fetch("DELETE FROM outbox WHERE exchange_id = ANY($1::text[]) RETURNING exchange_id",
                                     list(exchange_ids))
            return {r["exchange_id"] for r in rows}
        rows = await self._fetch(
            "WITH done AS (DELETE FROM outbox o USING unnest($1::text[], $2::int[]) AS d(id, rev)"
            "              WHERE o.exchange_id = d.id AND o.revision <= d.rev RETURNING o.exchange_id),"
            " again AS (UPDATE outbox SET available_at = now() WHERE exchange_id = ANY($1::text[])"
            "           AND exchange_id NOT IN (SELECT exchange_id FROM done) RETURNING exchange_id)"
            " SELECT exchange_id FROM done UNION ALL SELECT exchange_id FROM again",
            list(exchange_ids), [int(r) for r in revisions])
        return {r["exchange_id"] for r in rows}

    async def forgotten(self, exchange_ids: Sequence[str]) -> set[str]:
        """Which of ``exchange_ids`` the archive no longer holds."""
        rows = await self._fetch("SELECT id FROM exchanges WHERE id = ANY($1::text[])", list(exchange_ids))
        return set(exchange_ids) - {r["id"] for r in rows}

    async def fail(self, exchange_ids: Sequence[str], error: str, retry_in: float) -> None:
        await self._execute("UPDATE outbox SET last_error = $2, available_at = now() + make_interval(secs => $3)"
                            " WHERE exchange_id = ANY($1::text[])", list(exchange_ids), error[:2000],
                            float(retry_in))

    async def record_failure(self, exchange_id: str, error: str, retry_in: float, max_failures: int) -> bool:
        """Count one failure of a record (not an outage). Below ``max_failures`` it is
        retried after ``retry_in`` seconds, doubled for each earlier failure; at
        ``max_failures`` it moves, with ``error``, to the dead-letter table and leaves the
        queue. Returns True when it was dead-lettered."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                failures = await conn.fetchval(  # the wait doubles with each failure
                    "UPDATE outbox SET failures = failures + 1, last_error = $2,"
                    " available_at = now() + make_interval(secs => $3 * power(2, failures))"
                    " WHERE exchange_id = $1 RETURNING failures", exchange_id, error[:2000], float(retry_in))
                if failures is None or failures < max_failures:
                    return False
                await conn.execute(
                    "INSERT INTO dead_letters (exchange_id, user_id, attempts, cache_stale, error)"
                    " SELECT o.exchange_id, e.user_id, o.failures, o.cache_stale, $2 FROM outbox o"
                    " JOIN exchanges e ON e.id = o.exchange_id WHERE o.exchange_id = $1"
                    " ON CONFLICT (exchange_id) DO UPDATE SET attempts = EXCLUDED.attempts,"
                    " error = EXCLUDED.error, failed_at = now()", exchange_id, error[:2000])
                await conn.execute("DELETE FROM outbox WHERE exchange_id = $1", exchange_id)
        except _DRIVER_ERRORS as exc:
            raise ArchiveUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return True

    async def pending(self) -> int:
        return int(await self._fetchval("SELECT count(*) FROM outbox"))

    async def pending_for(self, user_id: str, scope: Scope | None = None) -> int:
        """How many of the user's exchanges (in one scope, or all) still wait for derived work."""
        return int(await self._fetchval(
            "SELECT count(*) FROM outbox o JOIN exchanges e ON e.id = o.exchange_id"
            " WHERE e.user_id = $1 AND ($2::text IS NULL OR e.scope = $2)", user_id, scope.key if scope else None))

    async def last_error(self) -> str | None:
        value = await self._fetchval("SELECT last_error FROM outbox WHERE last_error IS NOT NULL"
                                     " ORDER BY available_at DESC LIMIT 1")
        return str(value) if value is not None else None

    async def enqueue_all(self, user_id: str | None = None) -> int:
        """Queue every exchange (of one user, or all) again, dead letters included."""
        status = await self._execute(
            "INSERT INTO outbox (exchange_id, cache_stale, revision) SELECT id, true, revision FROM exchanges"
            " WHERE $1::text IS NULL OR user_id = $1"
            " ON CONFLICT (exchange_id) DO UPDATE SET available_at = now(), cache_stale = true,"
            " revision = EXCLUDED.revision, failures = 0", user_id)
        await self._execute("DELETE FROM dead_letters WHERE $1::text IS NULL OR user_id = $1", user_id)
        return int(status.rsplit(" ", 1)[-1])


class PostgresForgetQueue(_PgEdge):
    """Durable forget requests for derived tiers that were down when the user asked."""

    async def add(self, target: ForgetTarget, tiers: Sequence[str]) -> None:
        await self._execute(
            "INSERT INTO forget_requests (user_id, scope, exchange_ids, tiers) VALUES ($1, $2, $3, $4)",
            target.user_id, target.scope.key if target.scope else None,
            list(target.exchange_ids) if target.exchange_ids is not None else None, sorted(set(tiers)))

    async def due(self, limit: int = 50) -> list[tuple[int, ForgetTarget, list[str]]]:
        rows = await self._fetch("SELECT id, user_id, scope, exchange_ids, tiers FROM forget_requests"
                                 " ORDER BY requested_at LIMIT $1", limit)
        return [(r["id"], ForgetTarget(r["user_id"],
                                       None if r["scope"] is None else Scope(r["user_id"], Scope.guild_of(r["scope"])),
                                       None if r["exchange_ids"] is None else tuple(r["exchange_ids"])),
                 list(r["tiers"])) for r in rows]

    async def update(self, request_id: int, tiers_left: Sequence[str], error: str | None) -> None:
        """Record the tiers still to clear; a request with none left is deleted."""
        if not tiers_left:
            await self._execute("DELETE FROM forget_requests WHERE id = $1", request_id)
        else:
            await self._execute("UPDATE forget_requests SET tiers = $2, attempts = attempts + 1, last_error = $3"
                                " WHERE id = $1", request_id, list(tiers_left), error)

    async def pending(self, user_id: str | None = None) -> int:
        return int(await self._fetchval("SELECT count(*) FROM forget_requests WHERE $1::text IS NULL"
                                        " OR user_id = $1", user_id))
