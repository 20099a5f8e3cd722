"""Fusion of the tiers' candidate lists (weighted reciprocal rank)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from memory.context import RankedExchange
from memory.models import Hit

DEFAULT_WEIGHTS: Mapping[str, float] = {"fulltext": 1.0, "semantic": 1.0, "graph": 0.5, "recent": 0.2}


@dataclass(frozen=True, slots=True)
class Fused:
    exchange_id: str
    score: float
    sources: tuple[str, ...]


def fuse(lists: Mapping[str, Sequence[Hit]], *, weights: Mapping[str, float] = DEFAULT_WEIGHTS,
         k: int = 60) -> list[Fused]:
    """Weighted reciprocal-rank fusion: sum of ``w / (k + rank)`` over the lists an id appears in.

    Ranks are 1-based within each list; ties keep first-seen order. Returns best first.
    """
    scores: dict[str, float] = {}
    sources: dict[str, list[str]] = {}
    for source, hits in lists.items():
        w = weights.get(source, 1.0)
        seen: set[str] = set()
        for rank, hit in enumerate(hits, start=1):
            if hit.exchange_id in seen:
                continue
            seen.add(hit.exchange_id)
            scores[hit.exchange_id] = scores.get(hit.exchange_id, 0.0) + w / (k + rank)
            sources.setdefault(hit.exchange_id, []).append(source)
    order = sorted(scores, key=lambda i: scores[i], reverse=True)
    return [Fused(i, scores[i], tuple(sources[i])) for i in order]


def aged(ranked: Sequence[RankedExchange], now: datetime, weight: float,
         half_life_days: float) -> list[RankedExchange]:
    """Time decay: each score times ``(1 - weight) + weight * 0.5 ** (age / half_life)``, re-sorted
    (stable). ``weight`` 0 leaves the ranking as it is; 1 halves a score every half-life."""
    if weight <= 0 or not ranked:
        return list(ranked)
    out = []
    for r in ranked:
        age_days = max(0.0, (now - r.exchange.timestamp).total_seconds() / 86400)
        factor = (1 - weight) + weight * 0.5 ** (age_days / max(half_life_days, 1e-6))
        out.append(dataclasses.replace(r, score=r.score * factor))
    return sorted(out, key=lambda r: r.score, reverse=True)
