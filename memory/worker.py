"""The derived-tier worker: outbox -> summaries, embeddings and graph, off the reply path.

Idempotent by exchange id: summaries are upserted by (exchange id, chunk) and
the graph ingests each exchange exactly once, so a batch replayed after a crash
changes nothing. Runs as a task inside the manager, or alone with
``python -m memory worker``; several workers share the queue safely
(``FOR UPDATE SKIP LOCKED`` leases).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from memory.errors import MemoryStoreError, TierUnavailable
from memory.metrics import Metrics
from memory.models import Exchange, Extraction, ForgetTarget, Scope, SummaryRecord
from memory.protocols import CacheTier, Embedder, Extractor, GraphTier, SummaryTier
from memory.tiers.archive import PostgresForgetQueue, PostgresOutbox

log = logging.getLogger(__name__)


@dataclass
class _Periodic:
    name: str
    seconds: float
    job: Callable[[], Awaitable[object]]
    due: float = 0.0


class DerivedWorker:
    def __init__(self, outbox: PostgresOutbox, extractor: Extractor, embedder: Embedder,
                 summaries: SummaryTier, graph: GraphTier, cache: CacheTier, *,
                 forgets: PostgresForgetQueue | None = None, batch_size: int = 64,
                 lease_seconds: float = 120.0, idle_poll: float = 0.5, metrics: Metrics | None = None) -> None:
        self.outbox = outbox
        self.extractor = extractor
        self.embedder = embedder
        self.summaries = summaries
        self.graph = graph
        self.cache = cache
        self.forgets = forgets
        self._forgets_checked = 0.0
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.idle_poll = idle_poll
        self.metrics = metrics or Metrics()
        self.processed = 0
        self.failures = 0
        self._wake = asyncio.Event()
        self._jobs: list[_Periodic] = []

    def notify(self) -> None:
        """Wake the loop: new work was enqueued."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim and process one batch; returns exchanges finished (0 when idle).

        A tier outage leaves the batch in the queue with a backoff and re-raises.
        """
        batch = await self.outbox.claim(self.batch_size, self.lease_seconds)
        if not batch:
            return 0
        exchanges = [e for e, _ in batch]
        try:
            await self._drop_derived([e for e in exchanges if e.revision > 0])
            extractions = await self.extractor.extract(exchanges)
            await self._summaries(exchanges, extractions)
            await self.graph.ingest(list(zip(exchanges, extractions, strict=True)))
            for scope in {e.scope for e, stale in batch if stale}:
                await self.cache.invalidate(scope)
        except TierUnavailable as exc:
            self.failures += 1
            self.metrics.worker_failures.inc()
            backoff = min(30.0, 2.0 ** min(self.failures, 5))
            await self.outbox.fail([e.id for e in exchanges], str(exc), retry_in=backoff)
            raise
        # an exchange edited while we worked stays queued: it is done again with the new text
        done = await self.outbox.complete([e.id for e in exchanges], revisions=[e.revision for e in exchanges])
        if len(done) < len(exchanges):  # forgotten meanwhile, or replayed by another worker after our lease
            gone = await self.outbox.forgotten([e.id for e in exchanges if e.id not in done])
            await self._drop_forgotten([e for e in exchanges if e.id in gone])
        self.failures = 0
        self.processed += len(exchanges)
        self.metrics.worker_exchanges.inc(len(exchanges))
        return len(exchanges)

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

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Process batches until ``stop`` is set; outages back off and retry, never crash the loop.

        Queued forget requests are retried every 10 seconds.
        """
        while not stop.is_set():
            await self._run_jobs()
            if time.monotonic() - self._forgets_checked > 10:
                self._forgets_checked = time.monotonic()
                try:
                    await self.retry_forgets()
                except TierUnavailable as exc:
                    log.warning("queued forgets deferred: %s", exc)
            try:
                done = await self.run_once()
            except TierUnavailable as exc:
                log.warning("derived work deferred: %s", exc)
                done = 0
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
