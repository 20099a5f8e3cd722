"""Dated session summaries in PostgreSQL (table ``session_summaries``, see ``memory.sessions``).

Same pool and schema as ``memory.tiers.archive``. A session is keyed by user, scope and
start, so writing it again is a no-op.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from memory.models import Exchange, ForgetTarget, Scope
from memory.sessions import SessionSummary
from memory.tiers.archive import _COLUMNS, _PgEdge, _row_to_exchange, _where

_FIELDS = "user_id, scope, started_at, ended_at, exchange_ids, text"


def _row(r: object) -> SessionSummary:
    return SessionSummary(r["user_id"], Scope.guild_of(r["scope"]), r["started_at"],  # type: ignore[index]
                          r["ended_at"], tuple(r["exchange_ids"]), r["text"])  # type: ignore[index]


class PostgresSessions(_PgEdge):
    async def uncovered(self, limit: int) -> list[Exchange]:
        """Exchanges no session summary covers yet, by user, scope and time (at most ``limit``)."""
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM exchanges e WHERE NOT EXISTS (SELECT 1 FROM session_summaries s"
            "  WHERE s.exchange_ids @> ARRAY[e.id] AND s.user_id = e.user_id AND s.scope = e.scope)"  # GIN
            " ORDER BY user_id, scope, created_at, id LIMIT $1", int(limit))
        return [_row_to_exchange(r) for r in rows]

    async def add(self, sessions: Sequence[SessionSummary]) -> int:
        """Store ``sessions``; one already stored (same user, scope and start) is left as it is, and so
        is one whose exchanges are not all in the archive any more (forgotten since they were read)."""
        added = 0
        for s in sessions:
            status = await self._execute(
                f"INSERT INTO session_summaries ({_FIELDS}) SELECT $1, $2, $3, $4, $5::text[], $6"
                " WHERE (SELECT count(*) FROM exchanges WHERE user_id = $1 AND scope = $2"
                "        AND id = ANY($5::text[])) = cardinality($5::text[])"
                " ON CONFLICT (user_id, scope, started_at) DO NOTHING",
                s.user_id, Scope.of(s.user_id, s.guild_id).key, s.started_at, s.ended_at,
                list(s.exchange_ids), s.text)
            added += int(status.rsplit(" ", 1)[-1])
        return added

    async def reopen(self, user_id: str, scope: Scope, start: datetime, end: datetime) -> int:
        """Drop the user's stored sessions in ``scope`` that end after ``start`` and begin before ``end``
        (a late exchange belongs to them): their exchanges are summarised again together."""
        status = await self._execute("DELETE FROM session_summaries WHERE user_id = $1 AND scope = $2"
                                     " AND ended_at > $3 AND started_at < $4", user_id, scope.key, start, end)
        return int(status.rsplit(" ", 1)[-1])

    async def between(self, scope: Scope, start: datetime | None, end: datetime | None,
                      limit: int) -> list[SessionSummary]:
        """The scope's sessions overlapping ``[start, end)`` (any time when None), newest first."""
        rows = await self._fetch(
            f"SELECT {_FIELDS} FROM session_summaries WHERE user_id = $1 AND scope = $2"
            " AND ($3::timestamptz IS NULL OR ended_at >= $3) AND ($4::timestamptz IS NULL OR started_at < $4)"
            " ORDER BY started_at DESC LIMIT $5", scope.user_id, scope.key, start, end, int(limit))
        return [_row(r) for r in rows]

    async def all(self, user_id: str) -> list[SessionSummary]:
        rows = await self._fetch(f"SELECT {_FIELDS} FROM session_summaries WHERE user_id = $1"
                                 " ORDER BY scope, started_at", user_id)
        return [_row(r) for r in rows]

    async def forget(self, target: ForgetTarget) -> int:
        """Sessions of the user (or scope); for named exchanges, the sessions that cover any of them."""
        where, args = _where(user_id=target.user_id, scope=target.scope)
        if target.exchange_ids is not None:
            args.append(list(target.exchange_ids))
            where += f" AND exchange_ids && ${len(args)}::text[]"
        status = await self._execute(f"DELETE FROM session_summaries WHERE {where}", *args)
        return int(status.rsplit(" ", 1)[-1])
