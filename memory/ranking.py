"""Fusion of the tiers' candidate lists (weighted reciprocal rank)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
