"""The assembled context: what the manager found, and how it is packed to a token budget."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from memory.focus import focused, speakers, terms
from memory.models import Exchange, Relation, TierReport
from memory.tiers.ledger import Fact
from memory.tokens import count_tokens, truncate_tokens

_MIN_ITEM_TOKENS = 24


@dataclass(frozen=True, slots=True)
class RankedExchange:
    exchange: Exchange
    score: float
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PackedContext:
    text: str
    exchange_ids: tuple[str, ...]
    tokens: int


def _date(ts: datetime, with_time: bool) -> str:
    return ts.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def render_exchange(e: Exchange, *, with_time: bool = False) -> str:
    user, bot = speakers(e)
    return f"[{_date(e.timestamp, with_time)}] {user}: {e.user_message}\n{bot}: {e.bot_response}"


def widen(chosen: list[tuple[str, str, datetime | None]], whole: dict[str, str], room: int) -> int:
    """Give focused items (``whole``: key -> the whole exchange) their whole text back, in
    ``chosen``'s order, while the extra tokens fit in ``room``; returns the tokens added."""
    added = 0
    for i, (key, text, ts) in enumerate(chosen):
        if key in whole:
            extra = count_tokens(whole[key]) - count_tokens(text)
            if extra <= room - added:
                chosen[i] = (key, whole[key], ts)
                added += extra
    return added


@dataclass
class ConversationContext:
    """Everything the memory offers for one reply.

    ``recent`` is newest first; ``relevant`` best first (fused across tiers, the
    recent ones excluded); ``tiers`` says how each tier answered. Text is only
    produced by ``to_context_string``, which never exceeds its token budget.
    ``session_since``: recent exchanges older than this are not part of the
    ongoing conversation, so they get no reserved room (None = all are).
    """

    user_id: str
    guild_id: str | None
    query: str
    recent: list[Exchange] = field(default_factory=list)
    relevant: list[RankedExchange] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    profile: list[Relation] = field(default_factory=list)
    tiers: dict[str, TierReport] = field(default_factory=dict)
    max_tokens: int = 1500
    recent_first: int = 2
    relevant_first: int = 3
    session_since: datetime | None = None
    focus: bool = True  # long relevant exchanges are packed as their matching turn first (memory.focus)
    focus_min_tokens: int = 80  # ... when the whole exchange would cost more than this

    @property
    def degraded(self) -> list[str]:
        """Tiers that failed or timed out while this context was assembled."""
        return [name for name, r in self.tiers.items() if r.status in ("failed", "timeout")]

    @property
    def exchange_ids(self) -> list[str]:
        """Ids of the archived exchanges whose text is in the context at ``max_tokens``."""
        return list(self.pack(self.max_tokens).exchange_ids)

    def to_context_string(self, max_tokens: int | None = None, *, exclude: Collection[str] = ()) -> str:
        """The packed text; see ``pack``."""
        return self.pack(self.max_tokens if max_tokens is None else max_tokens, exclude=exclude).text

    def _crowded(self, budget: int) -> bool:
        """Whether the relevant exchanges, whole, would overflow ``budget`` (then focus pays)."""
        total = 0
        for r in self.relevant:
            total += count_tokens(render_exchange(r.exchange))
            if total > budget:
                return True
        return False

    def pack(self, max_tokens: int, *, exclude: Collection[str] = ()) -> PackedContext:
        """Fill ``max_tokens`` by priority: facts, the three most relevant exchanges, the
        two newest if they belong to the ongoing conversation (``session_since``), the rest
        of the relevant ones, then the rest of the recent ones. Sections render in time order with
        dates so the reader can tell what is current. A long exchange that does not fit
        whole is cut rather than dropped when enough room remains. Exchanges whose ids are
        in ``exclude`` (say, the turns a caller already sends verbatim) are left out.
        """
        budget = max(0, int(max_tokens))
        headers = {"facts": "Facts the user asked you to remember:",
                   "relevant": "Relevant earlier conversations (oldest first):",
                   "recent": "Recent conversation (oldest first):"}
        chosen: dict[str, list[tuple[str, str, datetime | None]]] = {k: [] for k in headers}
        used = 0
        seen: set[str] = set(exclude)

        def take(section: str, key: str, text: str, ts: datetime | None) -> None:
            nonlocal used
            cost = count_tokens(text) + 1 + (0 if chosen[section] else count_tokens(headers[section]) + 2)
            room = budget - used
            if cost > room:
                header_cost = 0 if chosen[section] else count_tokens(headers[section]) + 2
                if room - header_cost - 1 < _MIN_ITEM_TOKENS:
                    return
                text = truncate_tokens(text, room - header_cost - 1)
                cost = count_tokens(text) + 1 + header_cost
            chosen[section].append((key, text, ts))
            seen.add(key)
            used += cost

        for f in self.facts:
            take("facts", f"fact:{f.id}", f"- {f.text}", None)
        top = [("relevant", r.exchange) for r in self.relevant]
        since = self.session_since
        current = [e for e in self.recent if since is None or e.timestamp >= since][: self.recent_first]
        order: list[tuple[str, Exchange]] = top[: self.relevant_first]
        order += [("recent", e) for e in current]
        order += top[self.relevant_first:]
        reserved = {e.id for e in current}
        order += [("recent", e) for e in self.recent if e.id not in reserved]
        query_terms = terms(self.query) if self.focus and self._crowded(budget) else frozenset()
        whole: dict[str, str] = {}
        for section, e in order:
            if e.id not in seen:
                text = render_exchange(e, with_time=section == "recent")
                short = None
                if section == "relevant" and query_terms and count_tokens(text) > self.focus_min_tokens:
                    short = focused(e, query_terms)
                if short is not None:
                    whole[e.id] = text
                take(section, e.id, short or text, e.timestamp)
        if whole:
            used += widen(chosen["relevant"], whole, budget - used)

        parts: list[str] = []
        ids: list[str] = []
        for section in ("facts", "relevant", "recent"):
            items = chosen[section]
            if not items:
                continue
            if section != "facts":
                items = sorted(items, key=lambda it: it[2] or datetime.min)
                ids += [key for key, _, _ in items]
            parts.append(headers[section] + "\n" + "\n".join(text for _, text, _ in items))
        text = "\n\n".join(parts)
        while text and count_tokens(text) > budget:  # joins can add a token or two; stay under
            text = truncate_tokens(text, budget)
        return PackedContext(text, tuple(ids), count_tokens(text))
