"""One migration run: two passes over the legacy store, batched writes, verification report."""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from memory.errors import InvalidInput
from memory.migration.mapping import (
    NO_MESSAGE,
    LegacyRecord,
    Mapper,
    Unmappable,
    classify,
    conversation_key,
    named_owner,
)
from memory.migration.reader import LegacyChromaReader
from memory.models import Exchange
from memory.tiers.ledger import SetAside

if TYPE_CHECKING:
    from memory.manager import HierarchicalMemoryManager

SAMPLE_SIZE = 20


@dataclass(frozen=True, slots=True)
class MigrationProgress:
    """Sent to the progress callback after every stored batch."""

    phase: Literal["exchanges", "conversations", "verifying"]
    records_read: int
    records_total: int
    exchanges_created: int
    skipped_existing: int
    unmappable: int


@dataclass(frozen=True, slots=True)
class EmbeddingCheck:
    """The legacy collection's embedding model against the configured one."""

    legacy_model: str | None
    legacy_dimension: int | None
    configured_model: str
    configured_dimension: int | None
    matches: bool | None          # None: the legacy model cannot be told

    @property
    def note(self) -> str:
        verdict = {True: "matches", False: "differs from", None: "cannot be compared with"}[self.matches]
        return (f"legacy model {self.legacy_model or 'unknown'} ({self.legacy_dimension or '?'} dims) "
                f"{verdict} the configured {self.configured_model}; legacy vectors are not copied: "
                "every migrated exchange is re-embedded from its text")


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What a migration (or dry run) did. In a dry run, ``exchanges_created`` counts what would be."""

    source: str
    collection: str
    dry_run: bool
    records_total: int
    records_read: int
    exchanges_created: int
    skipped_existing: int
    unmappable_count: int
    unmappable_reasons: Mapping[str, int]
    unmappable_sample: tuple[Unmappable, ...]
    embedding: EmbeddingCheck
    users: tuple[str, ...]
    counts: Mapping[str, Mapping[str, int]]        # user id -> tier -> count, after the run
    sample_checked: int
    sample_hits: int
    sample_misses: tuple[str, ...]                 # exchange ids not found by get_conversation_context
    seconds: float

    @property
    def hit_rate(self) -> float | None:
        return self.sample_hits / self.sample_checked if self.sample_checked else None

    @property
    def tier_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for per_tier in self.counts.values():
            for tier, n in per_tier.items():
                totals[tier] = totals.get(tier, 0) + n
        return totals

    def lines(self) -> list[str]:
        """The verification report as plain lines (CLI and Discord print these)."""
        verb = "would be created" if self.dry_run else "created"
        out = [f"{'DRY RUN: ' if self.dry_run else ''}{self.source} / {self.collection}",
               f"records read: {self.records_read} of {self.records_total}",
               f"exchanges {verb}: {self.exchanges_created}",
               f"skipped (already migrated): {self.skipped_existing}",
               f"unmappable records: {self.unmappable_count}"]
        out += [f"  {n} x {reason}" for reason, n in sorted(self.unmappable_reasons.items())]
        if self.unmappable_count and not self.dry_run:
            out.append("  kept in the archive with their content (forget of a user they name removes them); "
                       "list them with: python -m memory migrate --list-unmappable")
        out.append(f"embeddings: {self.embedding.note}")
        if not self.dry_run:
            totals = ", ".join(f"{t}={n}" for t, n in sorted(self.tier_totals.items()))
            out.append(f"tier counts for {len(self.users)} migrated users: {totals} "
                       "(a user's cache fills from the archive on their next read)")
            if self.hit_rate is not None:
                out.append(f"retrieval check: {self.sample_hits}/{self.sample_checked} sampled exchanges "
                           f"found by get_conversation_context ({self.hit_rate:.0%})")
        out.append(f"took {self.seconds:.1f}s")
        return out


ProgressCallback = Callable[[MigrationProgress], Awaitable[None] | None]


async def migrate_from_chroma(memory: HierarchicalMemoryManager, source: str, *,
                              collection: str = "user_memories", batch_size: int = 500,
                              dry_run: bool = False, progress: ProgressCallback | None = None,
                              source_label: str | None = None) -> MigrationReport:
    """Migrate (or, with ``dry_run``, only plan) one legacy Chroma collection; see the module doc.

    The legacy store is only read (an on-disk one through a private copy, see
    ``LegacyChromaReader``). Writes exchanges through ``memory.store_conversation``
    with deterministic ids, skipping those already archived, and
    ``memory.flush()``es after each batch; at the end it checks a sample with
    ``get_conversation_context``. Unmappable records are kept with their content
    in the archive (``memory.set_aside``; ``forget`` of a user they name removes
    them), recorded under ``source_label`` (default ``source``). A dry run writes
    nothing anywhere. An exception from ``progress`` stops the run; running it
    again resumes. Raises ConfigurationError, TierUnavailable (the legacy store,
    or ``worker`` if flush times out), ArchiveUnavailable.
    """
    if batch_size < 1:
        raise InvalidInput("must be at least 1", field="batch_size")
    reader = LegacyChromaReader(source, collection)
    await reader.open()
    try:
        run = _Run(memory, reader, Mapper(collection, reader.uuid, datetime.now(UTC)), batch_size, dry_run,
                   source_label or source, progress)
        return await run.execute()
    finally:
        await reader.aclose()


class _Run:
    """The mutable state of one migration run."""

    def __init__(self, memory: HierarchicalMemoryManager, reader: LegacyChromaReader, mapper: Mapper,
                 batch_size: int, dry_run: bool, source_label: str,
                 progress: ProgressCallback | None) -> None:
        self.memory, self.reader, self.mapper = memory, reader, mapper
        self.batch_size, self.dry_run, self.progress = batch_size, dry_run, progress
        self.source_label = source_label
        self.aside: list[SetAside] = []
        self.total = self.read = self.created = self.skipped = self.unmappable = 0
        self.reasons: dict[str, int] = {}
        self.unmappable_sample: list[Unmappable] = []
        self.batch: list[Exchange] = []
        self.users: set[str] = set()
        self.sample: list[Exchange] = []
        self.seen = 0
        self.random = random.Random(0)
        self.phase: Literal["exchanges", "conversations", "verifying"] = "exchanges"

    async def execute(self) -> MigrationReport:
        started = time.monotonic()
        legacy_model, legacy_dim = await self.reader.embedding_model()
        self.total = await self.reader.count()
        groups = await self._pass_exchanges()
        self.phase = "conversations"
        await self._pass_conversations(groups)
        counts: dict[str, dict[str, int]] = {}
        hits, misses = 0, []
        if not self.dry_run:
            await self.memory.flush()
            self.phase = "verifying"
            await self._report_progress()
            for ex in self.sample:
                ctx = await self.memory.get_conversation_context(
                    user_id=ex.user_id, current_query=_query_of(ex), guild_id=ex.guild_id,
                    channel_id=ex.channel_id)
                if ex.id in ctx.exchange_ids:
                    hits += 1
                else:
                    misses.append(ex.id)
            for user in sorted(self.users):     # after the check, which warmed the sampled scopes' cache
                counts[user] = dict(await self.memory.counts(user))
        return MigrationReport(
            source=self.reader.source, collection=self.reader.name, dry_run=self.dry_run,
            records_total=self.total, records_read=self.read, exchanges_created=self.created,
            skipped_existing=self.skipped, unmappable_count=self.unmappable,
            unmappable_reasons=dict(self.reasons), unmappable_sample=tuple(self.unmappable_sample),
            embedding=_embedding_check(self.memory, legacy_model, legacy_dim),
            users=tuple(sorted(self.users)), counts=counts,
            sample_checked=0 if self.dry_run else len(self.sample), sample_hits=hits,
            sample_misses=tuple(misses), seconds=time.monotonic() - started)

    async def _pass_exchanges(self) -> dict[str, dict[str, int]]:
        """Pass 1: store exchange-shaped records page by page; group the messages' ids."""
        groups: dict[str, dict[str, int]] = {}
        offset = 0
        while True:
            page = await self.reader.page(offset, self.batch_size)
            if not page:
                return groups
            offset += len(page)
            self.read += len(page)
            for record in page:
                kind = classify(record)
                if kind == "exchange":
                    self._add(self.mapper.map_exchange(record))
                elif kind == "message":
                    groups.setdefault(conversation_key(record), {})[record.id] = record.position
                else:
                    self._add([kind])
            await self._store_batch()

    async def _pass_conversations(self, groups: dict[str, dict[str, int]]) -> None:
        """Pass 2: one conversation at a time, fetch its messages, pair and store them."""
        for key in sorted(groups):
            records: list[LegacyRecord] = []
            for chunk in _chunks(list(groups[key].items()), self.batch_size):
                records += await self.reader.fetch(dict(chunk))
            self._add(self.mapper.pair(records))
            if len(self.batch) >= self.batch_size:
                await self._store_batch()
        await self._store_batch()

    def _add(self, items: Sequence[Exchange | Unmappable]) -> None:
        for item in items:
            if isinstance(item, Exchange):
                self.batch.append(item)
                continue
            self.unmappable += 1
            self.reasons[item.reason] = self.reasons.get(item.reason, 0) + 1
            if len(self.unmappable_sample) < 50:
                self.unmappable_sample.append(item)
            if not self.dry_run:
                user_id, scope_key = named_owner(item.metadata)
                self.aside.append(SetAside(self.mapper.collection_uuid, item.legacy_id, self.mapper.collection,
                                           self.source_label, item.reason, user_id, scope_key,
                                           item.to_json()))

    async def _store_batch(self) -> None:
        batch, self.batch = sorted(self.batch, key=lambda e: e.timestamp), []
        existing = await self.memory.existing_exchange_ids([e.id for e in batch]) if batch else set()
        for ex in batch:
            if ex.id in existing:
                self.skipped += 1
            elif not self.dry_run:
                try:
                    await self.memory.store_conversation(
                        user_id=ex.user_id, user_message=ex.user_message, bot_response=ex.bot_response,
                        guild_id=ex.guild_id, channel_id=ex.channel_id, timestamp=ex.timestamp,
                        metadata=dict(ex.metadata), exchange_id=ex.id)
                except InvalidInput as exc:
                    ids = ex.metadata.get("legacy_ids") or [ex.id]
                    content = {"user_id": ex.user_id, "guild_id": ex.guild_id, "channel_id": ex.channel_id,
                               "user_message": ex.user_message, "bot_response": ex.bot_response}
                    self._add([Unmappable(i, str(exc), None, content) for i in ids])
                    continue
                self.created += 1
            else:
                self.created += 1
            self.users.add(ex.user_id)
            self._offer_sample(ex)
        if self.aside:
            aside, self.aside = self.aside, []
            await self.memory.set_aside(aside)
        if batch and not self.dry_run:
            # Let the derived tiers keep pace: the outbox stays one batch deep and progress
            # counts exchanges that reached every tier.
            await self.memory.flush()
        await self._report_progress()

    def _offer_sample(self, ex: Exchange) -> None:
        """Reservoir sampling: every migrated exchange has the same chance to be checked."""
        self.seen += 1
        if len(self.sample) < SAMPLE_SIZE:
            self.sample.append(ex)
        else:
            slot = self.random.randrange(self.seen)
            if slot < SAMPLE_SIZE:
                self.sample[slot] = ex

    async def _report_progress(self) -> None:
        if self.progress is None:
            return
        result = self.progress(MigrationProgress(self.phase, self.read, self.total, self.created,
                                                 self.skipped, self.unmappable))
        if inspect.isawaitable(result):
            await result


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _query_of(ex: Exchange) -> str:
    text = ex.user_message if ex.user_message != NO_MESSAGE else ex.bot_response
    return " ".join(text.split()[:16])


def _embedding_check(memory: Any, legacy_model: str | None, legacy_dim: int | None) -> EmbeddingCheck:
    model, dim = configured_embedding(memory)
    if legacy_dim is not None and dim is not None and legacy_dim != dim:
        matches: bool | None = False
    elif legacy_model is None:
        matches = None
    else:
        matches = _model_key(legacy_model) == _model_key(model)
    return EmbeddingCheck(legacy_model, legacy_dim, model, dim, matches)


def _model_key(name: str) -> str:
    return name.lower().rsplit("/", 1)[-1].replace("_", "-")


def configured_embedding(memory: Any) -> tuple[str, int | None]:
    """(model id, dimension) of the embedder the manager uses."""
    from memory.embedding import MINILM_DIM, MINILM_ID

    settings = getattr(memory, "settings", None)
    embedding = getattr(settings, "embedding", None)
    if embedding is not None and embedding.provider == "openai":
        return embedding.model, embedding.dimensions
    return MINILM_ID, MINILM_DIM
