"""Tier 2: PostgreSQL via an asyncpg pool. The source of truth.

``PostgresArchive`` holds every exchange. The other PostgreSQL stores share its
connection edge (``_PgEdge``) and live beside it: the durable outbox of derived
work and the forget queue (``memory.tiers.outbox``), curated facts and token
usage (``memory.tiers.ledger``), sessions, policies and dead letters. The
archive's SQL lives in this module and in ``memory/sql/*.sql`` (versioned schema).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import asyncpg

from memory.errors import ArchiveUnavailable, MemoryPaused
from memory.models import Exchange, ForgetTarget, Hit, Scope

# InternalClientError: a pooled connection caught mid-reconnect after the server restarted
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError,
                  OSError, ConnectionError)
_COLUMNS = ("id, user_id, guild_id, channel_id, user_message, bot_response, created_at, metadata,"
            " message_id, revision")
ANALYZE_SHARE = 0.05  # refresh_statistics(): share of the rows changed since the last ANALYZE ...
ANALYZE_FLOOR = 500  # ... and at least this many rows
COMMON_WORD_ROWS = 300  # search() ignores words found in more exchanges of the scope than this


def _row_to_exchange(row: asyncpg.Record) -> Exchange:
    return Exchange(id=row["id"], user_id=row["user_id"], guild_id=row["guild_id"],
                    channel_id=row["channel_id"], user_message=row["user_message"],
                    bot_response=row["bot_response"], timestamp=row["created_at"],
                    metadata=row["metadata"], message_id=row["message_id"], revision=row["revision"])


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Run when a connection goes back to the pool. Nothing here leaves session state
    behind (no SET, LISTEN, cursors or session-level advisory locks; transactions are
    always closed by their context manager), so asyncpg's default reset query, a round
    trip after every query (~0.4 ms of a context's CPU each here), is skipped."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def migrate(pool: asyncpg.Pool) -> list[int]:
    """Apply the versioned schema files not yet applied; returns the versions applied.

    An advisory lock serialises concurrent starters (bot, worker, CLI).
    """
    files = sorted((f for f in resources.files("memory.sql").iterdir() if f.name.endswith(".sql")),
                   key=lambda f: f.name)
    applied: list[int] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7262013)")
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                           "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for f in files:
            version = int(f.name.split("_", 1)[0])
            if version not in done:
                await conn.execute(f.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                applied.append(version)
    return applied


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool and bring the schema up to date; raises ArchiveUnavailable."""
    try:
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                                         reset=_reset_connection, command_timeout=30)
        await migrate(pool)
    except _DRIVER_ERRORS as exc:
        raise ArchiveUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return pool


class _PgEdge:
    name = "archive"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return list(await self.pool.fetch(sql, *args))
        except _DRIVER_ERRORS as exc:
            raise ArchiveUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        try:
            return await self.pool.fetchval(sql, *args)
        except _DRIVER_ERRORS as exc:
            raise ArchiveUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def _execute(self, sql: str, *args: Any) -> str:
        try:
            return str(await self.pool.execute(sql, *args))
        except _DRIVER_ERRORS as exc:
            raise ArchiveUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def ping(self) -> None:
        await self._fetchval("SELECT 1")


def _where(target: ForgetTarget | None = None, *, user_id: str | None = None,
           scope: Scope | None = None) -> tuple[str, list[Any]]:
    """A WHERE clause confining a statement to one user (and scope, and ids)."""
    if target is not None:
        user_id, scope = target.user_id, target.scope
    clauses: list[str] = ["user_id = $1"]
    args: list[object] = [user_id]
    if scope is not None:
        args.append(scope.key)
        clauses.append(f"scope = ${len(args)}")
    if target is not None and target.exchange_ids is not None:
        args.append(list(target.exchange_ids))
        clauses.append(f"id = ANY(${len(args)}::text[])")
    return " AND ".join(clauses), args


class PostgresArchive(_PgEdge):
    """Every exchange, full fidelity, with a full-text index."""

    async def refresh_statistics(self, share: float = ANALYZE_SHARE, floor: int = ANALYZE_FLOOR) -> bool:
        """ANALYZE the exchanges table when more than ``share`` of its rows (and at least ``floor``)
        changed since it was last analysed; returns whether it ran.

        The planner needs each user's row count to search through the full-text index: with
        statistics taken before a user's history arrived it scans all of that user's rows
        instead (3x slower full-text search at 3,000 exchanges). Autovacuum gets there within
        a minute or so on its own schedule; a worker that just archived a batch calls this so a
        bulk import or a fast-growing user is planned right at once.
        """
        changed = await self._fetchval(
            "SELECT s.n_mod_since_analyze > greatest($1::bigint, $2 * greatest(c.reltuples, 0))"
            " FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid"
            " WHERE s.relid = 'exchanges'::regclass", floor, share)
        if not changed:
            return False
        await self._execute("ANALYZE exchanges")
        return True

    async def scrub(self, *, own_server: bool) -> list[str]:
        """Make rows deleted by a forget unreadable in the server's files; returns what was done.

        ``VACUUM FULL`` writes every table and index afresh without the dead rows (a plain VACUUM
        leaves their bytes in the freed space of a page) and drops the old files; each table is
        locked while it is rewritten, so run it when the bot is quiet. The write-ahead log
        still holds them until its segment is reused; on a server this library started
        (``own_server``) segments are no longer recycled but deleted, the current one is switched
        out and two checkpoints let it go. A server someone else runs keeps its log (and its
        backups) on its own schedule, and may not let this user checkpoint.
        """
        await self._execute("VACUUM FULL")
        if not own_server:
            return ["VACUUM FULL"]
        try:
            async with self.pool.acquire() as conn:
                await conn.execute("ALTER SYSTEM SET wal_recycle = off")
                await conn.execute("SELECT pg_reload_conf()")
                await asyncio.sleep(0.2)  # the checkpointer reads the new setting on its own
                await conn.execute("SELECT pg_switch_wal()")
                await conn.execute("CHECKPOINT")
                await conn.execute("CHECKPOINT")
        except _DRIVER_ERRORS as exc:
            raise ArchiveUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return ["VACUUM FULL", "write-ahead log switched, old segments deleted"]

    async def insert(self, exchange: Exchange, *, cache_stale: bool = False) -> bool:
        """Store the exchange and its outbox row in one transaction; False if the id exists.

        Raises MemoryPaused (nothing written) when the user paused memory in the
        exchange's scope: checked in the same statement as the insert, so a pause
        that commits first is never missed.
        """
        e = exchange
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "WITH p AS (SELECT EXISTS (SELECT 1 FROM memory_pauses WHERE user_id = $2 AND scope = $3)"
                    "           AS paused),"
                    " ins AS (INSERT INTO exchanges (id, user_id, scope, guild_id, channel_id, user_message,"
                    "         bot_response, created_at, metadata, message_id)"
                    "         SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10 FROM p WHERE NOT p.paused"
                    "         ON CONFLICT (id) DO NOTHING RETURNING 1)"
                    " SELECT p.paused, EXISTS (SELECT 1 FROM ins) AS inserted FROM p",
                    e.id, e.user_id, e.scope.key, e.guild_id, e.channel_id, e.user_message,
                    e.bot_response, e.timestamp, dict(e.metadata), e.message_id)
                if row["paused"]:
                    raise MemoryPaused(e.scope.label)
                if not row["inserted"]:
                    return False
                await conn.execute("INSERT INTO outbox (exchange_id, cache_stale) VALUES ($1, $2)",
                                   e.id, cache_stale)
        except _DRIVER_ERRORS as exc:
            raise ArchiveUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return True

    async def update_text(self, user_id: str, exchange_id: str, *, user_message: str | None,
                          bot_response: str | None, metadata: dict[str, Any]) -> Exchange | None:
        """Replace the texts given (None keeps one), merge ``metadata`` in, count a revision and
        queue the exchange for re-derivation, in one transaction. None if the user has no such exchange.
        """
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "UPDATE exchanges SET user_message = coalesce($3, user_message),"
                    " bot_response = coalesce($4, bot_response), metadata = metadata || $5::jsonb,"
                    f" revision = revision + 1 WHERE user_id = $1 AND id = $2 RETURNING {_COLUMNS}",
                    user_id, exchange_id, user_message, bot_response, metadata)
                if row is None:
                    return None
                # a pending row keeps its lease: the worker holding it will not complete an older revision
                await conn.execute(
                    "INSERT INTO outbox (exchange_id, cache_stale, revision) VALUES ($1, true, $2)"
                    " ON CONFLICT (exchange_id) DO UPDATE SET cache_stale = true, revision = EXCLUDED.revision,"
                    " failures = 0", exchange_id, row["revision"])
                # a new text is a new chance: it leaves the dead letters for the queue
                await conn.execute("DELETE FROM dead_letters WHERE exchange_id = $1", exchange_id)
        except _DRIVER_ERRORS as exc:
            raise ArchiveUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return _row_to_exchange(row)

    async def by_messages(self, message_ids: Sequence[str], *, user_id: str | None = None,
                          channel_id: str | None = None) -> list[Exchange]:
        """The exchanges answering these (Discord) messages, oldest first, confined to their
        author when ``user_id`` is given and to their channel when ``channel_id`` is (an
        indexed lookup on the message id)."""
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM exchanges WHERE message_id = ANY($1::text[])"
            " AND ($2::text IS NULL OR user_id = $2) AND ($3::text IS NULL OR channel_id = $3)"
            " ORDER BY created_at, id", list(message_ids), user_id, channel_id)
        return [_row_to_exchange(r) for r in rows]

    async def mark_cache_stale(self, exchange_id: str) -> None:
        """Tell the worker the cache missed this exchange, so it drops the scope's list."""
        await self._execute("UPDATE outbox SET cache_stale = true WHERE exchange_id = $1", exchange_id)

    async def get(self, scope: Scope, ids: Sequence[str]) -> list[Exchange]:
        if not ids:
            return []
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM exchanges WHERE user_id = $1 AND scope = $2"
                                 " AND id = ANY($3::text[])", scope.user_id, scope.key, list(ids))
        return [_row_to_exchange(r) for r in rows]

    async def find(self, user_id: str, exchange_id: str) -> Exchange | None:
        """The user's exchange with this id, in whatever scope, or None."""
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM exchanges WHERE user_id = $1 AND id = $2",
                                 user_id, exchange_id)
        return _row_to_exchange(rows[0]) if rows else None

    async def existing(self, ids: Sequence[str]) -> set[str]:
        rows = await self._fetch("SELECT id FROM exchanges WHERE id = ANY($1::text[])", list(ids))
        return {r["id"] for r in rows}

    async def recent(self, scope: Scope, limit: int, *, before: datetime | None = None) -> list[Exchange]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM exchanges WHERE user_id = $1 AND scope = $2"
            " AND ($3::timestamptz IS NULL OR created_at < $3) ORDER BY created_at DESC, id LIMIT $4",
            scope.user_id, scope.key, before, limit)
        return [_row_to_exchange(r) for r in rows]

    async def newest_ids(self, scope: Scope, limit: int, since: datetime, until: datetime) -> list[str]:
        """Ids of the scope's newest ``limit`` exchanges in ``[since, until)``, newest first
        (what ``recent(before=until)`` keeps of them, without reading their text)."""
        rows = await self._fetch(
            "SELECT id FROM exchanges WHERE user_id = $1 AND scope = $2 AND created_at >= $3"
            " AND created_at < $4 ORDER BY created_at DESC, id LIMIT $5", scope.user_id, scope.key, since, until,
            limit)
        return [r["id"] for r in rows]

    async def search(self, scope: Scope, query: str, limit: int, *, since: datetime | None = None,
                     until: datetime | None = None) -> list[Hit]:
        """Any-word full-text match in the scope, ranked by the summed IDF of the query's
        stemmed words each exchange contains (BM25 with binary term frequency: a rare word
        weighs more than a common one). Stop words are dropped by the text-search config,
        and so are words found in more than ``COMMON_WORD_ROWS`` of the scope's exchanges.
        ``since``/``until`` confine the match to exchanges in ``[since, until)``.
        """
        if not query.strip():
            return []
        rows = await self._fetch(
            # one index scan per stemmed query word: (exchange, word) for each exchange holding it.
            # Matching word by word costs what the index returns; the earlier single OR query
            # intersected each matching row's words with the query's, which cost 2x on big users.
            # A word in more than COMMON_WORD_ROWS of the scope's exchanges is dropped (its IDF
            # is the smallest): on a 5,000-exchange user p50 went from 11 ms (no cap) to 10.6 (500), 6.8 (300)
            "WITH m AS MATERIALIZED (SELECT e.id, e.created_at, w.l"
            "   FROM (SELECT DISTINCT lexeme AS l FROM unnest(to_tsvector('english', $3))) w,"
            "   LATERAL (SELECT id, created_at FROM exchanges WHERE user_id = $1 AND scope = $2"
            "            AND search @@ quote_literal(w.l)::tsquery"
            "            AND ($6::timestamptz IS NULL OR created_at >= $6)"
            "            AND ($7::timestamptz IS NULL OR created_at < $7) LIMIT $5 + 1) e),"
            # each word's IDF once (numeric ln costs ~7 us; per matched row it was half the query)
            " total AS (SELECT count(*) AS n FROM exchanges WHERE user_id = $1 AND scope = $2),"
            " df AS (SELECT l, ln(1 + (total.n - count(*) + 0.5) / (count(*) + 0.5)) AS idf"
            "        FROM m CROSS JOIN total GROUP BY l, total.n HAVING count(*) <= $5)"
            " SELECT m.id, sum(df.idf) AS score FROM m JOIN df USING (l)"
            " GROUP BY m.id ORDER BY score DESC, max(m.created_at) DESC LIMIT $4",
            scope.user_id, scope.key, query[:4000], limit, COMMON_WORD_ROWS, since, until)
        return [Hit(r["id"], float(r["score"]), "fulltext") for r in rows]

    async def neighbours(self, scope: Scope, ids: Sequence[str], each_side: int,
                         max_gap: timedelta) -> list[tuple[str, Exchange, int]]:
        """The exchanges said just before and after each of ``ids`` in the scope: up to
        ``each_side`` on each side within ``max_gap`` of it (the same sitting, not the next day's
        talk). Returns (anchor id, neighbour, steps away), in ``ids`` order, nearest first."""
        if not ids or each_side < 1:
            return []
        rows = await self._fetch(
            "SELECT a.ord, a.id AS anchor, n.* FROM"
            " (SELECT e.id, e.created_at, x.ord FROM unnest($3::text[]) WITH ORDINALITY x(id, ord)"
            "  JOIN exchanges e ON e.id = x.id AND e.user_id = $1 AND e.scope = $2) a,"
            " LATERAL ((SELECT row_number() OVER (ORDER BY created_at DESC) AS step, " + _COLUMNS +
            "   FROM exchanges WHERE user_id = $1 AND scope = $2 AND created_at < a.created_at"
            "   AND created_at >= a.created_at - $5::interval ORDER BY created_at DESC LIMIT $4)"
            "  UNION ALL (SELECT row_number() OVER (ORDER BY created_at) AS step, " + _COLUMNS +
            "   FROM exchanges WHERE user_id = $1 AND scope = $2 AND created_at > a.created_at"
            "   AND created_at <= a.created_at + $5::interval ORDER BY created_at LIMIT $4)) n"
            " ORDER BY a.ord, n.step",
            scope.user_id, scope.key, list(ids), each_side, max_gap)
        return [(r["anchor"], _row_to_exchange(r), int(r["step"])) for r in rows]

    async def phrase_ids(self, scope: Scope, phrase: str) -> list[str]:
        """Ids of the scope's exchanges containing every word of ``phrase`` (stemmed)."""
        rows = await self._fetch(
            "SELECT id FROM exchanges WHERE user_id = $1 AND scope = $2"
            " AND search @@ plainto_tsquery('english', $3)", scope.user_id, scope.key, phrase[:1000])
        return [r["id"] for r in rows]

    async def exchanges(self, user_id: str, scope: Scope | None = None) -> list[Exchange]:
        where, args = _where(user_id=user_id, scope=scope)
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM exchanges WHERE {where}"
                                 " ORDER BY created_at, id", *args)
        return [_row_to_exchange(r) for r in rows]

    async def scopes(self, user_id: str) -> list[Scope]:
        rows = await self._fetch("SELECT DISTINCT scope FROM exchanges WHERE user_id = $1", user_id)
        return [Scope(user_id, Scope.guild_of(r["scope"])) for r in rows]

    async def users(self) -> list[str]:
        return [r["user_id"] for r in await self._fetch("SELECT DISTINCT user_id FROM exchanges")]

    async def unprocessed(self, scope: Scope) -> list[Exchange]:
        """The scope's exchanges not (yet) in the derived tiers: queued or dead-lettered."""
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM exchanges e WHERE user_id = $1 AND scope = $2 AND"
            " (EXISTS (SELECT 1 FROM outbox o WHERE o.exchange_id = e.id)"
            "  OR EXISTS (SELECT 1 FROM dead_letters d WHERE d.exchange_id = e.id))"
            " ORDER BY created_at, id", scope.user_id, scope.key)
        return [_row_to_exchange(r) for r in rows]

    async def forget(self, target: ForgetTarget) -> int:
        """Delete the target's exchanges (their outbox rows and dead letters go with them)."""
        where, args = _where(target)
        status = await self._execute(f"DELETE FROM exchanges WHERE {where}", *args)
        if target.exchange_ids is None:
            where, args = _where(user_id=target.user_id, scope=target.scope)
            await self._execute(f"DELETE FROM stale_caches WHERE {where}", *args)
        return int(status.rsplit(" ", 1)[-1])

    async def count(self, user_id: str, scope: Scope | None = None) -> int:
        where, args = _where(user_id=user_id, scope=scope)
        return int(await self._fetchval(f"SELECT count(*) FROM exchanges WHERE {where}", *args))

    async def totals(self) -> tuple[int, int]:
        """(exchanges, distinct users) across the whole archive."""
        rows = await self._fetch("SELECT count(*) AS n, count(DISTINCT user_id) AS u FROM exchanges")
        return int(rows[0]["n"]), int(rows[0]["u"])

    async def guild_totals(self, guild_id: str) -> tuple[int, int]:
        """(exchanges, distinct users) in one guild's scope."""
        rows = await self._fetch("SELECT count(*) AS n, count(DISTINCT user_id) AS u FROM exchanges"
                                 " WHERE scope = $1", f"g:{guild_id}")
        return int(rows[0]["n"]), int(rows[0]["u"])
