"""Tier 3: exchange summaries and their embeddings in Chroma, for semantic search.

One implementation for both deployments: a Chroma server (``chromadb.HttpClient``)
when a URL is configured, else an on-disk store (``chromadb.PersistentClient``).
Both are driven through chromadb's sync client, each call in a worker thread,
so one code path serves both and the event loop never blocks.

Storage layout: one collection, cosine space, no embedding function (Chroma's
default one downloads a model; callers always pass embeddings). One record per
chunk, id ``"<exchange_id>:<chunk>"``, document = the summary text, metadata
``exchange_id``, ``chunk``, ``user_id``, ``scope`` (``Scope.key``), ``ts``
(epoch seconds). Every read and delete filters on ``user_id`` (and ``scope``)
in Chroma's ``where``, never afterwards in Python.

Errors: driver failures (connection refused, HTTP errors, ``chromadb.errors``)
become ``TierUnavailable("summaries")``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

import numpy as np

from memory.errors import ConfigurationError, InvalidInput, TierUnavailable
from memory.models import ForgetTarget, Hit, Scope, SummaryRecord

if TYPE_CHECKING:
    import httpx
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

T = TypeVar("T")

TIER = "summaries"
UPSERT_BATCH = 512
# Chunks asked per wanted exchange: several chunks of one exchange collapse into one hit.
OVERFETCH = 3
MAX_RESULTS = 1000


def _driver_errors() -> tuple[type[BaseException], ...]:
    import httpx
    from chromadb.errors import ChromaError

    return (ChromaError, httpx.HTTPError, OSError)


def _is_driver_error(exc: Exception) -> bool:
    # chromadb's HTTP client raises a bare ``Exception`` for server errors it cannot map.
    return type(exc) is Exception or isinstance(exc, _driver_errors())


def _where(user_id: str, scope: Scope | None = None,
           exchange_ids: Sequence[str] | None = None) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = [{"user_id": user_id}]
    if scope is not None:
        clauses.append({"scope": scope.key})
    if exchange_ids is not None:
        clauses.append({"exchange_id": {"$in": list(exchange_ids)}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class ChromaSummaries:
    """The summaries tier over one Chroma collection (see the module docstring).

    Build it with ``create_summaries``; close it with ``aclose``.
    """

    name = TIER

    def __init__(self, client: ClientAPI, collection: Collection) -> None:
        self._client = client
        self._collection = collection

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

    async def upsert(self, records: Sequence[SummaryRecord]) -> None:
        """Store records keyed by (exchange_id, chunk); replaying a record changes nothing.

        Raises InvalidInput for a record without an embedding, TierUnavailable
        when Chroma fails (records of earlier batches may then be stored).
        """
        for rec in records:
            if not rec.embedding:
                raise InvalidInput("a summary record needs its embedding", field="embedding")
        for start in range(0, len(records), UPSERT_BATCH):
            batch = records[start:start + UPSERT_BATCH]
            await self._run(
                self._collection.upsert,
                ids=[f"{r.exchange_id}:{r.chunk}" for r in batch],
                embeddings=np.asarray([r.embedding for r in batch], dtype=np.float32),
                documents=[r.summary for r in batch],
                metadatas=[{"exchange_id": r.exchange_id, "chunk": r.chunk, "user_id": r.user_id,
                            "scope": r.scope_key, "ts": r.timestamp.timestamp()} for r in batch],
            )

    async def search(self, scope: Scope, embedding: np.ndarray, limit: int) -> list[Hit]:
        """Up to ``limit`` nearest exchanges in ``scope``, best first, one hit per exchange.

        ``score`` is cosine similarity of the exchange's best chunk (1 - cosine
        distance); ``detail`` is that chunk's summary.
        """
        if limit <= 0:
            return []
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        result = await self._run(
            self._collection.query,
            query_embeddings=vector[None, :],
            n_results=min(limit * OVERFETCH, MAX_RESULTS),
            where=_where(scope.user_id, scope),
            include=["documents", "metadatas", "distances"],
        )
        metadatas = (result["metadatas"] or [[]])[0]
        documents = (result["documents"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        best: dict[str, Hit] = {}
        for meta, doc, dist in zip(metadatas, documents, distances, strict=True):
            exchange_id = str(meta["exchange_id"])
            score = 1.0 - float(dist)
            if exchange_id not in best or score > best[exchange_id].score:
                best[exchange_id] = Hit(exchange_id, score, "semantic", doc or "")
        return sorted(best.values(), key=lambda h: h.score, reverse=True)[:limit]

    async def records(self, user_id: str, scope: Scope | None = None) -> list[SummaryRecord]:
        """Every record of the user (one scope, or all), without embeddings, oldest first."""
        result = await self._run(self._collection.get, where=_where(user_id, scope),
                                 include=["documents", "metadatas"])
        out = [
            SummaryRecord(
                exchange_id=str(meta["exchange_id"]), chunk=int(cast(int, meta["chunk"])),
                user_id=str(meta["user_id"]), scope_key=str(meta["scope"]),
                timestamp=datetime.fromtimestamp(float(cast(float, meta["ts"])), UTC), summary=doc or "")
            for meta, doc in zip(result["metadatas"] or [], result["documents"] or [], strict=True)
        ]
        out.sort(key=lambda r: (r.timestamp, r.exchange_id, r.chunk))
        return out

    async def count(self, user_id: str, scope: Scope | None = None) -> int:
        """How many chunk records the user has (in one scope, or all)."""
        result = await self._run(self._collection.get, where=_where(user_id, scope), include=[])
        return len(result["ids"])

    async def forget(self, target: ForgetTarget) -> int:
        """Delete the user's records (all scopes, one scope, or some exchanges); return how many."""
        if target.exchange_ids is not None and not target.exchange_ids:
            return 0
        where = _where(target.user_id, target.scope, target.exchange_ids)
        found = await self._run(self._collection.get, where=where, include=[])
        if not found["ids"]:
            return 0
        deleted = await self._run(self._collection.delete, where=where)
        # chromadb >= 1.1 reports the number deleted; older versions return None.
        if isinstance(deleted, dict) and isinstance(deleted.get("deleted"), int):
            return int(deleted["deleted"])
        return len(found["ids"])

    async def aclose(self) -> None:
        """Release the client (the on-disk store's shared system, the HTTP connection pool)."""
        await asyncio.to_thread(close_chroma_client, self._client)

    async def __aenter__(self) -> ChromaSummaries:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _http_sessions(client: ClientAPI) -> list[httpx.Client]:
    """The httpx sessions inside chromadb's HTTP client (its own and its admin client's).

    chromadb (1.x) keeps them private, creates them without timeouts and does
    not close them; we reach in to fix both, and find nothing (so do nothing)
    for an on-disk client or if chromadb's layout changes.
    """
    import httpx

    sessions: list[httpx.Client] = []
    for owner in (client, getattr(client, "_admin_client", None)):
        session = getattr(getattr(owner, "_server", None), "_session", None)
        if isinstance(session, httpx.Client) and all(session is not s for s in sessions):
            sessions.append(session)
    return sessions


def close_chroma_client(client: ClientAPI) -> None:
    """Close a chromadb client fully: its shared system and, for HTTP, its connection pool."""
    sessions = _http_sessions(client)
    close = getattr(client, "close", None)
    if close is not None:
        close()
    for session in sessions:
        # chromadb's close() stops the system but leaves its httpx.Client (and sockets) open.
        session.close()


def _http_address(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("chroma.url", f"expected http(s)://host:port, got {url!r}")
    ssl = parts.scheme == "https"
    try:
        port = parts.port or (443 if ssl else 8000)
    except ValueError as exc:
        raise ConfigurationError("chroma.url", f"bad port in {url!r}") from exc
    return parts.hostname, port, ssl


def _open(url: str | None, path: Path | None, collection: str,
          timeout: float) -> tuple[ClientAPI, Collection]:
    import chromadb
    import httpx
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    client: ClientAPI
    if url:
        host, port, ssl = _http_address(url)
        client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
        for session in _http_sessions(client):
            session.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
    elif path is not None:
        path.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(path), settings=settings)
    else:
        raise ConfigurationError("chroma.url", "neither a server URL nor a data path is set")
    try:
        coll = client.get_or_create_collection(
            collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
    except BaseException:
        close_chroma_client(client)
        raise
    return client, coll


async def create_summaries(url: str | None, path: Path | None, collection: str,
                           *, request_timeout: float = 30.0) -> ChromaSummaries:
    """Connect to the Chroma server at ``url``, or open the on-disk store at ``path``.

    Creates the collection (cosine space) if missing. Raises TierUnavailable
    when the server cannot be reached, ConfigurationError for a bad URL or
    when neither location is given. ``request_timeout`` bounds each HTTP request
    (seconds), so a hung server cannot hold a worker thread forever.
    """
    try:
        client, coll = await asyncio.to_thread(_open, url, path, collection, request_timeout)
    except ConfigurationError:
        raise
    except ValueError as exc:
        # chromadb.HttpClient raises ValueError("Could not connect to a Chroma server ...")
        raise TierUnavailable(TIER, str(exc)) from exc
    except Exception as exc:
        if _is_driver_error(exc):
            raise TierUnavailable(TIER, f"{type(exc).__name__}: {exc}") from exc
        raise
    return ChromaSummaries(client, coll)
