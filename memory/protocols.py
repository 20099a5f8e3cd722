"""One small protocol per role. The manager imports these, never the drivers.

Every method raises ``TierUnavailable`` (from ``memory.errors``) when its store
cannot answer, translated from the driver's own error at the tier edge.
Every read and delete is confined to one user (and scope) in the storage
query itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np

from memory.models import Exchange, Extraction, ForgetTarget, Hit, Relation, Scope, SummaryRecord, TypedFact


class Tier(Protocol):
    name: str

    async def ping(self) -> None:
        """Return when the store answers; raise TierUnavailable otherwise."""

    async def forget(self, target: ForgetTarget) -> int:
        """Delete what the target names; return how many stored items were removed."""

    async def count(self, user_id: str, scope: Scope | None = None) -> int:
        """How many items this tier holds for the user (in one scope, or all)."""


class CacheTier(Tier, Protocol):
    async def push(self, exchange: Exchange) -> None:
        """Add an exchange at the head of its scope's recent list (capped, TTL refreshed)."""

    async def recent(self, scope: Scope, limit: int) -> list[Exchange] | None:
        """The newest exchanges, newest first; None on a cache miss (nothing cached)."""

    async def warm(self, scope: Scope, exchanges: Sequence[Exchange]) -> None:
        """Replace the scope's list with ``exchanges`` (newest first), short TTL."""

    async def invalidate(self, scope: Scope) -> None:
        """Drop the scope's list so the next read warms it from the archive."""


class ArchiveTier(Tier, Protocol):
    async def insert(self, exchange: Exchange, *, cache_stale: bool = False) -> bool:
        """Store the exchange and enqueue its derived work in one transaction.

        Returns False when an exchange with that id already exists (nothing changed).
        Raises ArchiveUnavailable when the archive cannot commit.
        """

    async def get(self, scope: Scope, ids: Sequence[str]) -> list[Exchange]:
        """The exchanges of ``ids`` that belong to ``scope``, in no particular order."""

    async def recent(self, scope: Scope, limit: int, *, before: datetime | None = None) -> list[Exchange]:
        """The scope's newest exchanges, newest first."""

    async def search(self, scope: Scope, query: str, limit: int, *, since: datetime | None = None,
                     until: datetime | None = None) -> list[Hit]:
        """Full-text search within the scope (and the time window ``[since, until)``), best first."""

    async def neighbours(self, scope: Scope, ids: Sequence[str], each_side: int,
                         max_gap: timedelta) -> list[tuple[str, Exchange, int]]:
        """The exchanges just before and after each of ``ids`` within ``max_gap``:
        (anchor id, neighbour, steps away), in ``ids`` order, nearest first."""

    async def newest_ids(self, scope: Scope, limit: int, since: datetime, until: datetime) -> list[str]:
        """Ids of the scope's newest ``limit`` exchanges in ``[since, until)``, newest first."""

    async def exchanges(self, user_id: str, scope: Scope | None = None) -> list[Exchange]:
        """Every exchange of the user (one scope or all), oldest first."""


class Outbox(Protocol):
    async def claim(self, limit: int, lease_seconds: float) -> list[tuple[Exchange, bool]]:
        """Lease up to ``limit`` pending exchanges as (exchange, cache_stale) pairs."""

    async def complete(self, exchange_ids: Sequence[str], revisions: Sequence[int] | None = None) -> set[str]:
        """Remove finished exchanges from the queue; with ``revisions`` (each as processed), one
        edited since stays queued, claimable at once. Returns the ids that were still queued."""

    async def forgotten(self, exchange_ids: Sequence[str]) -> set[str]:
        """Which of ``exchange_ids`` the archive no longer holds."""

    async def fail(self, exchange_ids: Sequence[str], error: str, retry_in: float) -> None:
        """Record an error and make the exchanges claimable again after ``retry_in`` seconds."""

    async def pending(self) -> int:
        """How many exchanges wait for derived work (leased ones included)."""

    async def pending_for(self, user_id: str, scope: Scope | None = None) -> int:
        """How many of the user's exchanges (in one scope, or all) wait for derived work."""

    async def enqueue_all(self, user_id: str | None = None) -> int:
        """Queue every archived exchange (of one user, or all) again; returns the count."""


class SummaryTier(Tier, Protocol):
    async def upsert(self, records: Sequence[SummaryRecord]) -> None:
        """Store records keyed by (exchange_id, chunk); replaying a record changes nothing."""

    async def search(self, scope: Scope, embedding: np.ndarray, limit: int) -> list[Hit]:
        """Nearest exchanges in the scope, best first, one hit per exchange."""

    async def stored_model(self) -> str | None:
        """The model that made the stored vectors (None for an empty store)."""

    async def mark_model(self, model_id: str) -> None:
        """Name the model of the stored vectors."""

    async def records(self, user_id: str, scope: Scope | None = None) -> list[SummaryRecord]:
        """Every record of the user, without embeddings (for export)."""


class GraphTier(Tier, Protocol):
    async def ingest(self, items: Sequence[tuple[Exchange, Extraction]]) -> int:
        """Record users, entities and topics of the exchanges, each exchange exactly once.

        Returns how many exchanges were new; replaying an exchange changes nothing.
        """

    async def related(self, scope: Scope, names: Sequence[str], limit: int) -> list[Hit]:
        """Exchanges linked to the entities/topics named (normalised names), best first."""

    async def profile(self, scope: Scope, limit: int) -> list[Relation]:
        """The scope's most mentioned entities and topics, most frequent first."""

    async def topic_exchanges(self, scope: Scope, name: str) -> list[str]:
        """Ids of the scope's exchanges that mention the entity or topic ``name``."""

    async def facts(self, scope: Scope, *, support: bool = True) -> list[TypedFact]:
        """The scope's typed facts (current and closed), oldest first, with their supporting exchanges
        (``support=False``: support left empty, for the read path)."""

    async def existing(self, exchange_ids: Sequence[str]) -> set[str]:
        """Which of ``exchange_ids`` have been ingested (to audit the derived tiers)."""


class Embedder(Protocol):
    model_id: str
    dim: int

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text; ``query`` when the texts are searches."""


class Extractor(Protocol):
    async def extract(self, exchanges: Sequence[Exchange]) -> list[Extraction]:
        """Summary, chunks and mentions for each exchange, in order."""
