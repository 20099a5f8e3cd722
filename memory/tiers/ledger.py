"""Archive-side records that are not conversation logs: curated facts, token usage, and
legacy records a migration set aside.

Same PostgreSQL pool and schema as ``memory.tiers.archive``; kept apart so the
archive module stays about exchanges.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from memory.errors import ArchiveUnavailable
from memory.models import ForgetTarget, Scope
from memory.tiers.archive import _DRIVER_ERRORS, _PgEdge, _where

FACT_CATEGORIES = ("identity", "health", "preference", "people", "work", "plans", "other")


@dataclass(frozen=True, slots=True)
class Fact:
    """Something the user asked the bot to remember, always included in their context."""

    id: str
    user_id: str
    guild_id: str | None
    text: str
    created_at: datetime
    category: str = "other"
    importance: int = 3  # 1 (trivia) .. 5 (vital: allergies, names)


@dataclass(frozen=True, slots=True)
class Curated:
    """What a scope's user curated, as the context reads it: saved facts (oldest first) and
    profile corrections (line key -> (the line as corrected, replacement or None))."""

    facts: list[Fact]
    corrections: dict[str, tuple[str, str | None]]

    @property
    def hits(self) -> int:
        return len(self.facts)  # the tier report counts saved facts, as before corrections came along


@dataclass(frozen=True, slots=True)
class UsageRow:
    user_id: str
    guild_id: str | None
    prompt_tokens: int
    completion_tokens: int
    requests: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class SetAside:
    """A legacy record a migration could not map to an exchange, kept for the operator.

    ``user_id`` is the user the record names, when it names a valid one (forget of
    that user removes it), ``scope_key`` its scope (``dm`` / ``g:<id>``) when that
    can be told too; ``record`` is the legacy record as read.
    """

    collection_uuid: str
    legacy_id: str
    collection: str
    source: str
    reason: str
    user_id: str | None = None
    scope_key: str | None = None
    record: Mapping[str, Any] = field(default_factory=dict)


class PostgresLedger(_PgEdge):
    """Curated facts (per user and scope), LLM token usage (per user, scope and day), and
    legacy records set aside by a migration (``legacy_unmappable``)."""

    async def add_fact(self, scope: Scope, text: str, category: str = "other", importance: int = 3) -> Fact:
        fact = Fact(uuid.uuid4().hex[:12], scope.user_id, scope.guild_id, text, datetime.now(UTC),
                    category, importance)
        await self._execute("INSERT INTO facts (id, user_id, scope, text, created_at, category, importance)"
                            " VALUES ($1,$2,$3,$4,$5,$6,$7)",
                            fact.id, scope.user_id, scope.key, text, fact.created_at, category, importance)
        return fact

    async def facts(self, scope: Scope) -> list[Fact]:
        rows = await self._fetch("SELECT id, text, created_at, category, importance FROM facts"
                                 " WHERE user_id = $1 AND scope = $2 ORDER BY created_at, id", scope.user_id, scope.key)
        return [Fact(r["id"], scope.user_id, scope.guild_id, r["text"], r["created_at"], r["category"],
                     int(r["importance"])) for r in rows]

    async def all_facts(self, user_id: str) -> list[Fact]:
        rows = await self._fetch("SELECT id, scope, text, created_at, category, importance FROM facts"
                                 " WHERE user_id = $1 ORDER BY created_at, id", user_id)
        return [Fact(r["id"], user_id, Scope.guild_of(r["scope"]), r["text"], r["created_at"], r["category"],
                     int(r["importance"])) for r in rows]

    async def remove_fact(self, scope: Scope, fact_id: str) -> bool:
        status = await self._execute("DELETE FROM facts WHERE user_id = $1 AND scope = $2 AND id = $3",
                                     scope.user_id, scope.key, fact_id)
        return status.endswith(" 1")

    async def forget(self, target: ForgetTarget) -> int:
        """Facts of the user (or scope); a target naming exchanges leaves facts alone."""
        if target.exchange_ids is not None:
            return 0
        where, args = _where(user_id=target.user_id, scope=target.scope)
        status = await self._execute(f"DELETE FROM facts WHERE {where}", *args)
        usage = await self._execute(f"DELETE FROM token_usage WHERE {where}", *args)
        del usage  # usage rows are bookkeeping, not memories; removed with the user but not counted
        # legacy records that name the user: set aside by a migration, not memories, but about them
        await self._execute(f"DELETE FROM legacy_unmappable WHERE {where}", *args)
        corrections = await self._execute(f"DELETE FROM profile_corrections WHERE {where}", *args)
        return int(status.rsplit(" ", 1)[-1]) + int(corrections.rsplit(" ", 1)[-1])

    async def corrections(self, scope: Scope) -> dict[str, tuple[str, str | None]]:
        """The scope's profile corrections: line key -> (the line as corrected, replacement or None)."""
        rows = await self._fetch("SELECT line_key, corrected, replacement FROM profile_corrections"
                                 " WHERE user_id = $1 AND scope = $2", scope.user_id, scope.key)
        return {r["line_key"]: (r["corrected"], r["replacement"]) for r in rows}

    async def curated(self, scope: Scope) -> Curated:
        """``facts`` and ``corrections`` of the scope in one statement (one round trip on the reply path)."""
        rows = await self._fetch(
            "SELECT id, text, created_at, category, importance, NULL AS line_key, NULL AS corrected,"
            " NULL AS replacement FROM facts WHERE user_id = $1 AND scope = $2"
            " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, line_key, corrected, replacement"
            " FROM profile_corrections WHERE user_id = $1 AND scope = $2"
            " ORDER BY created_at, id", scope.user_id, scope.key)
        return Curated([Fact(r["id"], scope.user_id, scope.guild_id, r["text"], r["created_at"], r["category"],
                             int(r["importance"])) for r in rows if r["id"] is not None],
                       {r["line_key"]: (r["corrected"], r["replacement"]) for r in rows if r["id"] is None})

    async def correct(self, scope: Scope, line_key: str, corrected: str, replacement: str | None) -> None:
        """Remove (``replacement`` None) or replace one profile line; a later correction of it wins."""
        await self._execute(
            "INSERT INTO profile_corrections (user_id, scope, line_key, corrected, replacement)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, scope, line_key) DO UPDATE SET"
            " corrected = EXCLUDED.corrected, replacement = EXCLUDED.replacement, created_at = now()",
            scope.user_id, scope.key, line_key, corrected, replacement)

    async def count(self, user_id: str, scope: Scope | None = None) -> int:
        """Saved facts and profile corrections of the user (or scope)."""
        where, args = _where(user_id=user_id, scope=scope)
        return int(await self._fetchval(f"SELECT (SELECT count(*) FROM facts WHERE {where})"
                                        f" + (SELECT count(*) FROM profile_corrections WHERE {where})", *args))

    async def record_usage(self, scope: Scope, prompt_tokens: int, completion_tokens: int) -> None:
        await self._execute(
            "INSERT INTO token_usage (user_id, scope, day, prompt_tokens, completion_tokens, requests)"
            " VALUES ($1, $2, current_date, $3, $4, 1) ON CONFLICT (user_id, scope, day) DO UPDATE SET"
            " prompt_tokens = token_usage.prompt_tokens + EXCLUDED.prompt_tokens,"
            " completion_tokens = token_usage.completion_tokens + EXCLUDED.completion_tokens,"
            " requests = token_usage.requests + 1",
            scope.user_id, scope.key, max(0, int(prompt_tokens)), max(0, int(completion_tokens)))

    async def usage(self, guild_id: str | None = None, user_id: str | None = None) -> list[UsageRow]:
        """Totals per user and scope, biggest first; filtered to one guild and/or one user."""
        rows = await self._fetch(
            "SELECT user_id, scope, sum(prompt_tokens) AS p, sum(completion_tokens) AS c,"
            " sum(requests) AS r FROM token_usage"
            " WHERE ($1::text IS NULL OR scope = $1) AND ($2::text IS NULL OR user_id = $2)"
            " GROUP BY user_id, scope ORDER BY sum(prompt_tokens + completion_tokens) DESC",
            None if guild_id is None else f"g:{guild_id}", user_id)
        return [UsageRow(r["user_id"], Scope.guild_of(r["scope"]), int(r["p"]), int(r["c"]), int(r["r"]))
                for r in rows]

    async def set_aside(self, items: Sequence[SetAside]) -> None:
        """Keep these unmappable legacy records (a re-run replaces a record's row)."""
        if not items:
            return
        # ASCII JSON: NUL bytes and lone surrogates (reasons to set a record aside) survive exactly
        sql = (
            "INSERT INTO legacy_unmappable (collection_uuid, legacy_id, collection, source, user_id, scope,"
            " reason, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (collection_uuid, legacy_id) DO UPDATE SET collection = EXCLUDED.collection,"
            " source = EXCLUDED.source, user_id = EXCLUDED.user_id, scope = EXCLUDED.scope,"
            " reason = EXCLUDED.reason, record = EXCLUDED.record, recorded_at = now()")
        rows = [(i.collection_uuid, i.legacy_id, i.collection, i.source, i.user_id, i.scope_key, i.reason,
                 json.dumps(dict(i.record), ensure_ascii=True, default=str)) for i in items]
        try:
            await self.pool.executemany(sql, rows)
        except _DRIVER_ERRORS as exc:
            raise ArchiveUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def set_aside_records(self, *, user_id: str | None = None,
                                collection: str | None = None) -> list[SetAside]:
        """The records set aside, oldest first; only those naming ``user_id`` / of ``collection``."""
        rows = await self._fetch(
            "SELECT collection_uuid, legacy_id, collection, source, user_id, scope, reason, record"
            " FROM legacy_unmappable WHERE ($1::text IS NULL OR user_id = $1)"
            " AND ($2::text IS NULL OR collection = $2) ORDER BY recorded_at, collection_uuid, legacy_id",
            user_id, collection)
        return [SetAside(r["collection_uuid"], r["legacy_id"], r["collection"], r["source"], r["reason"],
                         r["user_id"], r["scope"], json.loads(r["record"])) for r in rows]
