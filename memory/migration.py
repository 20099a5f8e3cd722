"""Migration from a legacy single-Chroma memory store into the four tiers.

``migrate_from_chroma`` reads one legacy collection page by page (an on-disk
Chroma directory or a Chroma server), maps its records to exchanges and stores
them through the manager with their original timestamps; the manager's worker
then fills the cache, summaries and graph. Decisions (README "Migration"):

* Shapes. A record whose metadata has ``user_message``/``bot_response`` (or
  whose document is a ``User: ...`` / ``Assistant: ...`` transcript) is one
  exchange. A record with ``role``/``type`` user or assistant is one message:
  the messages of a conversation (``conversation_id``, else user + guild +
  channel) are paired in time order, a user message with the assistant
  messages that follow it (several replies are joined by a blank line).
* Nothing is dropped silently. A user message without a reply is stored with
  the reply ``(no reply recorded)``, a reply without a user message with the
  message ``(no message recorded)``; both carry ``legacy_unpaired: true``.
  Records that name no user (no metadata at all, or no ``user_id``), have no
  text, or fail validation are unmappable: their ids, reasons, documents and
  metadata are written to a JSONL file for the operator.
* Time. Timestamps may be ISO strings or epoch numbers (s, ms or us). A record
  without a usable one gets the run's start time plus its legacy position in
  microseconds (so legacy order is kept) and ``legacy_timestamp_missing: true``.
* Ids. The exchange id is ``uuid5(namespace, collection uuid, name, legacy
  ids)``, so a re-run recognises what is archived (``existing_exchange_ids``)
  and skips it; an interrupted run resumes by running it again. The legacy
  collection's own uuid is in the key so two stores with the same collection
  name and ids ("0", "1", ...) cannot be mistaken for each other.
* Bounded memory. Pass 1 streams pages and stores exchange-shaped records at
  once, keeping only (position, id) of message-shaped ones per conversation;
  pass 2 fetches one conversation at a time, pairs and stores it.
* Embeddings. Legacy vectors are never copied. The legacy model is read from
  the collection's metadata/configuration and vector size, compared with the
  configured one, and reported; every migrated exchange is re-embedded from
  its text by the worker either way.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from memory.errors import ConfigurationError, InvalidInput, TierUnavailable
from memory.models import Exchange, clean_id, clean_metadata, clean_text

if TYPE_CHECKING:
    from memory.manager import HierarchicalMemoryManager

NAMESPACE = uuid.UUID("dec79bb3-c679-5c24-b623-3ae505119dce")  # uuid5(URL, "mnemo:legacy-chroma-migration")
NO_REPLY = "(no reply recorded)"
NO_MESSAGE = "(no message recorded)"
SAMPLE_SIZE = 20
USER_ROLES = frozenset({"user", "human", "user_message", "question", "input"})
BOT_ROLES = frozenset({"assistant", "bot", "ai", "bot_response", "response", "answer", "output", "model"})
_CONSUMED = frozenset({"user_id", "user_message", "bot_response", "timestamp", "guild_id", "channel_id",
                       "conversation_id", "role", "type", "content", "text", "message"})
_NO_SCOPE = frozenset({"", "none", "null", "dm", "0"})
_TRANSCRIPT = re.compile(r"^\s*(?:user|human)\s*:\s*(?P<u>.*?)\n\s*(?:assistant|bot|ai)\s*:\s*(?P<b>.*)$",
                         re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class LegacyRecord:
    """One document of the legacy collection; ``position`` is its index in the store's own order."""

    id: str
    document: str | None
    metadata: Mapping[str, Any]
    position: int


@dataclass(frozen=True, slots=True)
class Unmappable:
    """A legacy record that could not become (part of) an exchange, and why."""

    legacy_id: str
    reason: str
    document: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"legacy_id": self.legacy_id, "reason": self.reason, "document": self.document,
                "metadata": dict(self.metadata)}


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
    unmappable_path: Path | None
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
        if self.unmappable_path is not None and self.unmappable_count:
            out.append(f"  listed in {self.unmappable_path}")
        out.append(f"embeddings: {self.embedding.note}")
        if not self.dry_run:
            totals = ", ".join(f"{t}={n}" for t, n in sorted(self.tier_totals.items()))
            out.append(f"tier counts for {len(self.users)} migrated users: {totals}")
            if self.hit_rate is not None:
                out.append(f"retrieval check: {self.sample_hits}/{self.sample_checked} sampled exchanges "
                           f"found by get_conversation_context ({self.hit_rate:.0%})")
        out.append(f"took {self.seconds:.1f}s")
        return out


# ---------------------------------------------------------------- mapping (pure)

def parse_timestamp(value: object) -> datetime | None:
    """An aware UTC datetime from an ISO string or an epoch number in s/ms/us; None if unusable."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                return None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    seconds = float(value)
    while seconds > 1e11:          # milliseconds or microseconds since the epoch
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def role_of(metadata: Mapping[str, Any]) -> str | None:
    for key in ("role", "type"):
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


def classify(record: LegacyRecord) -> Literal["exchange", "message"] | Unmappable:
    """Whether ``record`` is a whole exchange, one message of a conversation, or unmappable."""
    meta = record.metadata
    if not meta:
        return _unmappable(record, "no metadata: the user it belongs to is unknown")
    if "user_message" in meta or "bot_response" in meta:
        return "exchange"
    role = role_of(meta)
    if role in USER_ROLES or role in BOT_ROLES:
        return "message"
    if record.document and _TRANSCRIPT.match(record.document):
        return "exchange"
    if role is not None:
        return _unmappable(record, f"unknown role/type {role!r}")
    return _unmappable(record, "neither user_message/bot_response nor a role/type in the metadata")


def conversation_key(record: LegacyRecord) -> str:
    """The group a message belongs to: its conversation id, else its user, guild and channel."""
    meta = record.metadata
    if meta.get("conversation_id") not in (None, ""):
        return json.dumps(["c", str(meta["conversation_id"])])
    return json.dumps(["u", *(str(meta.get(k, "")) for k in ("user_id", "guild_id", "channel_id"))])


def exchange_id_for(collection_uuid: str, collection: str, legacy_ids: Sequence[str]) -> str:
    """The deterministic exchange id of the exchange made of these legacy records."""
    return str(uuid.uuid5(NAMESPACE, "\x1f".join([collection_uuid, collection, *legacy_ids])))


@dataclass(frozen=True, slots=True)
class Mapper:
    """Maps legacy records of one collection to exchanges; pure apart from its inputs."""

    collection: str
    collection_uuid: str
    started_at: datetime

    def map_exchange(self, record: LegacyRecord) -> list[Exchange | Unmappable]:
        """One exchange-shaped record -> one exchange (or an Unmappable)."""
        meta = record.metadata
        user, bot = meta.get("user_message"), meta.get("bot_response")
        if not _nonblank(user) and not _nonblank(bot) and record.document:
            match = _TRANSCRIPT.match(record.document)
            if match:
                user, bot = match["u"].strip(), match["b"].strip()
        user_text = user if _nonblank(user) else None
        bot_text = bot if _nonblank(bot) else None
        extra: dict[str, Any] = {}
        doc = record.document
        if doc and doc.strip() and not (user_text and user_text in doc and (bot_text or "") in doc):
            extra["legacy_document"] = doc
        return self._build([record], record, user_text, [bot_text] if bot_text else [], extra)

    def pair(self, records: Sequence[LegacyRecord]) -> list[Exchange | Unmappable]:
        """The messages of one conversation -> exchanges, paired in time order.

        Order: by timestamp (ties by legacy position) when every message has
        one, else by legacy position. Deterministic for the same records.
        """
        stamps = [parse_timestamp(r.metadata.get("timestamp")) for r in records]
        if all(s is not None for s in stamps):
            ordered = [r for _, r in sorted(zip(stamps, records, strict=True),
                                            key=lambda p: (p[0], p[1].position))]
        else:
            ordered = sorted(records, key=lambda r: r.position)
        out: list[Exchange | Unmappable] = []
        user: LegacyRecord | None = None
        replies: list[LegacyRecord] = []
        for rec in ordered:
            if _message_text(rec) is None:
                out.append(_unmappable(rec, "message without text"))
            elif role_of(rec.metadata) in USER_ROLES:
                if user is not None or replies:
                    out += self._emit(user, replies)
                user, replies = rec, []
            else:
                replies.append(rec)
        if user is not None or replies:
            out += self._emit(user, replies)
        return out

    def _emit(self, user: LegacyRecord | None, replies: list[LegacyRecord]) -> list[Exchange | Unmappable]:
        head = user or replies[0]
        return self._build([user, *replies] if user else replies, head,
                           _message_text(user) if user else None,
                           [_message_text(r) or "" for r in replies], {})

    def _build(self, records: list[LegacyRecord], head: LegacyRecord, user_text: str | None,
               bot_texts: list[str], extra: dict[str, Any]) -> list[Exchange | Unmappable]:
        """One exchange of ``records`` (``head`` gives its scope), or one Unmappable per record."""
        ids = [r.id for r in records]
        meta = head.metadata
        try:
            if not user_text and not bot_texts:
                raise InvalidInput("no user message and no bot response")
            user_id = next((r.metadata["user_id"] for r in records if r.metadata.get("user_id") not in
                            (None, "")), None)
            if user_id is None:
                raise InvalidInput("no user_id: the user it belongs to is unknown")
            stamp = next((t for t in (parse_timestamp(r.metadata.get("timestamp")) for r in records) if t),
                         None)
            info: dict[str, Any] = {"legacy_ids": ids, "legacy_collection": self.collection,
                                    "legacy_source": "chroma"}
            if stamp is None:
                stamp = self.started_at + timedelta(microseconds=head.position)
                info["legacy_timestamp_missing"] = True
                raw = meta.get("timestamp")
                if raw not in (None, ""):
                    info["legacy_timestamp_raw"] = raw
            if user_text is None or not bot_texts:
                info["legacy_unpaired"] = True
            if meta.get("conversation_id") not in (None, ""):
                info["legacy_conversation_id"] = str(meta["conversation_id"])
            extras = {r.id: {k: v for k, v in r.metadata.items() if k not in _CONSUMED} for r in records}
            extras = {k: v for k, v in extras.items() if v}
            if extras:
                info["legacy_metadata"] = extras
            info.update(extra)
            return [Exchange(
                id=exchange_id_for(self.collection_uuid, self.collection, ids),
                user_id=clean_id(_id_text(user_id), "user_id"),
                guild_id=_scope_id(meta.get("guild_id"), "guild_id"),
                channel_id=_scope_id(meta.get("channel_id"), "channel_id"),
                user_message=clean_text(user_text or NO_MESSAGE, "user_message"),
                bot_response=clean_text("\n\n".join(bot_texts) or NO_REPLY, "bot_response"),
                timestamp=stamp, metadata=clean_metadata(info))]
        except InvalidInput as exc:
            return [_unmappable(r, str(exc)) for r in records]


def _nonblank(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _message_text(record: LegacyRecord) -> str | None:
    for value in (record.document, *(record.metadata.get(k) for k in ("content", "text", "message"))):
        if isinstance(value, str) and value.strip():
            return value
    return None


def _id_text(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value.strip() if isinstance(value, str) else value


def _scope_id(value: object, name: str) -> str | None:
    value = _id_text(value)
    if value is None or (isinstance(value, str) and value.lower() in _NO_SCOPE) or value == 0:
        return None
    return clean_id(value, name)


def _unmappable(record: LegacyRecord, reason: str) -> Unmappable:
    return Unmappable(record.id, reason, record.document, dict(record.metadata or {}))


# ---------------------------------------------------------------- the legacy store

class LegacyChromaReader:
    """One collection of a legacy Chroma store, read-only, by pages.

    ``source`` is a directory (``PersistentClient``; it must exist, nothing is
    created) or an ``http(s)://host:port`` URL (``HttpClient``). Telemetry is
    off and no embedding function is attached, so nothing is downloaded.
    Chroma is synchronous: every call runs in a worker thread. Raises
    ConfigurationError (no such directory or collection) and
    TierUnavailable("legacy-chroma") (the store cannot be read).
    """

    def __init__(self, source: str, collection: str) -> None:
        self.source = source
        self.name = collection
        self._collection: Any = None

    async def open(self) -> None:
        self._collection = await self._call(self._open)

    def _open(self) -> Any:
        import chromadb
        from chromadb.config import Settings
        from chromadb.errors import NotFoundError

        settings = Settings(anonymized_telemetry=False)
        url = urlparse(self.source)
        if url.scheme in ("http", "https"):
            client = chromadb.HttpClient(host=url.hostname or "localhost",
                                         port=url.port or (443 if url.scheme == "https" else 8000),
                                         ssl=url.scheme == "https", settings=settings)
        elif Path(self.source).is_dir():
            client = chromadb.PersistentClient(path=self.source, settings=settings)
        else:
            raise ConfigurationError("from_chroma",
                                     f"{self.source} is neither a directory nor an http(s) URL")
        try:
            return client.get_collection(self.name, embedding_function=None)
        except NotFoundError as exc:
            names = sorted(c.name for c in client.list_collections())
            raise ConfigurationError("collection", f"no collection {self.name!r} in {self.source}; "
                                     f"it has {names}") from exc

    @property
    def uuid(self) -> str:
        return str(self._collection.id)

    async def count(self) -> int:
        return int(await self._call(self._collection.count))

    async def page(self, offset: int, limit: int) -> list[LegacyRecord]:
        got = await self._call(lambda: self._collection.get(limit=limit, offset=offset,
                                                            include=["documents", "metadatas"]))
        rows = zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        return [LegacyRecord(i, d, m or {}, offset + n) for n, (i, d, m) in enumerate(rows)]

    async def fetch(self, positions: Mapping[str, int]) -> list[LegacyRecord]:
        """The records with these ids (position = their index in pass 1)."""
        got = await self._call(lambda: self._collection.get(ids=list(positions),
                                                            include=["documents", "metadatas"]))
        return [LegacyRecord(i, d, m or {}, positions[i])
                for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)]

    async def embedding_model(self) -> tuple[str | None, int | None]:
        """(model name if recorded, vector size of the stored embeddings)."""
        got = await self._call(lambda: self._collection.get(limit=1, include=["embeddings"]))
        vectors = got.get("embeddings")
        dimension = len(vectors[0]) if vectors is not None and len(vectors) else None
        meta = self._collection.metadata or {}
        for key in ("embedding_model", "model", "embedding_function", "model_name"):
            if isinstance(meta.get(key), str):
                return meta[key], dimension
        try:
            function = (self._collection.configuration or {}).get("embedding_function")
        except (ValueError, KeyError, TypeError, AttributeError):   # an unknown function's config
            function = None
        if function is None:
            return None, dimension
        name = function.name() if hasattr(function, "name") else type(function).__name__
        config = function.get_config() if hasattr(function, "get_config") else {}
        model = (config or {}).get("model_name")
        if name == "default":
            model = "all-MiniLM-L6-v2"     # Chroma's default function is all-MiniLM-L6-v2 in ONNX
        return (str(model) if model else str(name)), dimension

    async def _call(self, fn: Callable[[], Any]) -> Any:
        from chromadb.errors import ChromaError

        try:
            return await asyncio.to_thread(fn)
        except (ConfigurationError, InvalidInput):
            raise
        except (ChromaError, OSError, ValueError, RuntimeError) as exc:
            raise TierUnavailable("legacy-chroma", f"{self.source}: {exc}") from exc


# ---------------------------------------------------------------- the run

ProgressCallback = Callable[[MigrationProgress], Awaitable[None] | None]


async def migrate_from_chroma(memory: HierarchicalMemoryManager, source: str, *,
                              collection: str = "user_memories", batch_size: int = 500,
                              dry_run: bool = False, unmappable_path: Path | str | None = None,
                              progress: ProgressCallback | None = None) -> MigrationReport:
    """Migrate (or, with ``dry_run``, only plan) one legacy Chroma collection; see the module doc.

    Writes exchanges through ``memory.store_conversation`` with deterministic
    ids, skipping those already archived; then ``memory.flush()`` and checks
    a sample with ``get_conversation_context``. A dry run writes nothing to
    memory. Unmappable records go to ``unmappable_path`` (JSONL; default
    ``./migration-unmappable-<collection>.jsonl`` in a real run, none in a dry
    run). An exception from ``progress`` stops the run; running it again
    resumes. Raises ConfigurationError, TierUnavailable, ArchiveUnavailable.
    """
    if batch_size < 1:
        raise InvalidInput("must be at least 1", field="batch_size")
    reader = LegacyChromaReader(source, collection)
    await reader.open()
    if unmappable_path is None and not dry_run:
        unmappable_path = Path.cwd() / f"migration-unmappable-{collection}.jsonl"
    run = _Run(memory, reader, Mapper(collection, reader.uuid, datetime.now(UTC)), batch_size, dry_run,
               Path(unmappable_path) if unmappable_path is not None else None, progress)
    return await run.execute()


class _Run:
    """The mutable state of one migration run."""

    def __init__(self, memory: HierarchicalMemoryManager, reader: LegacyChromaReader, mapper: Mapper,
                 batch_size: int, dry_run: bool, unmappable_path: Path | None,
                 progress: ProgressCallback | None) -> None:
        self.memory, self.reader, self.mapper = memory, reader, mapper
        self.batch_size, self.dry_run, self.progress = batch_size, dry_run, progress
        self.path = unmappable_path
        self.total = self.read = self.created = self.skipped = self.unmappable = 0
        self.reasons: dict[str, int] = {}
        self.unmappable_sample: list[Unmappable] = []
        self.batch: list[Exchange] = []
        self.users: set[str] = set()
        self.sample: list[Exchange] = []
        self.seen = 0
        self.random = random.Random(0)
        self.file: IO[str] | None = None
        self.phase: Literal["exchanges", "conversations", "verifying"] = "exchanges"

    async def execute(self) -> MigrationReport:
        started = time.monotonic()
        legacy_model, legacy_dim = await self.reader.embedding_model()
        self.total = await self.reader.count()
        with ExitStack() as stack:
            if self.path is not None:
                self.file = stack.enter_context(self.path.open("w", encoding="utf-8"))
            groups = await self._pass_exchanges()
            self.phase = "conversations"
            await self._pass_conversations(groups)
        counts: dict[str, dict[str, int]] = {}
        hits, misses = 0, []
        if not self.dry_run:
            await self.memory.flush()
            self.phase = "verifying"
            await self._report_progress()
            for user in sorted(self.users):
                counts[user] = dict(await self.memory.counts(user))
            for ex in self.sample:
                ctx = await self.memory.get_conversation_context(
                    user_id=ex.user_id, current_query=_query_of(ex), guild_id=ex.guild_id,
                    channel_id=ex.channel_id)
                if ex.id in ctx.exchange_ids:
                    hits += 1
                else:
                    misses.append(ex.id)
        return MigrationReport(
            source=self.reader.source, collection=self.reader.name, dry_run=self.dry_run,
            records_total=self.total, records_read=self.read, exchanges_created=self.created,
            skipped_existing=self.skipped, unmappable_count=self.unmappable,
            unmappable_reasons=dict(self.reasons), unmappable_sample=tuple(self.unmappable_sample),
            unmappable_path=self.path, embedding=_embedding_check(self.memory, legacy_model, legacy_dim),
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
            if self.file is not None:
                self.file.write(json.dumps(item.to_json(), default=str, ensure_ascii=False) + "\n")

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
                    self._add([Unmappable(i, str(exc)) for i in ids])
                    continue
                self.created += 1
            else:
                self.created += 1
            self.users.add(ex.user_id)
            self._offer_sample(ex)
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


# ---------------------------------------------------------------- command line

_PHASES = {"exchanges": "reading legacy records", "conversations": "pairing messages",
           "verifying": "verifying"}


def add_migrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``migrate`` to the memory CLI's subcommands; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "migrate", help="import a legacy single-Chroma memory store into the four tiers",
        description="Read a legacy Chroma collection page by page and store every record as an "
                    "exchange with its original timestamp. Safe to re-run: migrated records are skipped.")
    parser.add_argument("--from-chroma", required=True, metavar="PATH_OR_URL", dest="from_chroma",
                        help="a Chroma directory or an http(s)://host:port Chroma server")
    parser.add_argument("--collection", default="user_memories",
                        help="legacy collection (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=500, dest="batch_size",
                        help="records per page and per stored batch (default %(default)s)")
    parser.add_argument("--dry-run", action="store_true", dest="dry_run",
                        help="report what would be migrated; write nothing")
    parser.add_argument("--unmappable-file", type=Path, default=None, dest="unmappable_file", metavar="PATH",
                        help="JSONL file for records that cannot be mapped "
                             "(default ./migration-unmappable-<collection>.jsonl; none in a dry run)")
    return parser


async def run_migrate_command(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    """Run ``migrate`` with a progress bar, print the report; 0 done, 1 a store failed, 2 bad arguments."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[status]}"), console=console, transient=True) as bar:
        task = bar.add_task("reading legacy records", total=None, status="")

        def show(p: MigrationProgress) -> None:
            verb = "would create" if args.dry_run else "created"
            bar.update(task, completed=p.records_read, total=p.records_total or None,
                       description=_PHASES[p.phase],
                       status=f"{verb} {p.exchanges_created}, skipped {p.skipped_existing}, "
                              f"unmappable {p.unmappable}")

        try:
            report = await migrate_from_chroma(
                memory, args.from_chroma, collection=args.collection, batch_size=args.batch_size,
                dry_run=args.dry_run, unmappable_path=args.unmappable_file, progress=show)
        except (ConfigurationError, InvalidInput) as exc:
            console.print(f"[red]migrate: {exc}[/red]")
            return 2
        except TierUnavailable as exc:
            console.print(f"[red]migrate: {exc}; run the same command again to resume[/red]")
            return 1
    for line in report.lines():
        console.print(line, highlight=False, markup=False)
    return 0
