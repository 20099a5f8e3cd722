"""Forget, export, counts and rebuild: the part of ``HierarchicalMemoryManager`` that governs
what is kept about a user, in its own module (``MemoryGovernance`` is one of the manager's bases).

Forget removes from every tier and any queue; a derived tier that is down gets a durable
request (``ForgetPending`` says which). Export returns everything held about a user.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from memory.errors import ForgetPending, InvalidInput, TierUnavailable
from memory.extraction import normalise
from memory.models import (
    ForgetTarget,
    Relation,
    Scope,
    clean_id,
    clean_text,
)
from memory.parts import ManagerParts
from memory.tiers.chroma_client import vacuum_on_disk
from memory.tiers.dead_letters import DeadLetter
from memory.tiers.ledger import SetAside

log = logging.getLogger(__name__)
FORGET_TIER_TIMEOUT = 10.0  # seconds one derived tier gets per forget pass before it is queued instead


class MemoryGovernance(ManagerParts):
    """Forget, export, counts and rebuild (see the module doc)."""

    _zones: dict[str, tuple[float, tzinfo]]

    if TYPE_CHECKING:
        async def _export_preferences(self, user_id: str) -> dict[str, Any]: ...

    # ---- forget, export, rebuild ------------------------------------------------------------

    def _scope_of(self, user_id: str, guild_id: str | None, dm: bool) -> Scope | None:
        if guild_id is not None and dm:
            raise InvalidInput("name a guild or the DMs, not both", field="guild_id")
        if guild_id is not None:
            return Scope.of(user_id, guild_id)
        return Scope.of(user_id) if dm else None

    async def _targets(self, user_id: str, scope: Scope | None, exchange_id: str | None,
                       topic: str | None, last: bool) -> list[ForgetTarget]:
        if exchange_id is not None:
            found = await self.t.archive.find(user_id, clean_id(exchange_id, "exchange_id"))
            return [ForgetTarget(user_id, found.scope, (found.id,))] if found else []
        scopes = [scope] if scope is not None else await self.t.archive.scopes(user_id)
        if last:
            newest = [e for s in scopes for e in await self.t.archive.recent(s, 1)]
            newest.sort(key=lambda e: e.timestamp, reverse=True)
            return [ForgetTarget(user_id, newest[0].scope, (newest[0].id,))] if newest else []
        if topic is not None:
            topic = clean_text(topic, "topic", max_chars=200)
            targets = []
            for s in scopes:
                ids = await self._topic_ids(s, topic)
                if ids:
                    targets.append(ForgetTarget(user_id, s, tuple(sorted(ids))))
            return targets
        return [ForgetTarget(user_id, scope)]

    async def _topic_ids(self, scope: Scope, topic: str) -> set[str]:
        """The scope's exchanges about ``topic``, found without waiting for the queue.

        The archive's full text finds every exchange containing the words; the graph
        those it linked to the topic; exchanges the worker has not reached yet (queued
        or dead-lettered) are run through the extractor here, as the worker would. If
        the graph is down, every archived exchange of the scope is.
        """
        name = normalise(topic)
        ids = set(await self.t.archive.phrase_ids(scope, topic))
        try:
            ids |= set(await asyncio.wait_for(self.graph.topic_exchanges(scope, name), FORGET_TIER_TIMEOUT))
        except (TierUnavailable, TimeoutError) as exc:
            log.warning("graph unavailable for forget(topic); extracting the archive instead: %s", exc)
            unlinked = await self.t.archive.exchanges(scope.user_id, scope)
        else:
            unlinked = await self.t.archive.unprocessed(scope)
        unlinked = [e for e in unlinked if e.id not in ids]
        if unlinked:
            extractions = await self.extractor.extract(unlinked)
            ids |= {x.exchange_id for x in extractions if any(normalise(m.name) == name for m in x.mentions)}
        return ids

    async def forget(self, user_id: str, *, guild_id: str | None = None, dm: bool = False,
                     exchange_id: str | None = None, topic: str | None = None,
                     last: bool = False) -> dict[str, int]:
        """Remove memories from every tier; returns how many items each tier removed.

        No option: everything of the user in every scope. ``guild_id`` or ``dm``
        narrow it to one scope; ``exchange_id``, ``topic`` or ``last`` to some
        exchanges (at most one of the three; InvalidInput otherwise, and for a guild
        together with ``dm``). Derived tiers are cleared before and after the archive, so an
        exchange a worker was processing at that moment cannot survive. It never
        waits for the derived-work queue: a topic is resolved from the archive, the
        graph and the extractor (see ``_topic_ids``), and a tier that does not answer
        within ``FORGET_TIER_TIMEOUT`` is queued like one that is down.
        Raises ForgetPending (a TierUnavailable) if a derived tier is down: the
        rest is removed and the request is queued durably; the worker clears that
        tier as soon as it answers again.
        """
        user_id = clean_id(user_id, "user_id")
        scope = self._scope_of(user_id, guild_id, dm)
        if (exchange_id is not None) + (topic is not None) + bool(last) > 1:
            raise InvalidInput("name one exchange, one topic or the last exchange, not several",
                               field="exchange_id" if exchange_id is not None else "topic")
        targets = await self._targets(user_id, scope, exchange_id, topic, last)
        if scope is None and exchange_id is None and topic is None and not last:
            await self.t.policies.forget_settings(user_id)  # everything: their time zone too (where they live)
            self._zones.pop(user_id, None)
        return await self._forget_targets(targets)

    async def topic_count(self, user_id: str, topic: str, *, guild_id: str | None = None, dm: bool = False) -> int:
        """How many exchanges ``forget(user_id, topic=topic, ...)`` would remove now (the same scopes and
        matching), removing nothing: a forget can be put to the user with what it would take."""
        user_id = clean_id(user_id, "user_id")
        targets = await self._targets(user_id, self._scope_of(user_id, guild_id, dm), None, topic, False)
        return sum(len(t.exchange_ids or ()) for t in targets)

    async def scrub(self) -> dict[str, list[str]]:
        """After forgetting: make what was forgotten unreadable in the storage files too, not only
        unreachable through the tiers. Returns, per tier, what was done.

        PostgreSQL keeps deleted rows in its pages and write-ahead log, SQLite (Chroma on disk) in
        its free pages, until they are reused. This vacuums the archive (and, on a bundled server,
        deletes the old log segments) and rewrites the on-disk Chroma file. A bundled graph server
        clears its transaction log when it stops; servers run elsewhere keep their own logs and
        backups. Raises TierUnavailable when the archive cannot be reached.
        """
        a = self.t.addresses
        out = {"archive": await self.t.archive.scrub(own_server="archive" in a.bundled)}
        if a.chroma_path is None:
            out["summaries"] = ["a Chroma server: its files are its own"]
        else:
            try:
                done = await asyncio.to_thread(vacuum_on_disk, a.chroma_path)
            except sqlite3.Error as exc:  # held by a writer for longer than the wait: say so, try again later
                log.warning("on-disk Chroma store not rewritten: %s", exc)
                out["summaries"] = [f"not rewritten ({exc}); run scrub again when the bot is quiet"]
            else:
                out["summaries"] = ["VACUUM of the on-disk store" if done else "no on-disk store yet"]
        out["graph"] = (["its transaction log is cleared when the bundled server stops"] if "graph" in a.bundled
                        else ["a Bolt server: its files are its own"])
        return out

    async def _forget_targets(self, targets: Sequence[ForgetTarget]) -> dict[str, int]:
        """Remove each target from every tier (see ``forget``); raises ForgetPending like it."""
        removed = {"archive": 0, "cache": 0, "summaries": 0, "graph": 0, "facts": 0}
        pending: list[str] = []
        derived: list[tuple[str, Any]] = [("cache", self.cache), ("summaries", self.summaries),
                                          ("graph", self.graph)]
        for target in targets:
            down: list[str] = []
            for name, tier in derived:
                try:
                    removed[name] += await asyncio.wait_for(tier.forget(target), FORGET_TIER_TIMEOUT)
                except (TierUnavailable, TimeoutError):
                    down.append(name)
            removed["facts"] += await self.t.ledger.forget(target)
            removed["archive"] += await self.t.archive.forget(target)
            # after the archive: the job only stores sessions whose exchanges all still exist, and
            # summarises again what is left of a session
            await self.t.sessions.forget(target)
            for name, tier in derived:  # second pass: whatever a worker wrote meanwhile
                if name in down:
                    continue  # it was down a moment ago: the queued request covers it, no second wait
                try:
                    removed[name] += await asyncio.wait_for(tier.forget(target), FORGET_TIER_TIMEOUT)
                except (TierUnavailable, TimeoutError):
                    down.append(name)
            if down:
                await self.t.forgets.add(target, down)  # durable: the worker clears them when back
                pending += down
        if pending:
            raise ForgetPending(pending, removed)
        return removed

    async def retry_forgets(self) -> int:
        """Carry out queued forget requests on tiers that are back; returns requests completed."""
        return await self.worker.retry_forgets()

    async def dead_letter_list(self, limit: int = 100) -> list[DeadLetter]:
        """Exchanges the worker gave up on (newest first), with their errors."""
        return await self.dead_letters.recent(limit)

    async def retry_dead_letters(self, exchange_id: str | None = None) -> int:
        """Queue one dead-lettered exchange (or all) for the worker again; returns how many."""
        ids = None if exchange_id is None else clean_id(exchange_id, "exchange_id")
        queued = await self.dead_letters.retry(ids)
        self.worker.notify()
        return queued

    async def counts(self, user_id: str, guild_id: str | None = None, dm: bool = False) -> dict[str, int]:
        """What each tier holds for the user (one scope, or every scope); -1 for a tier that is down."""
        user_id = clean_id(user_id, "user_id")
        scope = self._scope_of(user_id, guild_id, dm)
        out: dict[str, int] = {}
        for name, tier in (("archive", self.t.archive), ("cache", self.cache), ("summaries", self.summaries),
                           ("graph", self.graph), ("facts", self.t.ledger)):
            try:
                out[name] = await tier.count(user_id, scope)
            except TierUnavailable:
                out[name] = -1
        return out

    async def queued(self, user_id: str, guild_id: str | None = None, dm: bool = False) -> int:
        """How many of the user's exchanges (one scope, or every scope) are archived but not yet
        through the derived tiers: what the profile, topics and summaries do not show yet."""
        user_id = clean_id(user_id, "user_id")
        return await self.t.outbox.pending_for(user_id, self._scope_of(user_id, guild_id, dm))

    async def profile(self, user_id: str, guild_id: str | None = None, limit: int = 20) -> list[Relation]:
        """The scope's most mentioned entities and topics (raises TierUnavailable if the graph is down)."""
        return await self.graph.profile(Scope.of(user_id, guild_id), limit)

    async def existing_exchange_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are archived already."""
        return await self.t.archive.existing(list(ids))

    async def set_aside(self, records: Sequence[SetAside]) -> None:
        """Keep legacy records a migration could not map, for the operator (forget(user) removes
        those naming the user)."""
        await self.t.ledger.set_aside(records)

    async def set_aside_records(self, *, user_id: str | None = None,
                                collection: str | None = None) -> list[SetAside]:
        """The legacy records set aside by migrations; those naming ``user_id`` / of ``collection``."""
        return await self.t.ledger.set_aside_records(
            user_id=None if user_id is None else clean_id(user_id, "user_id"), collection=collection)

    async def export(self, user_id: str) -> dict[str, Any]:
        """Everything held about the user, JSON-serialisable (the archive is complete;
        derived tiers are included as they are now)."""
        user_id = clean_id(user_id, "user_id")
        exchanges = await self.t.archive.exchanges(user_id)
        scopes = sorted({e.scope for e in exchanges}, key=lambda s: s.key)
        out: dict[str, Any] = {
            "user_id": user_id, "exported_at": datetime.now(UTC).isoformat(),
            "exchanges": [e.to_json() for e in exchanges],
            "facts": [{"id": f.id, "guild_id": f.guild_id, "text": f.text,
                       "created_at": f.created_at.isoformat(), "category": f.category,
                       "importance": f.importance} for f in await self.t.ledger.all_facts(user_id)],
            "usage": [{"guild_id": u.guild_id, "prompt_tokens": u.prompt_tokens,
                       "completion_tokens": u.completion_tokens, "requests": u.requests}
                      for u in await self.t.ledger.usage(user_id=user_id)],
            "legacy_set_aside": [{"legacy_id": r.legacy_id, "collection": r.collection, "reason": r.reason,
                                  "record": dict(r.record)}
                                 for r in await self.t.ledger.set_aside_records(user_id=user_id)],
            "dead_letters": [{"exchange_id": d.exchange_id, "attempts": d.attempts, "error": d.error,
                              "failed_at": d.failed_at.isoformat()}
                             for d in await self.dead_letters.of_user(user_id)],
            "preferences": await self._export_preferences(user_id),
        }
        try:
            out["summaries"] = [{"exchange_id": r.exchange_id, "chunk": r.chunk, "scope": r.scope_key,
                                 "summary": r.summary, "timestamp": r.timestamp.isoformat()}
                                for r in await self.summaries.records(user_id)]
        except TierUnavailable as exc:
            out["summaries"] = {"unavailable": str(exc)}
        try:
            out["graph"] = {s.key: [{"name": rel.label or rel.name, "kind": rel.kind, "count": rel.count,
                                     "first_seen": rel.first_seen.isoformat(),
                                     "last_seen": rel.last_seen.isoformat()}
                                    for rel in await self.graph.profile(s, 1000)] for s in scopes}
        except TierUnavailable as exc:
            out["graph"] = {"unavailable": str(exc)}
        try:
            out.update(await self.profiles.export(user_id, scopes))
        except TierUnavailable as exc:
            out["profile"] = out["typed_facts"] = {"unavailable": str(exc)}
        out["session_summaries"] = [{"guild_id": s.guild_id, "started_at": s.started_at.isoformat(),
                                     "ended_at": s.ended_at.isoformat(), "exchange_ids": list(s.exchange_ids),
                                     "text": s.text} for s in await self.t.sessions.all(user_id)]
        try:
            out["rolling_summaries"] = await self.t.state.rolling_summaries(user_id)
        except TierUnavailable as exc:
            out["rolling_summaries"] = {"unavailable": str(exc)}
        return out

    async def rebuild(self, user_id: str | None = None) -> int:
        """Regenerate cache, summaries and graph from the archive (one user, or everyone).

        Returns the number of exchanges queued; ``flush()`` waits for them.
        """
        users = [clean_id(user_id, "user_id")] if user_id is not None else await self.t.archive.users()
        if user_id is None:
            await self.t.cache.clear()  # type: ignore[attr-defined]
        for u in users:
            target = ForgetTarget(u)
            await self.cache.forget(target)
            await self.summaries.forget(target)
            await self.graph.forget(target)
        queued = await self.t.outbox.enqueue_all(user_id)
        self.worker.notify()
        return queued
