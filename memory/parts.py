"""``ManagerParts``: what every part of ``HierarchicalMemoryManager`` kept in its own module
(``memory.governance``, ``memory.services``) may use of the manager, declared once for type checking.
The manager's ``__init__`` sets each of these; the parts never set them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memory.metrics import Metrics
    from memory.protocols import CacheTier, Embedder, Extractor, GraphTier, SummaryTier
    from memory.settings import MemorySettings
    from memory.stack import Tiers
    from memory.tiers.dead_letters import PostgresDeadLetters
    from memory.understanding import ProfileBook
    from memory.worker import DerivedWorker


class ManagerParts:
    t: Tiers
    settings: MemorySettings
    metrics: Metrics
    cache: CacheTier
    summaries: SummaryTier
    graph: GraphTier
    embedder: Embedder
    extractor: Extractor
    dead_letters: PostgresDeadLetters
    worker: DerivedWorker
    profiles: ProfileBook
