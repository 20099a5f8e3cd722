"""The derived-tier worker: outbox -> summaries, embeddings and graph, off the reply path.

Idempotent by exchange id: summaries are upserted by (exchange id, chunk) and
the graph ingests each exchange exactly once, so a batch replayed after a crash
changes nothing. Runs as a task inside the manager, or alone with
``python -m memory worker``; several workers share the queue safely
(``FOR UPDATE SKIP LOCKED`` leases).

No single record stops it. A batch that fails for a reason other than an
outage (checked by pinging the tier that raised) is retried record by record,
so the good records complete; a record that fails ``max_attempts`` times moves
to the dead-letter table with its error. An outage leaves the batch queued
with a backoff. A remote embedding endpoint cannot be pinged: its error counts
against a record only when another record of the batch got through (a lone
such record waits as in an outage until other work arrives beside it).
Dropping a stale cached list is best effort: when Redis is down the scope is
remembered in ``stale_caches`` and dropped once it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo

from memory.errors import MemoryStoreError, TierUnavailable
from memory.metrics import Metrics
from memory.models import Exchange, Extraction, ForgetTarget, Scope, SummaryRecord
from memory.protocols import CacheTier, Embedder, Extractor, GraphTier, SummaryTier
from memory.tiers.dead_letters import PostgresStaleCaches
from memory.tiers.outbox import PostgresForgetQueue, PostgresOutbox

log = logging.getLogger(__name__)
Claimed = Sequence[tuple[Exchange, bool]]
UNSURE_BEFORE_OUTAGE = 3  # failures of an unpingable service, with no success between, that mean it is down


@dataclass
class _Periodic:
    name: str
    seconds: float
    job: Callable[[], Awaitable[object]]
    due: float = 0.0


class DerivedWorker:
    def __init__(self, outbox: PostgresOutbox, extractor: Extractor, embedder: Embedder,
                 summaries: SummaryTier, graph: GraphTier, cache: CacheTier, *,
                 forgets: PostgresForgetQueue | None = None, stale_caches: PostgresStaleCaches | None = None,
                 batch_size: int = 64, lease_seconds: float = 120.0, idle_poll: float = 0.5,
                 max_attempts: int = 3, retry_seconds: float = 1.0, metrics: Metrics | None = None,
                 statistics: Callable[[], Awaitable[bool]] | None = None, statistics_every: int = 500,
                 zones: Callable[[Collection[str]], Awaitable[Mapping[str, tzinfo]]] | None = None) -> None:
        self.outbox = outbox
        self.extractor = extractor
        self.embedder = embedder
        self.summaries = summaries
        self.graph = graph
        self.cache = cache
        self.forgets = forgets
        self.stale_caches = stale_caches
        self._forgets_checked = 0.0
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.idle_poll = idle_poll
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.metrics = metrics or Metrics()
        self.processed = 0
        self.dead_lettered = 0
        self.failures = 0  # consecutive outages, for the backoff
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._jobs: list[_Periodic] = []
        self.statistics = statistics  # keeps the planner's row counts current (archive.refresh_statistics)
        self.statistics_every = statistics_every
        self._statistics_at = 0
        self.zones = zones  # user -> time zone (those not on UTC): the rules read "tomorrow" in it

    def notify(self) -> None:
        """Wake the loop: new work was enqueued."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim and process one batch; returns exchanges finished (0 when idle).

        A tier outage leaves the unfinished exchanges queued with a backoff and
        re-raises TierUnavailable. Any other failure is isolated to its record.
        """
        batch = await self.outbox.claim(self.batch_size, self.lease_seconds)
        if not batch:
            return 0
        try:
            await self._derive([e for e, _ in batch])
        except Exception as exc:  # isolated below: outage or bad record
            if await self._judge(exc) == "outage":
                await self._defer(batch, exc)
                raise
            log.warning("batch of %d failed (%s: %s); retrying exchange by exchange",
                        len(batch), type(exc).__name__, exc)
            return await self._one_by_one(batch)
        await self._finish(batch)
        return len(batch)

    async def _derive(self, exchanges: Sequence[Exchange]) -> None:
        await self._drop_derived([e for e in exchanges if e.revision > 0])
        extractions = await self.extractor.extract(await self._in_zones(exchanges))
        await self._summaries(exchanges, extractions)
        await self.graph.ingest(list(zip(exchanges, extractions, strict=True)))

    async def _in_zones(self, exchanges: Sequence[Exchange]) -> Sequence[Exchange]:
        """The exchanges as the extractor reads them: each one's time in its user's zone, so that
        "my interview is tomorrow", said at 11 pm in Tokyo, is dated the next day there."""
        if self.zones is None:
            return exchanges
        zones = await self.zones({e.user_id for e in exchanges})
        return [replace(e, timestamp=e.timestamp.astimezone(zone)) if (zone := zones.get(e.user_id)) else e
                for e in exchanges]

    async def _one_by_one(self, batch: Claimed) -> int:
        """Each exchange alone: the good ones complete, a bad one counts a failure.

        An error from a service that cannot be pinged (a remote embedding endpoint) is
        an outage only if no exchange of the batch got through (after UNSURE_BEFORE_OUTAGE
        tries); if one did, it was the record.
        """
        done: list[tuple[Exchange, bool]] = []
        unsure: list[tuple[Exchange, bool, Exception]] = []
        for i, (exchange, stale) in enumerate(batch):
            try:
                await self._derive([exchange])
            except Exception as exc:  # counted against this record, or an outage
                verdict = await self._judge(exc)
                if verdict == "unsure":
                    unsure.append((exchange, stale, exc))
                    if done or len(unsure) < UNSURE_BEFORE_OUTAGE:
                        continue
                    verdict = "outage"  # nothing got through: do not wait on a dead endpoint once per record
                if verdict == "outage":
                    await self._finish(done)
                    rest = {e.id: (e, s) for e, s, _ in unsure} | {e.id: (e, s) for e, s in batch[i:]}
                    await self._defer(list(rest.values()), exc)
                    raise
                else:
                    await self._failed(exchange, exc)
            else:
                done.append((exchange, stale))
        await self._finish(done)
        if unsure and not done:
            await self._defer([(e, s) for e, s, _ in unsure], unsure[-1][2])
            raise unsure[-1][2]
        for exchange, _, error in unsure:
            await self._failed(exchange, error)
        return len(done)

    async def _judge(self, exc: Exception) -> str:
        """"outage" (a store is down: retry later), "record" (this input is at fault) or
        "unsure" (a service that cannot be asked failed).

        A tier edge reports a query the store refused (a value it cannot hold) as
        TierUnavailable too, so the tier is pinged: if it answers, the record is at fault.
        """
        if not isinstance(exc, TierUnavailable):
            return "record"
        # not the archive, which answers the users' time zones: a failed read there is no record's fault,
        # and as "unsure" it holds back the batch as an outage once nothing gets through
        tier = {"cache": self.cache, "summaries": self.summaries, "graph": self.graph}.get(exc.tier)
        if tier is None:
            return "unsure"  # the embedding endpoint: nothing to ping (or the archive, above)
        try:
            await tier.ping()
        except TierUnavailable:
            return "outage"
        return "record"

    async def _defer(self, batch: Claimed, exc: BaseException) -> None:
        self.failures += 1
        self.metrics.worker_failures.inc()
        self.last_error = f"{type(exc).__name__}: {exc}"
        backoff = min(30.0, 2.0 ** min(self.failures, 5))
        await self.outbox.fail([e.id for e, _ in batch], self.last_error, retry_in=backoff)

    async def _failed(self, exchange: Exchange, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        dead = await self.outbox.record_failure(exchange.id, self.last_error, self.retry_seconds,
                                                self.max_attempts)
        if dead:
            self.dead_lettered += 1
            log.error("exchange %s moved to the dead letters after %d failures: %s", exchange.id,
                      self.max_attempts, self.last_error)
        else:
            log.warning("exchange %s failed, will retry: %s", exchange.id, self.last_error)

    async def _finish(self, done: Claimed) -> None:
        if not done:
            return
        await self._invalidate({e.scope for e, stale in done if stale})
        # an exchange edited while we worked stays queued: it is done again with the new text
        ids = [e.id for e, _ in done]
        completed = await self.outbox.complete(ids, revisions=[e.revision for e, _ in done])
        if len(completed) < len(done):  # forgotten meanwhile, or replayed by another worker after our lease
            gone = await self.outbox.forgotten([i for i in ids if i not in completed])
            await self._drop_forgotten([e for e, _ in done if e.id in gone])
        self.failures = 0
        self.processed += len(done)
        self.metrics.worker_exchanges.inc(len(done))
        if self.statistics is not None and self.processed - self._statistics_at >= self.statistics_every:
            self._statistics_at = self.processed
            try:
                await self.statistics()
            except MemoryStoreError as exc:  # the statistics wait for the next batch; the work is done
                log.warning("planner statistics not refreshed: %s", exc)

    async def _invalidate(self, scopes: set[Scope]) -> None:
        """Drop cached lists that missed an exchange; best effort (the cache is derived,
        with a TTL): with Redis down the scope is queued and dropped when it is back."""
        for scope in scopes:
            try:
                await self.cache.invalidate(scope)
            except TierUnavailable as exc:
                log.warning("cached list of %s left stale for now: %s", scope.user_id, exc)
                if self.stale_caches is not None:
                    await self.stale_caches.add(scope, str(exc))

    async def _drop_derived(self, edited: Sequence[Exchange]) -> None:
        """Remove the summaries and graph entries of an earlier text of edited exchanges, so the
        new text replaces them (the graph ingests each exchange id once)."""
        by_scope: dict[Scope, list[str]] = {}
        for e in edited:
            by_scope.setdefault(e.scope, []).append(e.id)
        for scope, ids in by_scope.items():
            target = ForgetTarget(scope.user_id, scope, tuple(ids))
            await self.summaries.forget(target)
            await self.graph.forget(target)

    def every(self, seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
        """Run ``job`` from ``run_forever`` about every ``seconds`` (the first time right away).

        A job raising a MemoryStoreError (a tier down, say) is logged and tried again at its next turn.
        """
        self._jobs.append(_Periodic(name, seconds, job))

    async def _run_jobs(self) -> None:
        for periodic in self._jobs:
            if time.monotonic() < periodic.due:
                continue
            periodic.due = time.monotonic() + periodic.seconds
            try:
                await periodic.job()
            except MemoryStoreError as exc:  # a typed failure waits for the next turn; the loop goes on
                log.warning("periodic job %s deferred: %s", periodic.name, exc)
            except Exception:  # a bug in one job must not stop the derived work of everyone
                log.exception("periodic job %s failed", periodic.name)

    async def _drop_forgotten(self, exchanges: Sequence[Exchange]) -> None:
        """Remove what this batch wrote for exchanges forgotten while it ran (their outbox rows went
        with them): the forget's own passes may have run before these writes landed."""
        by_scope: dict[Scope, list[str]] = {}
        for e in exchanges:
            by_scope.setdefault(e.scope, []).append(e.id)
        for scope, ids in by_scope.items():
            target = ForgetTarget(scope.user_id, scope, tuple(ids))
            down = []
            for name, tier in (("summaries", self.summaries), ("graph", self.graph)):
                try:
                    await tier.forget(target)
                except TierUnavailable:
                    down.append(name)
            if down and self.forgets is not None:
                await self.forgets.add(target, down)  # cleared by retry_forgets when the tier is back

    async def _summaries(self, exchanges: Sequence[Exchange], extractions: Sequence[Extraction]) -> None:
        texts = [chunk for x in extractions for chunk in x.chunks]
        vectors = await self.embedder.embed(texts)
        records: list[SummaryRecord] = []
        row = 0
        for e, x in zip(exchanges, extractions, strict=True):
            for i, _chunk in enumerate(x.chunks):
                records.append(SummaryRecord(e.id, i, e.user_id, e.scope.key, e.timestamp, x.summary,
                                             tuple(float(v) for v in vectors[row])))
                row += 1
        await self.summaries.upsert(records)

    async def retry_forgets(self) -> int:
        """Clear queued forget requests from the tiers that answer again; returns requests completed."""
        if self.forgets is None:
            return 0
        tiers = {"cache": self.cache, "summaries": self.summaries, "graph": self.graph}
        completed = 0
        for request_id, target, names in await self.forgets.due():
            left, error = [], None
            for name in names:
                try:
                    await tiers[name].forget(target)
                except TierUnavailable as exc:
                    left.append(name)
                    error = str(exc)
            await self.forgets.update(request_id, left, error)
            completed += not left
        return completed

    async def retry_stale_caches(self) -> int:
        """Drop the cached lists left stale during a Redis outage; returns lists dropped."""
        if self.stale_caches is None:
            return 0
        dropped = 0
        for scope in await self.stale_caches.due():
            try:
                await self.cache.invalidate(scope)
            except TierUnavailable:
                break  # still down: try again on the next round
            await self.stale_caches.done(scope)
            dropped += 1
        return dropped

    async def _housekeeping(self) -> None:
        try:
            await self.retry_forgets()
            await self.retry_stale_caches()
        except TierUnavailable as exc:
            log.warning("queued forgets and stale caches deferred: %s", exc)
        except Exception:  # the loop must outlive any bug here; logged with its traceback
            log.exception("queued forgets and stale caches failed")

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Process batches until ``stop`` is set; no error ends the loop.

        Outages back off and retry; a failure outside any one record (say, the
        archive answering garbage) is logged with its traceback and backed off too.
        Queued forget requests and stale cached lists are retried every 10 seconds.
        """
        while not stop.is_set():
            await self._run_jobs()
            if time.monotonic() - self._forgets_checked > 10:
                self._forgets_checked = time.monotonic()
                await self._housekeeping()
            try:
                done = await self.run_once()
            except Exception as exc:  # outage (expected) or bug (logged); never stop
                if isinstance(exc, TierUnavailable):
                    log.warning("derived work deferred: %s", exc)
                else:
                    self.failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("derived-tier worker error; backing off")
                await self._sleep(stop, min(30.0, 2.0 ** min(self.failures, 5)))
                continue
            if done == 0:
                self._wake.clear()
                await self._sleep(stop, self.idle_poll)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
