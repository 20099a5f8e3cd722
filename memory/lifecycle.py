"""What happens to exchanges after they are stored, and the preferences that govern it.

``ExchangeLifecycle`` is a part of ``HierarchicalMemoryManager`` kept in its own
module: edits and deletions of the messages exchanges came from (Discord's own
events), pause and the one-time notice per user and scope, per-guild settings,
retention, and the list of active conversations. Everything is stored in
PostgreSQL (``memory.tiers.policy``), so it survives restarts and every process
sees the same.

- An **edit** replaces the exchange's text in the archive, counts a revision and
  queues the exchange again in the same transaction; the worker drops the old
  summaries and graph entries before deriving them from the new text. The
  cache list and rolling summaries of the scope are dropped at once (they are
  rebuilt from the archive), or queued like any forget when Redis is down.
- A **delete** forgets the exchange in every tier, exactly like ``forget``.
- **Retention** removes exchanges older than ``MEMORY__RETENTION_DAYS`` (or their
  guild's shorter setting) from every tier, like ``forget``, in a job the worker
  runs about every ``MEMORY__RETENTION_CHECK_MINUTES``; one process runs it per
  interval, and what it removed is kept for ``stats``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import zoneinfo
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from memory.errors import ForgetPending, InvalidInput, NotFound, TierUnavailable
from memory.models import (
    ActiveConversation,
    Exchange,
    ForgetTarget,
    GuildSettings,
    MessageState,
    RetentionReport,
    Scope,
    clean_id,
    clean_text,
)

if TYPE_CHECKING:
    from memory.settings import MemorySettings
    from memory.stack import Tiers
    from memory.worker import DerivedWorker

log = logging.getLogger(__name__)

MAX_PERSONA_CHARS = 4000
MAX_GUILD_CHANNELS = 50
RETENTION_BATCH = 500
RETENTION_MAX_BATCHES = 40  # per run; the rest waits for the next run
RETENTION_JOB = "retention"
ZONE_CACHE_SECONDS = 60.0  # how long a process keeps a user's time zone before reading it again


def _zone_info(name: str | None, user_id: str) -> tzinfo:
    """The zone a stored name means; UTC for none, or for a name this machine's tz data lacks."""
    if name is None:
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        log.warning("time zone %r of user %s unknown here; using UTC", name, user_id)
        return UTC


@functools.cache
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()} | {"utc": "UTC"}


_CONTINENTS = frozenset({"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe",
                        "Indian", "Pacific"})
_NOT_CITIES = frozenset({"north", "south", "east", "west", "central", "eastern", "western", "mountain", "pacific",
                         "act", "nsw"})


@functools.cache
def _zone_cities() -> dict[str, list[str]]:
    cities: dict[str, list[str]] = {}
    for name in sorted(_zone_names().values()):
        region, _, city = name.partition("/")
        city = city.rsplit("/", 1)[-1].lower()
        if region in _CONTINENTS and city not in _NOT_CITIES:  # not US/Eastern, Australia/West
            cities.setdefault(city, []).append(name)
    return cities


def _same_clock(names: Sequence[str]) -> bool:
    """Whether the zones keep the same time (one zone under several names, as Istanbul is)."""
    year = datetime.now(UTC).year
    instants = [datetime(y, m, 1, tzinfo=UTC) for y in (year, year + 1) for m in (1, 4, 7, 10)]
    return len({tuple(i.astimezone(zoneinfo.ZoneInfo(n)).utcoffset() for i in instants) for n in names}) == 1


def zone_name(name: str) -> str:
    """The IANA name of the time zone ``name`` means, in any case and with spaces for underscores
    ("europe/berlin", "America/New York"), or a city only one zone is named after ("lisbon",
    "new york"); InvalidInput for anything else."""
    text = clean_text(name, "time_zone", max_chars=64).strip()
    key = "_".join(text.split()).lower()
    found = _zone_names().get(key)
    if found is None and (cities := _zone_cities().get(key)) and _same_clock(cities):
        found = max(cities, key=lambda n: n.count("/"))  # aliases of one zone: the full name
    if found is None:
        raise InvalidInput("not a time zone name; use one like Europe/Berlin or America/New_York",
                           field="time_zone")
    return found


def zone_suggestions(typed: str, limit: int = 25) -> list[str]:
    """Time zone names for a half-typed ``typed`` ("berl" -> Europe/Berlin): those whose city starts
    with it first, then any containing it."""
    key = "_".join(typed.split()).lower()
    names = sorted(_zone_names().values())
    city = [n for n in names if n.lower().rsplit("/", 1)[-1].startswith(key)]
    rest = [n for n in names if key in n.lower() and n not in city]
    return (city + rest)[:limit]


class ExchangeLifecycle:
    """Edits, deletions, pause, notices, guild settings, retention and activity (see the module doc)."""

    t: Tiers
    settings: MemorySettings
    worker: DerivedWorker
    _zones: dict[str, tuple[float, tzinfo]]

    if TYPE_CHECKING:
        async def _forget_targets(self, targets: Sequence[ForgetTarget]) -> dict[str, int]: ...

    # ---- edits and deletions ------------------------------------------------------------------

    async def update_exchange(self, user_id: str, exchange_id: str, *, user_message: str | None = None,
                              bot_response: str | None = None) -> Exchange:
        """Replace the exchange's user message and/or bot response; summaries, graph and cache are
        derived again from the new text (the old entries are replaced, not kept beside it).

        Returns the exchange as now stored (unchanged if the text is the same).
        Raises InvalidInput (nothing changed), NotFound, or ArchiveUnavailable.
        """
        user_id = clean_id(user_id, "user_id")
        exchange_id = clean_id(exchange_id, "exchange_id")
        if user_message is None and bot_response is None:
            raise InvalidInput("give the new user_message or bot_response", field="user_message")
        if user_message is not None:
            user_message = clean_text(user_message, "user_message")
        if bot_response is not None:
            bot_response = clean_text(bot_response, "bot_response")
        current = await self.t.archive.find(user_id, exchange_id)
        if current is None:
            raise NotFound(f"exchange {exchange_id}")
        if user_message in (None, current.user_message) and bot_response in (None, current.bot_response):
            return current
        updated = await self.t.archive.update_text(
            user_id, exchange_id, user_message=user_message, bot_response=bot_response,
            metadata={"edited_at": datetime.now(UTC).isoformat()})
        if updated is None:
            raise NotFound(f"exchange {exchange_id}")  # forgotten meanwhile
        # its session is summarised again from the new text by the sessions job
        await self.t.sessions.forget(ForgetTarget(user_id, updated.scope, (exchange_id,)))
        await self._drop_cached(updated.scope)
        self.worker.notify()
        return updated

    async def _drop_cached(self, scope: Scope) -> None:
        """Drop the scope's recent list and rolling summaries; queue it if Redis is down."""
        target = ForgetTarget(scope.user_id, scope)
        try:
            await asyncio.wait_for(self.t.cache.forget(target), self.settings.retrieval.cache_timeout_ms / 1000)
        except (TierUnavailable, TimeoutError) as exc:
            log.warning("cache of %s not cleared after an edit, queued: %s", scope.label, exc)
            await self.t.forgets.add(target, ["cache"])

    async def remembers_message(self, user_id: str, message_id: str) -> bool:
        """Whether an exchange of ``user_id`` answers Discord message ``message_id`` (so the bot need
        not fetch an edited message's files when it never stored that message)."""
        return bool(await self.t.archive.by_messages([clean_id(message_id, "message_id")],
                                                     user_id=clean_id(user_id, "user_id")))

    async def update_message(self, user_id: str, message_id: str, user_message: str) -> Exchange | None:
        """The user edited Discord message ``message_id``: store its new text in the exchange
        answering it (see ``update_exchange``). None when no exchange answers that message."""
        found = await self.t.archive.by_messages([clean_id(message_id, "message_id")],
                                                 user_id=clean_id(user_id, "user_id"))
        if not found:
            return None
        return await self.update_exchange(found[0].user_id, found[0].id, user_message=user_message)

    async def forget_message(self, message_id: str, *, channel_id: str | None = None,
                             user_id: str | None = None) -> dict[str, int] | None:
        """Discord message ``message_id`` was deleted: forget the exchange answering it in every
        tier, like ``forget(exchange_id=...)``. Narrowed to its channel and/or author when given
        (a delete event does not name the author). None when no exchange answers that message.

        Raises ForgetPending like ``forget`` when a derived tier is down.
        """
        return await self.forget_messages([message_id], channel_id=channel_id, user_id=user_id)

    async def forget_messages(self, message_ids: Sequence[str], *, channel_id: str | None = None,
                              user_id: str | None = None) -> dict[str, int] | None:
        """``forget_message`` for many messages at once (a bulk delete): one lookup, one forget."""
        found = await self.t.archive.by_messages(
            [clean_id(m, "message_id") for m in message_ids],
            user_id=None if user_id is None else clean_id(user_id, "user_id"),
            channel_id=None if channel_id is None else clean_id(channel_id, "channel_id"))
        if not found:
            return None
        by_owner: dict[Scope, list[str]] = {}
        for e in found:
            by_owner.setdefault(e.scope, []).append(e.id)
        return await self._forget_targets([ForgetTarget(s.user_id, s, tuple(ids)) for s, ids in by_owner.items()])

    # ---- pause and notice ---------------------------------------------------------------------

    async def pause(self, user_id: str, guild_id: str | None = None) -> bool:
        """Stop storing new exchanges of the user in this scope (guild, or DMs); existing memories
        are kept and still used. Returns False if it was paused already."""
        return await self.t.policies.set_paused(Scope.of(user_id, guild_id), True)

    async def resume(self, user_id: str, guild_id: str | None = None) -> bool:
        """Store the user's exchanges in this scope again. Returns False if it was not paused."""
        return await self.t.policies.set_paused(Scope.of(user_id, guild_id), False)

    async def paused_scopes(self, user_id: str) -> list[Scope]:
        return await self.t.policies.paused_scopes(clean_id(user_id, "user_id"))

    async def message_state(self, user_id: str, guild_id: str | None = None, *,
                            claim_notice: bool = True) -> MessageState:
        """Pause, the one-time notice (claimed here: due for exactly one message per user and
        scope) and the guild's settings, in one round trip. Raises ArchiveUnavailable."""
        return await self.t.policies.message_state(Scope.of(user_id, guild_id), claim_notice=claim_notice)

    # ---- the user's time zone -----------------------------------------------------------------

    async def set_time_zone(self, user_id: str, name: str | None) -> str | None:
        """Set the time zone the user's dates are read ("yesterday", "on 5 March") and shown in, the
        same in every guild and DMs; None goes back to UTC. Returns the zone's IANA name.
        Raises InvalidInput (nothing changed) for a name that is not a time zone."""
        user_id = clean_id(user_id, "user_id")
        zone = None if name is None else zone_name(name)
        await self.t.policies.set_time_zone(user_id, zone)
        self._zones.pop(user_id, None)
        return zone

    async def time_zone(self, user_id: str) -> str | None:
        """The user's time zone (an IANA name), or None for UTC. Raises ArchiveUnavailable."""
        return await self.t.policies.time_zone(clean_id(user_id, "user_id"))

    async def _zone(self, user_id: str) -> tzinfo:
        """The user's time zone for a context, kept ``ZONE_CACHE_SECONDS`` per process; UTC when the
        archive does not answer in time (a context never waits or fails for it)."""
        cached = self._zones.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < ZONE_CACHE_SECONDS:
            return cached[1]
        try:
            name = await asyncio.wait_for(self.t.policies.time_zone(user_id),
                                          self.settings.retrieval.archive_timeout_ms / 1000)
        except (TierUnavailable, TimeoutError):
            return UTC
        zone = _zone_info(name, user_id)
        if len(self._zones) > 10_000:
            self._zones.clear()
        self._zones[user_id] = (time.monotonic(), zone)
        return zone

    async def _zones_of(self, user_ids: Collection[str]) -> dict[str, tzinfo]:
        """The time zones of those of ``user_ids`` not on UTC, for the worker, whose rules read "tomorrow"
        and "last month" in the speaker's zone. Raises ArchiveUnavailable (the batch waits, as in any
        outage: read in UTC it would be dated a day off for good)."""
        named = await self.t.policies.time_zones(sorted(user_ids))
        return {user_id: _zone_info(name, user_id) for user_id, name in named.items()}

    # ---- guild settings -----------------------------------------------------------------------

    async def guild_settings(self, guild_id: str) -> GuildSettings:
        """The guild's settings (all unset when its admins never set any)."""
        guild_id = clean_id(guild_id, "guild_id")
        return await self.t.policies.guild(guild_id) or GuildSettings(guild_id)

    async def update_guild_settings(self, guild_id: str, *, updated_by: str, persona: str | None = None,
                                    clear_persona: bool = False, add_channels: Sequence[str] = (),
                                    remove_channels: Sequence[str] = (), retention_days: int | None = None,
                                    clear_retention: bool = False) -> GuildSettings:
        """Change what is given (None / empty / False leaves a setting alone); returns the result.

        Raises InvalidInput (nothing changed) for a malformed value, over
        ``MAX_GUILD_CHANNELS`` always-on channels, or retention outside 1-36500 days.
        Who may call this (the guild's admins) is the caller's check.
        """
        guild_id = clean_id(guild_id, "guild_id")
        if persona is not None:
            persona = clean_text(persona, "persona", max_chars=MAX_PERSONA_CHARS).strip()
        add = [clean_id(c, "channel_id") for c in add_channels]
        remove = [clean_id(c, "channel_id") for c in remove_channels]
        if retention_days is not None and (isinstance(retention_days, bool) or not isinstance(retention_days, int)
                                           or not 1 <= retention_days <= 36500):
            raise InvalidInput("must be a whole number of days from 1 to 36500", field="retention_days")
        if add:
            current = (await self.guild_settings(guild_id)).always_on_channels
            if len((current | set(add)) - set(remove)) > MAX_GUILD_CHANNELS:
                raise InvalidInput(f"at most {MAX_GUILD_CHANNELS} always-on channels per guild",
                                   field="always_on_channels")
        return await self.t.policies.update_guild(
            guild_id, updated_by=clean_id(updated_by, "updated_by"), persona=persona, clear_persona=clear_persona,
            add_channels=add, remove_channels=remove, retention_days=retention_days,
            clear_retention=clear_retention)

    # ---- activity and retention ---------------------------------------------------------------

    async def active_conversations(self, minutes: float | None = None, *, guild_id: str | None = None,
                                   limit: int = 50) -> list[ActiveConversation]:
        """Users and channels with an exchange stored in the last ``minutes`` (default
        ``MEMORY__ACTIVE_MINUTES``), newest first; only one guild's when ``guild_id`` is given."""
        minutes = self.settings.memory.active_minutes if minutes is None else minutes
        if minutes <= 0:
            raise InvalidInput("must be positive", field="minutes")
        since = datetime.now(UTC) - timedelta(minutes=minutes)
        return await self.t.policies.active(since, guild_id=None if guild_id is None else
                                            clean_id(guild_id, "guild_id"), limit=limit)

    async def apply_retention(self, *, force: bool = False) -> RetentionReport | None:
        """Remove exchanges past their retention from every tier, as ``forget`` does.

        Without ``force`` it runs only if no process ran it in the last
        ``MEMORY__RETENTION_CHECK_MINUTES`` (None otherwise). A derived tier that is
        down is queued like any forget and named in ``pending``. What was removed is
        logged and added to the totals ``stats`` shows. Raises ArchiveUnavailable.
        """
        policy = self.settings.memory
        if not force and not await self.t.policies.claim_job(RETENTION_JOB, policy.retention_check_minutes * 60):
            return None
        removed: dict[str, int] = {}
        pending: set[str] = set()
        expired = 0
        for _ in range(RETENTION_MAX_BATCHES):
            rows = await self.t.policies.expired(policy.retention_days, RETENTION_BATCH)
            if not rows:
                break
            by_owner: dict[tuple[str, str], list[str]] = {}
            for exchange_id, user_id, scope_key in rows:
                by_owner.setdefault((user_id, scope_key), []).append(exchange_id)
            targets = [ForgetTarget(u, Scope(u, Scope.guild_of(key)), tuple(ids)) for (u, key), ids in by_owner.items()]
            try:
                counts = await self._forget_targets(targets)
            except ForgetPending as exc:
                counts, pending = exc.removed, pending | set(exc.pending)
            for name, n in counts.items():
                removed[name] = removed.get(name, 0) + n
            expired += len(rows)
            if len(rows) < RETENTION_BATCH:
                break
        await self.t.policies.record_job(RETENTION_JOB, removed, removed.get("archive", 0))
        if expired:
            log.info("retention removed %d expired exchanges: %s%s", expired,
                     ", ".join(f"{k} {v}" for k, v in sorted(removed.items())),
                     f" (queued for {', '.join(sorted(pending))})" if pending else "")
        return RetentionReport(expired, removed, tuple(sorted(pending)))

    async def _activity_stats(self) -> dict[str, Any]:
        """The ``MemoryStats`` fields about activity and retention (archive up)."""
        job = await self.t.policies.job(RETENTION_JOB)
        return {"active": tuple(await self.active_conversations()),
                "active_minutes": self.settings.memory.active_minutes,
                "retention_removed": int(job["total_removed"]) if job else 0,
                "retention_last_run": job["last_run"] if job else None}

    async def _export_preferences(self, user_id: str) -> dict[str, Any]:
        return {"paused": [s.label for s in await self.paused_scopes(user_id)],
                "time_zone": await self.time_zone(user_id)}
