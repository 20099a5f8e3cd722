"""HierarchicalMemoryManager: the one entry point of the memory library.

Write path: validate -> archive (committed, with its outbox row) -> cache ->
return the id; summaries, embeddings and graph are built by the worker.
Read path: embed the query once, gather every tier under its own timeout,
fuse, fetch full text from the archive, pack to a token budget. This class is
the only place that decides how to degrade when a tier is unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, TypeVar

from memory.anchors import anchor, resolve, stated_in
from memory.context import ConversationContext, RankedExchange
from memory.errors import InvalidInput, MemoryStoreError, TierUnavailable
from memory.expansion import CandidateExpansion
from memory.extraction import query_names
from memory.governance import MemoryGovernance
from memory.lifecycle import ExchangeLifecycle
from memory.metrics import Metrics
from memory.models import (
    Exchange,
    Hit,
    Scope,
    TierReport,
    TypedFact,
    clean_id,
    clean_metadata,
    clean_text,
    utc,
)
from memory.profile import Profile, build_profile
from memory.protocols import CacheTier, Embedder, Extractor, GraphTier, SummaryTier
from memory.ranking import aged, fuse
from memory.services import BotServices
from memory.sessions import JOB as SESSIONS_JOB
from memory.sessions import SHOWN as SESSIONS_SHOWN
from memory.sessions import SessionSummary, asks_about_sessions, summarise_finished
from memory.settings import MemorySettings
from memory.stack import Tiers, open_tiers
from memory.tiers.dead_letters import PostgresDeadLetters, PostgresStaleCaches
from memory.timeq import Window, window
from memory.tokens import count_tokens
from memory.understanding import ProfileBook
from memory.worker import DerivedWorker

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_QUERY_CHARS = 4000


class _Opener:
    """``async with HierarchicalMemoryManager.from_env() as memory``."""

    def __init__(self, settings: MemorySettings | None, metrics: Metrics | None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.manager: HierarchicalMemoryManager | None = None

    async def __aenter__(self) -> HierarchicalMemoryManager:
        self.manager = await HierarchicalMemoryManager.create(self.settings, self.metrics)
        return self.manager

    async def __aexit__(self, *exc: object) -> None:
        if self.manager is not None:
            await self.manager.aclose()


class HierarchicalMemoryManager(ExchangeLifecycle, MemoryGovernance, BotServices, CandidateExpansion):
    """Coordinates the four tiers. Build with ``from_env()`` or ``create()``; close with ``aclose()``.

    Edits, deletions, pause, guild settings and retention: see ``memory.lifecycle``; forget,
    export and rebuild: ``memory.governance``; rate limits, facts, usage and stats: ``memory.services``.
    """

    def __init__(self, tiers: Tiers, settings: MemorySettings, metrics: Metrics | None = None) -> None:
        self.t = tiers
        self.settings = settings
        self.metrics = metrics or Metrics()  # a private registry when the caller exports none
        self.cache: CacheTier = tiers.cache
        self.summaries: SummaryTier = tiers.summaries
        self.graph: GraphTier = tiers.graph
        self.embedder: Embedder = tiers.embedder
        self.extractor: Extractor = tiers.extractor
        w = settings.worker
        self.dead_letters = PostgresDeadLetters(tiers.archive.pool)
        self.worker = DerivedWorker(tiers.outbox, tiers.extractor, tiers.embedder, tiers.summaries,
                                    tiers.graph, tiers.cache, forgets=tiers.forgets,
                                    stale_caches=PostgresStaleCaches(tiers.archive.pool), batch_size=w.batch_size,
                                    lease_seconds=w.lease_seconds, idle_poll=w.idle_poll_seconds,
                                    max_attempts=w.max_attempts, retry_seconds=w.retry_seconds,
                                    metrics=self.metrics, statistics=tiers.archive.refresh_statistics,
                                    zones=self._zones_of)
        self.profiles = ProfileBook(tiers.graph, tiers.ledger, self._zone)
        self.worker.every(settings.memory.retention_check_minutes * 60, self.apply_retention, "retention")
        self.worker.every(min(300.0, settings.retrieval.session_idle_minutes * 60), self.summarise_sessions,
                          "sessions")
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reembed: asyncio.Task[None] | None = None  # see _embed_again
        # a local throttle, not shared state: each process bounds its own CPU-bound work
        self._reads = asyncio.Semaphore(settings.retrieval.max_concurrent)
        self._zones: dict[str, tuple[float, tzinfo]] = {}  # user -> (read at, time zone); see _zone

    @classmethod
    def from_env(cls, settings: MemorySettings | None = None, metrics: Metrics | None = None) -> _Opener:
        """An async context manager yielding a started manager (settings from env/.env by default);
        ``metrics`` receives its counters (see ``memory.metrics``)."""
        return _Opener(settings, metrics)

    @classmethod
    async def create(cls, settings: MemorySettings | None = None,
                     metrics: Metrics | None = None) -> HierarchicalMemoryManager:
        """Start bundled servers for unconfigured tiers, connect every tier, start the worker."""
        settings = settings or MemorySettings()
        tiers = await open_tiers(settings)
        try:
            manager = cls(tiers, settings, metrics)
            previous = await manager.summaries.stored_model()
            if previous is None:  # an empty store is the configured model's from the start
                await manager.summaries.mark_model(manager.embedder.model_id)
            await manager._warm_up()
        except BaseException:
            await tiers.stack.aclose()  # a failed start stops the bundled servers it started
            raise
        if settings.worker.in_process:
            manager._task = asyncio.create_task(manager.worker.run_forever(manager._stop),
                                                name="mnemo-derived-worker")
        if previous not in (None, manager.embedder.model_id):
            manager._reembed = asyncio.create_task(manager._embed_again(str(previous), manager.embedder.model_id),
                                                   name="mnemo-embed-again")
        return manager

    async def _embed_again(self, previous: str, current: str) -> None:
        """Vectors of two models do not compare: the stored summaries came from ``previous``, so
        everything is derived again from the archive (``rebuild``), then the store is marked as
        ``current``'s. Runs in the background; until the worker is through, searches find fewer
        summaries. A process stopped before the mark queues it all again at its next start."""
        log.warning("the stored summaries were embedded with %s, not %s: embedding them again",
                    previous, current)
        try:
            queued = await self.rebuild()
            await self.summaries.mark_model(current)
        except MemoryStoreError as exc:  # tried again at the next start, as the store is not marked
            log.error("embedding the summaries again with %s failed: %s", current, exc)
            return
        log.warning("%d exchanges queued to be embedded with %s", queued, current)

    async def _warm_up(self) -> None:
        """Load the embedding model and the tokenizer and run one cheap query per tier, so the
        first real context is not assembled on a cold model, JIT or connection pool. The
        tokenizer loads in a thread: loaded lazily, its ~0.5 s would block the event loop
        in the worker's first batch and time out the tier reads running beside it."""
        probe = Scope("mnemo-warmup")

        async def read_path() -> None:
            vectors = await self.embedder.embed(["warming up"], query=True)
            await asyncio.gather(self.summaries.search(probe, vectors[0], 1),
                                 self.graph.related(probe, ["warmup"], 1),
                                 self.graph.facts(probe, support=False),
                                 self.t.archive.search(probe, "warming up", 1), self.cache.recent(probe, 1))

        await asyncio.to_thread(count_tokens, "warming up")

        with contextlib.suppress(TierUnavailable):
            await read_path()

    async def __aenter__(self) -> HierarchicalMemoryManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the worker, close every client, stop the bundled servers this process started.

        Every resource is closed even if the worker task had failed; an error the
        task ended with is logged (and a BaseException re-raised) only after that.
        """
        self._stop.set()
        if self._reembed is not None and not self._reembed.done():
            self._reembed.cancel()  # not marked: the next start queues it again
            with contextlib.suppress(asyncio.CancelledError):
                await self._reembed
        task, self._task = self._task, None
        try:
            if task is not None:
                done, _ = await asyncio.wait({task}, timeout=30)  # it stops between batches
                if not done:
                    task.cancel()  # a batch stuck on a hung tier: its lease expires, another worker redoes it
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        except Exception:  # reported, then the stores are closed regardless
            log.exception("the derived-tier worker task had failed")
        finally:
            await self.t.stack.aclose()

    # ---- write path -------------------------------------------------------------------------

    async def store_conversation(self, user_id: str, user_message: str, bot_response: str,
                                 guild_id: str | None = None, channel_id: str | None = None,
                                 timestamp: datetime | None = None,
                                 metadata: Mapping[str, Any] | None = None, *,
                                 exchange_id: str | None = None, message_id: str | None = None) -> str:
        """Archive one exchange and queue its derived work; returns its id.

        Raises InvalidInput (nothing written) or ArchiveUnavailable. A cache
        outage does not fail the call: the worker drops the stale list later.
        Storing an id that exists already changes nothing and returns that id.
        ``message_id`` names the (Discord) message answered, for its edits and deletion.
        Raises MemoryPaused (an InvalidInput) when the user paused memory in this scope.
        """
        scope = Scope.of(user_id, guild_id)
        exchange = Exchange(
            id=clean_id(exchange_id, "exchange_id") if exchange_id is not None else uuid.uuid4().hex,
            user_id=scope.user_id, guild_id=scope.guild_id,
            channel_id=None if channel_id is None else clean_id(channel_id, "channel_id"),
            user_message=clean_text(user_message, "user_message"),
            bot_response=clean_text(bot_response, "bot_response"),
            timestamp=self._timestamp(timestamp), metadata=clean_metadata(metadata),
            message_id=None if message_id is None else clean_id(message_id, "message_id"))
        if not await self.t.archive.insert(exchange):
            return exchange.id
        self.metrics.stored.inc()
        try:
            await asyncio.wait_for(self.cache.push(exchange), self.settings.retrieval.cache_timeout_ms / 1000)
        except (TierUnavailable, TimeoutError) as exc:
            log.warning("cache missed exchange %s: %s", exchange.id, exc)
            await self.t.archive.mark_cache_stale(exchange.id)
        self.worker.notify()
        return exchange.id

    def _timestamp(self, value: datetime | None) -> datetime:
        window = self.settings.timestamps
        return utc(value, "timestamp", earliest=window.earliest_at, max_future=window.max_future)

    async def pending(self) -> int:
        """Exchanges archived but not yet through the derived tiers (dead letters excluded)."""
        return await self.t.outbox.pending()

    async def flush(self, timeout: float = 300.0) -> None:
        """Return once every stored exchange has reached the derived tiers.

        Raises TierUnavailable("worker") if work is still pending after ``timeout``
        seconds (a derived tier is down, or no worker process runs), with the last
        error seen. Dead-lettered exchanges are not pending: ``dead_letter_list``.
        """
        deadline = time.monotonic() + timeout
        if self._reembed is not None:  # a model change queues its work first
            await asyncio.wait_for(asyncio.shield(self._reembed), timeout)
        while (pending := await self.t.outbox.pending()) > 0:
            if time.monotonic() > deadline:
                error = await self.t.outbox.last_error() or self.worker.last_error or "none recorded"
                raise TierUnavailable("worker", f"{pending} exchanges still pending after {timeout:.0f}s; "
                                                f"last error: {error}")
            done = 0
            if self._task is not None and not self._task.done():
                self.worker.notify()  # one loop per process: concurrent batches only contend in the graph
            elif self.settings.worker.in_process:
                with contextlib.suppress(TierUnavailable):
                    done = await self.worker.run_once()
            if done == 0:
                await asyncio.sleep(0.05)

    # ---- read path --------------------------------------------------------------------------

    async def _timed(self, name: str, aw: Awaitable[T], timeout_ms: int,
                     reports: dict[str, TierReport]) -> T | None:
        start = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                result = await aw
        except TimeoutError:
            self.metrics.tier_read(name, "timeout", time.perf_counter() - start)
            reports[name] = TierReport(name, "timeout", (time.perf_counter() - start) * 1000,
                                       detail=f"no answer within {timeout_ms} ms")
            return None
        except TierUnavailable as exc:
            self.metrics.tier_read(name, "failed", time.perf_counter() - start)
            reports[name] = TierReport(name, "failed", (time.perf_counter() - start) * 1000, detail=str(exc))
            return None
        self.metrics.tier_read(name, "ok", time.perf_counter() - start)
        hits = len(result) if isinstance(result, list | tuple) else getattr(result, "hits", 0)
        previous = reports.get(name)
        if previous is not None and previous.status != "ok":
            return result  # an earlier call of this tier failed: keep that in the report
        ms = (time.perf_counter() - start) * 1000 + (previous.ms if previous else 0.0)
        reports[name] = TierReport(name, "ok", ms, hits + (previous.hits if previous else 0))
        return result

    async def _recent(self, scope: Scope, reports: dict[str, TierReport]) -> list[Exchange]:
        r = self.settings.retrieval
        size = self.settings.redis.cache_size
        cached = await self._timed("cache", self.cache.recent(scope, size), r.cache_timeout_ms, reports)
        if cached is not None:
            return cached
        rows = await self._timed("archive", self.t.archive.recent(scope, size), r.archive_timeout_ms, reports)
        if rows and reports["cache"].status == "ok":
            with contextlib.suppress(TierUnavailable, TimeoutError):
                await asyncio.wait_for(self.cache.warm(scope, rows), r.cache_timeout_ms / 1000)
        return rows or []

    async def _semantic(self, scope: Scope, query: str, reports: dict[str, TierReport]) -> list[Hit]:
        r = self.settings.retrieval
        vectors = await self._timed("embedding", self.embedder.embed([query], query=True),
                                    r.summaries_timeout_ms, reports)
        if vectors is None:
            return []
        hits = await self._timed("summaries", self.summaries.search(scope, vectors[0], r.candidates),
                                 r.summaries_timeout_ms, reports)
        return hits or []

    async def _in_window(self, scope: Scope, query: str, when: Window | None,
                         reports: dict[str, TierReport], said: Sequence[str] = ()) -> list[Hit]:
        """Exchanges of the date window the query names ("in July 2023", "last week"): those
        matching its other words first, then the window's newest, so a question about a
        time finds that time even when it shares no word with what was said. ``said``: the
        exchanges that state the event the query asks the time of ("when did I move?"), first."""
        if when is None:
            return []
        r = self.settings.retrieval
        words = query.replace(when.phrase, " ")
        hits, newest = await asyncio.gather(
            self._timed("archive", self.t.archive.search(scope, words, r.candidates, since=when.start,
                                                         until=when.end), r.archive_timeout_ms, reports),
            self._timed("archive", self.t.archive.newest_ids(scope, r.candidates, when.start, when.end),
                        r.archive_timeout_ms, reports))
        out = [Hit(xid, 0.0, "time") for xid in said]
        out += [Hit(h.exchange_id, h.score, "time") for h in hits or []]
        out += [Hit(xid, 0.0, "time") for xid in newest or []]
        return out

    async def get_conversation_context(self, user_id: str, current_query: str, guild_id: str | None = None,
                                       channel_id: str | None = None,
                                       max_tokens: int = 1500) -> ConversationContext:
        """Assemble the user's context for ``current_query`` in this scope; never raises for a tier outage.

        Raises InvalidInput for malformed ids or query text.
        """
        scope = Scope.of(user_id, guild_id)
        if channel_id is not None:
            clean_id(channel_id, "channel_id")
        query = clean_text(current_query, "current_query", allow_empty=True)[:MAX_QUERY_CHARS]
        if not isinstance(max_tokens, int) or max_tokens < 0:
            raise InvalidInput("must be a non-negative integer", field="max_tokens")
        async with self._reads:
            return await self._assemble(scope, query, max_tokens)

    async def _assemble(self, scope: Scope, query: str, max_tokens: int) -> ConversationContext:
        r = self.settings.retrieval
        reports: dict[str, TierReport] = {}
        names = query_names(query)
        now = datetime.now(UTC)
        # the user's time zone, read beside the tiers (usually cached); waited for first only when the
        # query names a time, whose days begin at the user's midnight
        zone_read = asyncio.ensure_future(self._zone(scope.user_id))
        when = window(query, now)
        if when is not None:
            when = window(query, now, await zone_read)
        known_facts: list[TypedFact] | None = None
        said: tuple[str, ...] = ()
        if when is None and (event := anchor(query)) is not None:
            # "before I moved": the window comes from the user's facts, so they are read first
            # (only for such a query; the profile then reuses them)
            known_facts = await self._timed("graph", self.graph.facts(scope), r.graph_timeout_ms, reports) or []
            when, said = resolve(event, known_facts, now), stated_in(event, known_facts, now)
        (semantic, recent, fulltext, graph, curated, dated), typed, sessions = await asyncio.gather(
            asyncio.gather(
                self._semantic(scope, query, reports),  # first: the query embedding is the longest read
                self._recent(scope, reports),
                self._timed("archive", self.t.archive.search(scope, query, r.candidates), r.archive_timeout_ms,
                            reports),
                self._timed("graph", self.graph.related(scope, names, r.candidates), r.graph_timeout_ms, reports),
                self._timed("facts", self.t.ledger.curated(scope), r.archive_timeout_ms, reports),
                self._in_window(scope, query, when, reports, said),
            ), self._profile_sources(scope, reports, known_facts), self._sessions(scope, query, when, reports))
        facts, corrections = (curated.facts, curated.corrections) if curated else ([], {})
        if r.profile_tokens == 0:
            corrections = {}
        lists = {"fulltext": fulltext or [], "semantic": semantic or [], "graph": graph or [],
                 "recent": [Hit(e.id, 0.0, "recent") for e in recent], "time": dated}
        weights = {"fulltext": r.weight_fulltext, "semantic": r.weight_semantic, "graph": r.weight_graph,
                   "recent": r.weight_recent, "time": r.weight_time, "neighbours": r.weight_neighbours,
                   "feedback": r.weight_feedback, "entities": r.weight_entities}
        fused = fuse(lists, weights=weights, k=r.rrf_k)
        known = {e.id: e for e in recent}
        await self._read_full(scope, fused[: r.candidates], known, reports)
        if r.expand_seeds > 0:
            fused = await self._second_round(scope, query, lists, weights, fused, known, reports)
        relevant = aged([RankedExchange(known[f.exchange_id], f.score, f.sources) for f in fused[: r.candidates]
                         if f.exchange_id in known], datetime.now(UTC), r.weight_age, r.age_half_life_days)
        for name in ("cache", "archive", "summaries", "graph"):
            reports.setdefault(name, TierReport(name, "skipped", 0.0))
        zone = await zone_read
        return ConversationContext(user_id=scope.user_id, guild_id=scope.guild_id, query=query,
                                   recent=recent[: r.recent], relevant=relevant, facts=facts,
                                   tiers=reports, max_tokens=max_tokens,
                                   profile=build_profile(scope.user_id, scope.guild_id, typed, facts, corrections,
                                                         zone=zone),
                                   profile_tokens=r.profile_tokens, sessions=sessions, focus_share=r.focus_share,
                                   session_since=datetime.now(UTC) - timedelta(minutes=r.session_gap_minutes),
                                   zone=zone)

    # ---- dated session summaries (memory.sessions) --------------------------------------------

    async def summarise_sessions(self, *, force: bool = False) -> int | None:
        """Store a dated summary of every finished session not summarised yet; returns how many
        (written by the LLM when extraction uses one, see ``memory.llm_sessions``).

        Without ``force`` it runs only if no process ran it within its interval (None otherwise).
        Raises ArchiveUnavailable.
        """
        r = self.settings.retrieval
        idle = timedelta(minutes=r.session_idle_minutes)
        if not force and not await self.t.policies.claim_job(SESSIONS_JOB, min(300.0, idle.total_seconds())):
            return None
        return await summarise_finished(self.t.sessions, idle, r.session_max_tokens, datetime.now(UTC),
                                        self.t.session_writer)

    async def _sessions(self, scope: Scope, query: str, when: Window | None,
                        reports: dict[str, TierReport]) -> list[SessionSummary]:
        """When the query asks what was talked about: the session summaries of the window it names
        (the latest ones when it names none). None otherwise, so a question about a fact in a month
        keeps its budget for the evidence; none either when the archive does not answer in time."""
        if not asks_about_sessions(query):
            return []
        found = await self._timed("sessions", self.t.sessions.between(
            scope, when.start if when else None, when.end if when else None, SESSIONS_SHOWN),
            self.settings.retrieval.archive_timeout_ms, reports)
        return found or []

    # ---- profile and typed facts ------------------------------------------------------------

    async def _profile_sources(self, scope: Scope, reports: dict[str, TierReport],
                               known: list[TypedFact] | None = None) -> list[TypedFact]:
        """Typed facts for the profile (its corrections come with the saved facts, ``ledger.curated``);
        none when the graph fails. ``known``: the facts this request has already read."""
        if self.settings.retrieval.profile_tokens == 0:
            return []
        if known is not None:
            return known
        r = self.settings.retrieval
        typed = await self._timed("graph", self.graph.facts(scope, support=False), r.graph_timeout_ms, reports)
        return typed or []

    async def typed_facts(self, user_id: str, guild_id: str | None = None) -> list[TypedFact]:
        """The scope's typed facts, current and closed, oldest first (raises TierUnavailable)."""
        return await self.graph.facts(Scope.of(user_id, guild_id))

    async def user_profile(self, user_id: str, guild_id: str | None = None) -> Profile:
        """The scope's profile (see ``ProfileBook.profile``); raises TierUnavailable."""
        return await self.profiles.profile(Scope.of(user_id, guild_id))

    async def correct_profile(self, user_id: str, key: str, replacement: str | None,
                              guild_id: str | None = None) -> Profile:
        """Remove (``replacement`` None) or replace one profile line; see ``ProfileBook.correct``."""
        return await self.profiles.correct(Scope.of(user_id, guild_id), key, replacement)
