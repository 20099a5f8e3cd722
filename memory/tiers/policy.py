"""Archive-side policies: pauses, one-time notices, per-guild settings, retention, activity.

Same PostgreSQL pool and schema as ``memory.tiers.archive`` (tables from
``memory/sql/006_events_and_guilds.sql``); kept apart so the archive module stays
about storing and reading exchanges. Everything here is durable and shared by
every process: no process keeps the only copy of a pause or a setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from memory.models import ActiveConversation, GuildSettings, MessageState, Scope
from memory.tiers.archive import _PgEdge

_GUILD_COLUMNS = "guild_id, persona, always_on_channels, retention_days, updated_by, updated_at"


def _guild(row: asyncpg.Record | None) -> GuildSettings | None:
    if row is None or row["guild_id"] is None:
        return None
    return GuildSettings(guild_id=row["guild_id"], persona=row["persona"],
                         always_on_channels=frozenset(row["always_on_channels"] or ()),
                         retention_days=row["retention_days"], updated_by=row["updated_by"],
                         updated_at=row["updated_at"])


class PostgresPolicies(_PgEdge):
    """Pauses and notices per user and scope, settings per guild, the retention job's queries."""

    # ---- pause and notice ---------------------------------------------------------------------

    async def set_paused(self, scope: Scope, paused: bool) -> bool:
        """Pause or resume; returns whether that changed anything."""
        if paused:
            status = await self._execute("INSERT INTO memory_pauses (user_id, scope) VALUES ($1, $2)"
                                         " ON CONFLICT DO NOTHING", scope.user_id, scope.key)
        else:
            status = await self._execute("DELETE FROM memory_pauses WHERE user_id = $1 AND scope = $2",
                                         scope.user_id, scope.key)
        return not status.endswith(" 0")

    async def paused_scopes(self, user_id: str) -> list[Scope]:
        rows = await self._fetch("SELECT scope FROM memory_pauses WHERE user_id = $1 ORDER BY scope", user_id)
        return [Scope(user_id, Scope.guild_of(r["scope"])) for r in rows]

    async def message_state(self, scope: Scope, *, claim_notice: bool) -> MessageState:
        """Pause, notice and guild settings for one incoming message, in one round trip.

        With ``claim_notice`` the notice is marked shown here: ``first_notice`` is
        True for exactly one message per user and scope, across processes.
        """
        row = await self._fetch(
            "WITH notice AS (INSERT INTO memory_notices (user_id, scope) SELECT $1, $2 WHERE $4"
            "                ON CONFLICT DO NOTHING RETURNING 1)"
            " SELECT EXISTS (SELECT 1 FROM notice) AS first_notice,"
            " EXISTS (SELECT 1 FROM memory_pauses WHERE user_id = $1 AND scope = $2) AS paused,"
            f" {', '.join('g.' + c for c in _GUILD_COLUMNS.split(', '))}"
            " FROM (SELECT 1) AS one LEFT JOIN guild_settings g ON g.guild_id = $3",
            scope.user_id, scope.key, scope.guild_id, claim_notice)
        return MessageState(paused=bool(row[0]["paused"]), first_notice=bool(row[0]["first_notice"]),
                            guild=_guild(row[0]))

    # ---- a user's own settings ----------------------------------------------------------------

    async def set_time_zone(self, user_id: str, zone: str | None) -> None:
        await self._execute("INSERT INTO user_settings AS u (user_id, time_zone) VALUES ($1, $2)"
                            " ON CONFLICT (user_id) DO UPDATE SET time_zone = $2, updated_at = now()", user_id, zone)

    async def time_zone(self, user_id: str) -> str | None:
        return await self._fetchval("SELECT time_zone FROM user_settings WHERE user_id = $1", user_id)  # type: ignore[no-any-return]

    async def time_zones(self, user_ids: Sequence[str]) -> dict[str, str]:
        """The time zones set among ``user_ids`` (a user on UTC is left out)."""
        rows = await self._fetch("SELECT user_id, time_zone FROM user_settings"
                                 " WHERE user_id = ANY($1::text[]) AND time_zone IS NOT NULL", list(user_ids))
        return {r["user_id"]: r["time_zone"] for r in rows}

    async def forget_settings(self, user_id: str) -> None:
        await self._execute("DELETE FROM user_settings WHERE user_id = $1", user_id)

    # ---- guild settings -----------------------------------------------------------------------

    async def guild(self, guild_id: str) -> GuildSettings | None:
        rows = await self._fetch(f"SELECT {_GUILD_COLUMNS} FROM guild_settings WHERE guild_id = $1", guild_id)
        return _guild(rows[0]) if rows else None

    async def update_guild(self, guild_id: str, *, updated_by: str, persona: str | None, clear_persona: bool,
                           add_channels: Sequence[str], remove_channels: Sequence[str],
                           retention_days: int | None, clear_retention: bool) -> GuildSettings:
        """Apply the changes given (None / empty leaves a field alone) and return the result.

        Channels are added and removed in the same statement, so two admins changing
        channels at once both keep their change.
        """
        rows = await self._fetch(
            "INSERT INTO guild_settings AS g (guild_id, persona, always_on_channels, retention_days, updated_by)"
            " VALUES ($1, $2, ARRAY(SELECT DISTINCT c FROM unnest($4::text[]) c"
            "                       WHERE c <> ALL($5::text[]) ORDER BY c), $6, $8)"
            " ON CONFLICT (guild_id) DO UPDATE SET"
            " persona = CASE WHEN $3 THEN NULL ELSE coalesce($2, g.persona) END,"
            " always_on_channels = ARRAY(SELECT DISTINCT c FROM unnest(g.always_on_channels || $4::text[]) c"
            "                            WHERE c <> ALL($5::text[]) ORDER BY c),"
            " retention_days = CASE WHEN $7 THEN NULL ELSE coalesce($6, g.retention_days) END,"
            " updated_by = $8, updated_at = now()"
            f" RETURNING {_GUILD_COLUMNS}",
            guild_id, persona, clear_persona, list(add_channels), list(remove_channels), retention_days,
            clear_retention, updated_by)
        settings = _guild(rows[0])
        assert settings is not None
        return settings

    # ---- activity and retention ---------------------------------------------------------------

    async def active(self, since: datetime, *, guild_id: str | None = None,
                     limit: int = 50) -> list[ActiveConversation]:
        """Users and channels with exchanges stored since ``since``, newest activity first;
        confined to one guild's scope when ``guild_id`` is given."""
        rows = await self._fetch(
            "SELECT user_id, scope, channel_id, count(*) AS n, max(created_at) AS last_at FROM exchanges"
            " WHERE created_at >= $1 AND ($2::text IS NULL OR scope = $2)"
            " GROUP BY user_id, scope, channel_id ORDER BY max(created_at) DESC LIMIT $3",
            since, None if guild_id is None else f"g:{guild_id}", limit)
        return [ActiveConversation(r["user_id"], Scope.guild_of(r["scope"]), r["channel_id"], int(r["n"]),
                                   r["last_at"]) for r in rows]

    async def expired(self, global_days: int | None, limit: int) -> list[tuple[str, str, str]]:
        """(exchange id, user id, scope key) of up to ``limit`` exchanges past their retention.

        An exchange expires after ``global_days`` (None: no global limit) or after its
        guild's ``retention_days``, whichever is shorter: a guild can shorten the
        operator's retention, never lengthen it.
        """
        rows = await self._fetch(
            "(SELECT id, user_id, scope FROM exchanges"
            "  WHERE $1::int IS NOT NULL AND created_at < now() - make_interval(days => $1::int) LIMIT $2)"
            " UNION"
            " (SELECT e.id, e.user_id, e.scope FROM guild_settings g"
            "  CROSS JOIN LATERAL (SELECT id, user_id, scope FROM exchanges"
            "                      WHERE scope = 'g:' || g.guild_id"
            "                      AND created_at < now() - make_interval(days => g.retention_days) LIMIT $2) e"
            "  WHERE g.retention_days IS NOT NULL AND ($1::int IS NULL OR g.retention_days < $1::int))"
            " LIMIT $2", global_days, limit)
        return [(r["id"], r["user_id"], r["scope"]) for r in rows]

    async def claim_job(self, name: str, every_seconds: float) -> bool:
        """True for the one process that may run job ``name`` now (its interval has passed)."""
        rows = await self._fetch(
            "INSERT INTO job_runs AS j (name, last_run) VALUES ($1, now())"
            " ON CONFLICT (name) DO UPDATE SET last_run = now()"
            " WHERE j.last_run <= now() - make_interval(secs => $2) RETURNING 1", name, float(every_seconds))
        return bool(rows)

    async def record_job(self, name: str, removed: Mapping[str, int], total: int) -> None:
        await self._execute(
            "INSERT INTO job_runs AS j (name, last_run, runs, last_removed, total_removed)"
            " VALUES ($1, now(), 1, $2, $3) ON CONFLICT (name) DO UPDATE SET runs = j.runs + 1,"
            " last_removed = $2, total_removed = j.total_removed + $3",
            name, dict(removed), int(total))

    async def job(self, name: str) -> dict[str, Any] | None:
        """The job's last run, runs, last removal and total removed, or None if it never ran."""
        rows = await self._fetch("SELECT last_run, runs, last_removed, total_removed FROM job_runs"
                                 " WHERE name = $1", name)
        return dict(rows[0]) if rows else None
