"""A second round of candidates built from the first round's best hits.

Evidence for a question about several things ("What are Fahim's hobbies?") is
spread over exchanges that share few words with the question. Once the tiers
have answered, the best fused hits (the seeds) lead to more candidates:

- ``neighbours``: the exchanges said just before and after a seed in the same
  sitting, where a topic goes on ("and I also started painting");
- ``feedback``: a second full-text query made of the words the seeds share that
  the query lacks (pseudo-relevance feedback; the query's own words were searched);
- ``entities``: the graph's exchanges mentioning the seeds' entities.

Each is one list fused with the first round's lists; its weight 0 turns it off.
``CandidateExpansion`` is one of ``HierarchicalMemoryManager``'s bases.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from memory.extraction import STOPWORDS, query_names, stem
from memory.models import Exchange, Hit, Scope, TierReport
from memory.parts import ManagerParts
from memory.ranking import Fused, fuse

T = TypeVar("T")
_WORD = re.compile(r"[^\W\d_][\w'’\-]*[^\W_]")


def feedback_words(query: str, seeds: Sequence[Exchange], limit: int) -> list[str]:
    """Up to ``limit`` content words of the seeds that the query lacks: the ones most seeds share
    first, then by first appearance in rank order (one surface form per stem)."""
    asked = {stem(w) for w in _WORD.findall(query.lower())}
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for e in seeds:
        seen: set[str] = set()
        for w in _WORD.findall(f"{e.user_message} {e.bot_response}".lower()):
            s = stem(w)
            if len(w) < 3 or w in STOPWORDS or s in asked or s in seen:
                continue
            seen.add(s)
            counts[s] += 1
            first.setdefault(s, w)
    order = {s: i for i, s in enumerate(first)}
    ranked = sorted(counts, key=lambda s: (-counts[s], order[s]))
    return [first[s] for s in ranked[:limit]]


def neighbour_hits(rows: Sequence[tuple[str, Exchange, int]], exclude: set[str]) -> list[Hit]:
    """Neighbours as one ranked list: nearer steps first, then by their seed's rank (rows come in
    seed order); an exchange already among ``exclude`` (the seeds) is left out."""
    ordered = sorted(enumerate(rows), key=lambda item: (item[1][2], item[0]))
    return [Hit(e.id, 1.0 / step, "neighbours", f"next to {anchor}")
            for _, (anchor, e, step) in ordered if e.id not in exclude]


class CandidateExpansion(ManagerParts):
    """The manager's second retrieval round (see the module doc)."""

    if TYPE_CHECKING:
        async def _timed(self, name: str, aw: Awaitable[T], timeout_ms: int,
                         reports: dict[str, TierReport]) -> T | None: ...

    async def _read_full(self, scope: Scope, fused: Sequence[Fused], known: dict[str, Exchange],
                         reports: dict[str, TierReport]) -> None:
        """Add to ``known`` the full text of the fused candidates it lacks, read from the archive."""
        wanted = [f.exchange_id for f in fused if f.exchange_id not in known]
        if wanted:
            r = self.settings.retrieval
            rows = await self._timed("archive", self.t.archive.get(scope, wanted), r.archive_timeout_ms, reports)
            known.update({e.id: e for e in rows or []})

    async def _second_round(self, scope: Scope, query: str, lists: Mapping[str, Sequence[Hit]],
                            weights: Mapping[str, float], fused: list[Fused], known: dict[str, Exchange],
                            reports: dict[str, TierReport]) -> list[Fused]:
        """The first round's ``lists`` fused again with the second round's; ``known`` gains the
        new candidates' text. Its wall time is reported as the "expansion" tier."""
        r = self.settings.retrieval
        start = time.perf_counter()
        seeds = [known[f.exchange_id] for f in fused[: r.expand_seeds] if f.exchange_id in known]
        more, found = await self._expand(scope, query, seeds, reports)
        if more:
            known.update({e.id: e for e in found})
            fused = fuse({**lists, **more}, weights=weights, k=r.rrf_k)
            await self._read_full(scope, fused[: r.candidates], known, reports)
        reports["expansion"] = TierReport("expansion", "ok", (time.perf_counter() - start) * 1000,
                                          sum(len(hits) for hits in more.values()))
        return fused

    async def _expand(self, scope: Scope, query: str, seeds: Sequence[Exchange],
                      reports: dict[str, TierReport]) -> tuple[dict[str, list[Hit]], list[Exchange]]:
        """The second round's lists, by name, and the exchanges it already read in full (neighbours)."""
        r = self.settings.retrieval
        if not seeds:
            return {}, []
        seed_ids = [e.id for e in seeds]

        async def none() -> None:
            return None

        rows, feedback, entities = await asyncio.gather(
            self._timed("archive", self.t.archive.neighbours(
                scope, seed_ids, r.expand_neighbours, timedelta(minutes=r.neighbour_gap_minutes)),
                r.archive_timeout_ms, reports) if r.weight_neighbours > 0 and r.expand_neighbours > 0 else none(),
            self._timed("archive", self.t.archive.search(
                scope, " ".join(feedback_words(query, seeds, r.feedback_words)), r.candidates),
                r.archive_timeout_ms, reports) if r.weight_feedback > 0 else none(),
            self._timed("graph", self.graph.related(
                scope, _seed_names(seeds), r.candidates), r.graph_timeout_ms, reports)
            if r.weight_entities > 0 else none())
        lists: dict[str, list[Hit]] = {}
        found: list[Exchange] = []
        if rows:
            lists["neighbours"] = neighbour_hits(rows, set(seed_ids))
            found = [e for _, e, _ in rows]
        if feedback:
            lists["feedback"] = [Hit(h.exchange_id, h.score, "feedback") for h in feedback]
        if entities:
            lists["entities"] = [Hit(h.exchange_id, h.score, "entities") for h in entities]
        return lists, found


def _seed_names(seeds: Sequence[Exchange]) -> list[str]:
    names: list[str] = []
    for e in seeds:
        for n in query_names(f"{e.user_message}\n{e.bot_response}"):
            if n not in names:
                names.append(n)
    return names
