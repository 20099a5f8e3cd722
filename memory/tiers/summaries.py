"""Tier 3: exchange summaries and their embeddings in Chroma, for semantic search.

One implementation for both deployments: a Chroma server (``chromadb.HttpClient``)
when a URL is configured, else an on-disk store (``chromadb.PersistentClient``).
Both are driven through chromadb's sync client, each call in a worker thread,
so one code path serves both and the event loop never blocks.

Storage layout: one collection per owner (user id + ``Scope.key``), named
``<base>-<32 hex of sha256 of [user_id, scope_key] in JSON>`` (``owner_collection``),
cosine space, no embedding function (Chroma's default one downloads a model;
callers always pass embeddings), metadata ``user_id`` and ``scope``. One record
per chunk, id ``"<exchange_id>:<chunk>"``, document = the summary text,
metadata ``exchange_id``, ``chunk``, ``user_id``, ``scope``, ``ts`` (epoch
seconds). Isolation is structural: a search opens only its owner's collection
and needs no ``where`` filter (a filtered query over one shared collection was
~5x slower). A registry collection ``<base>-owners`` holds one record per
owner (id = the owner's collection name, metadata ``user_id``, ``scope``, a
constant 1-d embedding) so a user's owners are found with a ``where`` on
``user_id`` (forget, count, records across scopes).

Consistency across processes (a Chroma server shared by several): owner
collections are created only by ``upsert``, which writes its records first and
registers the owner after; ``forget`` deletes the collection first, then the
registry record, then re-registers the owner if a concurrent upsert recreated
the collection meanwhile. So a collection holding records always ends up
registered, and a failure part-way leaves at most a registry record without a
collection (harmless; the next forget removes it). A handle to a collection
deleted elsewhere is dropped on NotFound: search then looks the owner up once
more (nothing -> no hits), upsert recreates it.

Errors: driver failures (connection refused, HTTP errors, ``chromadb.errors``)
become ``TierUnavailable("summaries")``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from memory.errors import ConfigurationError, InvalidInput, TierUnavailable
from memory.models import ForgetTarget, Hit, Scope, SummaryRecord
from memory.tiers.chroma_client import close_chroma_client, open_client

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import QueryResult

T = TypeVar("T")

TIER = "summaries"
UPSERT_BATCH = 512
# Chunks asked per wanted exchange: several chunks of one exchange collapse into one hit.
OVERFETCH = 3
MAX_RESULTS = 1000
# Chroma names are 3-63 characters; an owner's name adds "-" and 32 hex digits to the base.
MAX_BASE = 63 - 33
# The registry's metadata names the model that made the stored vectors.
MODEL_KEY = "embedding_model"
LEGACY_MODEL = "all-MiniLM-L6-v2"  # the only model before the mark was kept
# Chroma records need an embedding; the registry is only read by ``where``.
REGISTRY_VECTOR = np.ones((1, 1), dtype=np.float32)


def _driver_errors() -> tuple[type[BaseException], ...]:
    import httpx
    from chromadb.errors import ChromaError

    return (ChromaError, httpx.HTTPError, OSError)


def _is_driver_error(exc: Exception) -> bool:
    # chromadb's HTTP client raises a bare ``Exception`` for server errors it cannot map.
    return type(exc) is Exception or isinstance(exc, _driver_errors())


def _not_found() -> type[Exception]:
    from chromadb.errors import NotFoundError

    return NotFoundError


def collection_prefix(base: str) -> str:
    """The configured collection name, shortened (with a hash of it) if an owner's name would not fit."""
    if len(base) <= MAX_BASE:
        return base
    return base[:MAX_BASE - 9] + "-" + hashlib.sha256(base.encode()).hexdigest()[:8]


def owner_collection(base: str, user_id: str, scope_key: str) -> str:
    """The name of the collection holding the records of ``user_id`` in ``scope_key``."""
    # JSON keeps the pair unambiguous whatever characters the ids hold
    digest = hashlib.sha256(json.dumps([user_id, scope_key]).encode()).hexdigest()[:32]
    return f"{collection_prefix(base)}-{digest}"


def registry_collection(base: str) -> str:
    """The name of the collection listing every owner collection."""
    return f"{collection_prefix(base)}-owners"


class ChromaSummaries:
    """The summaries tier over one Chroma collection per owner (see the module docstring).

    Build it with ``create_summaries``; close it with ``aclose``.
    """

    name = TIER

    def __init__(self, client: ClientAPI, registry: Collection, base: str) -> None:
        self._client = client
        self._registry = registry
        self._base = base
        # In-process caches only; the store stays the truth (see the module docstring).
        self._handles: dict[str, Collection] = {}
        self._registered: set[str] = set()

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except Exception as exc:
            if _is_driver_error(exc):
                raise TierUnavailable(TIER, f"{type(exc).__name__}: {exc}") from exc
            raise

    async def ping(self) -> None:
        """Return when Chroma answers; raise TierUnavailable otherwise."""
        await self._run(self._client.heartbeat)

    def _registry_now(self) -> Collection:
        return self._client.get_collection(self._registry.name)  # fresh: another process may have marked it

    def _stored_model(self) -> str | None:
        registry = self._registry_now()
        stored = (registry.metadata or {}).get(MODEL_KEY)
        if stored is None and registry.count() > 0:
            return LEGACY_MODEL
        return None if stored is None else str(stored)

    def _mark_model(self, model_id: str) -> None:
        registry = self._registry_now()
        meta = dict(registry.metadata or {})
        if meta.get(MODEL_KEY) != model_id:
            registry.modify(metadata={**meta, MODEL_KEY: model_id})

    async def stored_model(self) -> str | None:
        """The model that made the stored vectors: the one ``mark_model`` named, MiniLM for a
        store written before the name was kept, None for an empty store."""
        return await self._run(self._stored_model)

    async def mark_model(self, model_id: str) -> None:
        """Name ``model_id`` as the model of the stored vectors (after they are, or will all be, its)."""
        await self._run(self._mark_model, model_id)

    # ---- blocking helpers (run in a worker thread) ------------------------------------------

    def _existing(self, name: str) -> Collection | None:
        """The collection ``name`` (cached handle, else looked up), or None if it does not exist."""
        coll = self._handles.get(name)
        if coll is None:
            try:
                coll = self._client.get_collection(name, embedding_function=None)
            except _not_found():
                return None
            self._handles[name] = coll
        return coll

    def _owners(self, user_id: str, scope: Scope | None) -> list[str]:
        """Names of the user's owner collections: the scope's, or every registered one."""
        if scope is not None:
            return [owner_collection(self._base, user_id, scope.key)]
        found = self._registry.get(where={"user_id": user_id}, include=[])
        return sorted(found["ids"])

    def _upsert_owner(self, user_id: str, scope_key: str, batch: Sequence[SummaryRecord]) -> None:
        name = owner_collection(self._base, user_id, scope_key)
        rows: dict[str, Any] = {
            "ids": [f"{r.exchange_id}:{r.chunk}" for r in batch],
            "embeddings": np.asarray([r.embedding for r in batch], dtype=np.float32),
            "documents": [r.summary for r in batch],
            "metadatas": [{"exchange_id": r.exchange_id, "chunk": r.chunk, "user_id": r.user_id,
                           "scope": r.scope_key, "ts": r.timestamp.timestamp()} for r in batch],
        }
        owner = {"user_id": user_id, "scope": scope_key}
        for attempt in (1, 2):
            coll = self._handles.get(name)
            if coll is None:
                coll = self._client.get_or_create_collection(
                    name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}, metadata=owner)
                self._handles[name] = coll
            try:
                coll.upsert(**rows)
                break
            except _not_found():
                # forgotten by another process since we cached the handle: recreate and register again
                self._handles.pop(name, None)
                self._registered.discard(name)
                if attempt == 2:
                    raise
        if name not in self._registered:
            self._registry.upsert(ids=[name], embeddings=REGISTRY_VECTOR, metadatas=[owner])
            self._registered.add(name)

    def _query(self, name: str, vector: np.ndarray, n_results: int) -> QueryResult | None:
        for _ in (1, 2):
            coll = self._existing(name)
            if coll is None:
                return None
            try:
                # ids carry the exchange id; asking for metadatas and documents too made
                # a query 2.5x slower (5.0 vs 2.0 ms over 3,000 records, measured here)
                return coll.query(query_embeddings=vector[None, :], n_results=n_results,
                                  include=["distances"])
            except _not_found():
                self._handles.pop(name, None)  # deleted elsewhere (maybe recreated): look it up once more
        return None

    def _each_owner(self, user_id: str, scope: Scope | None, fn: Callable[[Collection], T]) -> list[T]:
        """``fn`` applied to each existing owner collection of the user (one scope, or all)."""
        out: list[T] = []
        for name in self._owners(user_id, scope):
            coll = self._existing(name)
            try:
                if coll is not None:
                    out.append(fn(coll))
            except _not_found():
                self._handles.pop(name, None)  # deleted elsewhere meanwhile: it holds nothing
        return out

    @staticmethod
    def _owner_records(coll: Collection) -> list[SummaryRecord]:
        got = coll.get(include=["documents", "metadatas"])
        return [SummaryRecord(
                    exchange_id=str(meta["exchange_id"]), chunk=int(cast(int, meta["chunk"])),
                    user_id=str(meta["user_id"]), scope_key=str(meta["scope"]),
                    timestamp=datetime.fromtimestamp(float(cast(float, meta["ts"])), UTC), summary=doc or "")
                for meta, doc in zip(got["metadatas"] or [], got["documents"] or [], strict=True)]

    @staticmethod
    def _delete_exchanges(coll: Collection, exchange_ids: Sequence[str]) -> int:
        where: dict[str, Any] = {"exchange_id": {"$in": list(exchange_ids)}}
        found = coll.get(where=where, include=[])
        if not found["ids"]:
            return 0
        deleted = coll.delete(ids=found["ids"])
        # chromadb >= 1.1 reports the number deleted; older versions return None.
        if isinstance(deleted, dict) and isinstance(deleted.get("deleted"), int):
            return int(deleted["deleted"])
        return len(found["ids"])

    def _forget_owner(self, name: str) -> int:
        """Delete an owner's collection, then its registry record; return how many records it held."""
        self._handles.pop(name, None)  # look it up afresh: a cached handle may be stale
        self._registered.discard(name)
        coll = self._existing(name)
        self._handles.pop(name, None)
        held = 0
        if coll is not None:
            try:
                held = coll.count()
                self._client.delete_collection(name)
            except _not_found():
                held = 0  # deleted elsewhere first
        self._registry.delete(ids=[name])
        try:
            again = self._client.get_collection(name, embedding_function=None)
        except _not_found():
            return held
        # an upsert elsewhere recreated it meanwhile: keep it findable
        self._registry.upsert(ids=[name], embeddings=REGISTRY_VECTOR, metadatas=[dict(again.metadata or {})])
        return held

    def _forget(self, target: ForgetTarget) -> int:
        if target.exchange_ids is None:
            return sum(self._forget_owner(name) for name in self._owners(target.user_id, target.scope))
        ids = target.exchange_ids
        return sum(self._each_owner(target.user_id, target.scope, lambda c: self._delete_exchanges(c, ids)))

    # ---- the tier's interface ---------------------------------------------------------------

    async def upsert(self, records: Sequence[SummaryRecord]) -> None:
        """Store records keyed by (exchange_id, chunk) in their owner's collection; replaying
        a record changes nothing.

        Raises InvalidInput for a record without an embedding, TierUnavailable
        when Chroma fails (records of earlier batches may then be stored).
        """
        for rec in records:
            if not rec.embedding:
                raise InvalidInput("a summary record needs its embedding", field="embedding")
        by_owner: dict[tuple[str, str], list[SummaryRecord]] = {}
        for rec in records:
            by_owner.setdefault((rec.user_id, rec.scope_key), []).append(rec)
        for (user_id, scope_key), owned in by_owner.items():
            for start in range(0, len(owned), UPSERT_BATCH):
                await self._run(self._upsert_owner, user_id, scope_key, owned[start:start + UPSERT_BATCH])

    async def search(self, scope: Scope, embedding: np.ndarray, limit: int) -> list[Hit]:
        """Up to ``limit`` nearest exchanges in ``scope``, best first, one hit per exchange.

        ``score`` is cosine similarity of the exchange's best chunk (1 - cosine
        distance); ``detail`` names that chunk ("chunk 0"). An owner that never
        stored anything has no hits (and no collection is created for it).
        """
        if limit <= 0:
            return []
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        name = owner_collection(self._base, scope.user_id, scope.key)
        result = await self._run(self._query, name, vector, min(limit * OVERFETCH, MAX_RESULTS))
        if result is None:
            return []
        ids = (result["ids"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        best: dict[str, Hit] = {}
        for record_id, dist in zip(ids, distances, strict=True):
            exchange_id, _, chunk = record_id.rpartition(":")  # "<exchange id>:<chunk>"
            score = 1.0 - float(dist)
            if exchange_id not in best or score > best[exchange_id].score:
                best[exchange_id] = Hit(exchange_id, score, "semantic", f"chunk {chunk}")
        return sorted(best.values(), key=lambda h: h.score, reverse=True)[:limit]

    async def records(self, user_id: str, scope: Scope | None = None) -> list[SummaryRecord]:
        """Every record of the user (one scope, or all), without embeddings, oldest first."""
        per_owner = await self._run(self._each_owner, user_id, scope, self._owner_records)
        out = [r for owned in per_owner for r in owned]
        out.sort(key=lambda r: (r.timestamp, r.exchange_id, r.chunk))
        return out

    async def count(self, user_id: str, scope: Scope | None = None) -> int:
        """How many chunk records the user has (in one scope, or all)."""
        return sum(await self._run(self._each_owner, user_id, scope, lambda c: c.count()))

    async def forget(self, target: ForgetTarget) -> int:
        """Delete the user's records (all scopes, one scope, or some exchanges); return how many.

        Forgetting whole scopes deletes their collections and registry records.
        """
        if target.exchange_ids is not None and not target.exchange_ids:
            return 0
        return await self._run(self._forget, target)

    async def aclose(self) -> None:
        """Release the client (the on-disk store's shared system, the HTTP connection pool)."""
        self._handles.clear()
        await asyncio.to_thread(close_chroma_client, self._client)

    async def __aenter__(self) -> ChromaSummaries:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def create_summaries(url: str | None, path: Path | None, collection: str,
                           *, request_timeout: float = 30.0, memory_limit_bytes: int | None = None,
                           token: str | None = None) -> ChromaSummaries:
    """Connect to the Chroma server at ``url``, or open the on-disk store at ``path``.

    ``collection`` is the base of every collection name (see the module
    docstring); the owner registry is created if missing, owner collections
    on their first upsert. Raises TierUnavailable when the server cannot be
    reached, ConfigurationError for a bad URL or when neither location is
    given. ``request_timeout`` bounds each HTTP request (seconds), so a hung
    server cannot hold a worker thread forever. ``memory_limit_bytes`` caps the
    on-disk store's loaded collections (least recently used are unloaded). ``token``
    is sent as a bearer token to the server (ignored on disk).
    """
    try:
        client, registry = await asyncio.to_thread(open_client, url, path, registry_collection(collection),
                                                   request_timeout, memory_limit_bytes, token)
    except ConfigurationError:
        raise
    except ValueError as exc:
        # chromadb.HttpClient raises ValueError("Could not connect to a Chroma server ...")
        raise TierUnavailable(TIER, str(exc)) from exc
    except Exception as exc:
        if _is_driver_error(exc):
            raise TierUnavailable(TIER, f"{type(exc).__name__}: {exc}") from exc
        raise
    return ChromaSummaries(client, registry, collection)
