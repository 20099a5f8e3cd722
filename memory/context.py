"""The assembled context: what the manager found, and how it is packed to a token budget."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from memory.extraction import STOPWORDS, stem, summarise
from memory.focus import focused, speakers, stamp, terms
from memory.models import Exchange, TierReport
from memory.profile import PROFILE_TOKENS, Profile
from memory.sessions import HEADER as SESSIONS_HEADER
from memory.sessions import SessionSummary, local_heading
from memory.tiers.ledger import Fact
from memory.tokens import count_tokens, truncate_tokens

INSTRUCTIONS_HEADER = "Instructions the user gave you:"
_CONDITIONAL = re.compile(r"\b(?:when|whenever|if)\b", re.I)  # "... when I ask about budgets"
_ASKING = frozenset("ask asks asking asked question questions talk talking tell telling want need".split())
_MIN_ITEM_TOKENS = 24
_MIN_SUMMARY_TOKENS = 6  # "[date] (summary) User: x | Bot: y" never costs less: no summary is made for less room


@dataclass(frozen=True, slots=True)
class RankedExchange:
    exchange: Exchange
    score: float
    sources: tuple[str, ...]
    summary: str = ""  # the stored summary when the caller has it; else one is made when packing


@dataclass(frozen=True, slots=True)
class PackedContext:
    text: str
    exchange_ids: tuple[str, ...]
    tokens: int


def render_exchange(e: Exchange, *, with_time: bool = False, dated: bool = True, zone: tzinfo = UTC) -> str:
    user, bot = speakers(e)
    text = f"{user}: {e.user_message}\n{bot}: {e.bot_response}"
    return f"[{stamp(e.timestamp, with_time, zone)}] {text}" if dated else text


def widen(chosen: list[tuple[str, str, datetime | None]], whole: dict[str, str], room: int,
          count: Callable[[str], int] = count_tokens) -> int:
    """Give focused items (``whole``: key -> the whole exchange) their whole text back, in
    ``chosen``'s order, while the extra tokens fit in ``room``; returns the tokens added."""
    added = 0
    for i, (key, text, ts) in enumerate(chosen):
        if key in whole:
            extra = count(whole[key]) - count(text)
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
    profile: Profile | None = None
    profile_tokens: int = PROFILE_TOKENS
    sessions: list[SessionSummary] = field(default_factory=list)  # dated summaries, newest first
    tiers: dict[str, TierReport] = field(default_factory=dict)
    max_tokens: int = 1500
    recent_first: int = 2
    relevant_first: int = 3
    session_since: datetime | None = None
    focus: bool = True  # long relevant exchanges are packed as their matching turn first (memory.focus)
    focus_min_tokens: int = 80  # ... when the whole exchange would cost more than this
    focus_share: float = 0.25  # ... and more than this share of the budget (shorter ones stay whole)
    date_groups: bool = True  # relevant exchanges of one day share one "[date]" line instead of one each
    zone: tzinfo = UTC  # the user's time zone: dates and times are shown in it, days begin at its midnight
    # token counts of the texts packing has measured: a text is counted once per context, however many
    # budgets it is packed at or checks it passes (lives and dies with this object)
    _counts: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _count(self, text: str) -> int:
        n = self._counts.get(text)
        if n is None:
            n = self._counts[text] = count_tokens(text)
        return n

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
            total += self._count(render_exchange(r.exchange))
            if total > budget:
                return True
        return False

    def pack(self, max_tokens: int, *, exclude: Collection[str] = ()) -> PackedContext:
        """Fill ``max_tokens`` by priority: facts, the three most relevant exchanges, the
        two newest if they belong to the ongoing conversation (``session_since``), the rest
        of the relevant ones, then the rest of the recent ones. Sections render in time order with
        dates so the reader can tell what is current. An exchange outside the ongoing
        conversation that does not fit whole is packed as its summary when that fits
        (names, numbers and dates kept); otherwise a long exchange is cut rather than
        dropped when enough room remains. The user's profile heads the text at a small
        fixed cost. Exchanges whose ids are in ``exclude`` (say, the turns a caller
        already sends verbatim) are left out.
        """
        budget = max(0, int(max_tokens))
        profile = self._profile_text(budget)
        if profile:
            budget -= self._count(profile) + 2
        told = self._instructions_text(budget)
        if told:
            profile = f"{profile}\n\n{told}" if profile else told
            budget -= self._count(told) + 2
        sessions = self._sessions_text(budget)
        if sessions:
            budget -= self._count(sessions) + 2
        headers = {"facts": "Facts the user asked you to remember:",
                   "relevant": "Relevant earlier conversations (oldest first):",
                   "recent": "Recent conversation (oldest first):"}
        chosen: dict[str, list[tuple[str, str, datetime | None]]] = {k: [] for k in headers}
        header_cost = {k: self._count(h) + 2 for k, h in headers.items()}
        days: set[str] = set()  # the "[date]" lines the relevant section has already paid for
        used = 0
        seen: set[str] = set(exclude)

        def take(section: str, key: str, text: str, ts: datetime | None,
                 short: Callable[[], str] | None = None, day: str = "") -> None:
            """Pack ``text``, or else ``short()`` (its summary, made only when needed), or else
            ``text`` cut to the room left."""
            nonlocal used
            extra = 0 if chosen[section] else header_cost[section]
            if day and day not in days:
                extra += self._count(f"[{day}]") + 1
            cost = self._count(text) + 1 + extra
            room = budget - used
            if cost > room and short is not None and room - extra - 1 >= _MIN_SUMMARY_TOKENS:
                summary = short()
                if self._count(summary) + 1 + extra <= room:
                    text, cost = summary, self._count(summary) + 1 + extra  # the summary fits
            if cost > room:
                if room - extra - 1 < _MIN_ITEM_TOKENS:
                    return
                text = truncate_tokens(text, room - extra - 1)
                cost = self._count(text) + 1 + extra
            chosen[section].append((key, text, ts))
            seen.add(key)
            used += cost
            if day:
                days.add(day)

        for f in self._ranked_facts(budget):
            take("facts", f"fact:{f.id}", f"- {f.text}", None)
        top = [("relevant", r.exchange) for r in self.relevant]
        since = self.session_since
        current = [e for e in self.recent if since is None or e.timestamp >= since][: self.recent_first]
        order: list[tuple[str, Exchange]] = top[: self.relevant_first]
        order += [("recent", e) for e in current]
        order += top[self.relevant_first:]
        reserved = {e.id for e in current}
        order += [("recent", e) for e in self.recent if e.id not in reserved]
        summaries = {r.exchange.id: r.summary for r in self.relevant}
        query_terms = terms(self.query) if self.focus and self._crowded(budget) else frozenset()
        whole: dict[str, str] = {}
        for section, e in order:
            if budget - used <= 2:  # not even a line break fits: the rest cannot be packed
                break
            if e.id not in seen:
                grouped = self.date_groups and section == "relevant"  # the date goes on the day's line
                text = render_exchange(e, with_time=section == "recent", dated=not grouped, zone=self.zone)
                short = None
                if section == "relevant" and query_terms and self._count(text) > max(
                        self.focus_min_tokens, self.focus_share * budget):
                    short = focused(e, query_terms, dated=not grouped, zone=self.zone)
                if short is not None:
                    whole[e.id] = text
                summary = None if e.id in reserved else functools.partial(
                    self._summary_line, e, summaries.get(e.id), dated=not grouped)
                take(section, e.id, short or text, e.timestamp, summary, stamp(e.timestamp, False, self.zone)
                     if grouped else "")
        if whole:
            used += widen(chosen["relevant"], whole, budget - used, self._count)

        parts: list[str] = []
        ids: list[str] = []
        for section in ("facts", "relevant", "recent"):
            items = chosen[section]
            if not items:
                continue
            if section != "facts":
                items = sorted(items, key=lambda it: it[2] or datetime.min)
                ids += [key for key, _, _ in items]
            lines: list[str] = []
            last = ""
            for _, text, ts in items:
                if section == "relevant" and self.date_groups:
                    day = stamp(ts, False, self.zone) if ts is not None else ""
                    if day != last:  # one line per day heads that day's exchanges
                        lines.append(f"[{day}]")
                        last = day
                lines.append(text)
            parts.append(headers[section] + "\n" + "\n".join(lines))
        text = "\n\n".join(([profile] if profile else []) + ([sessions] if sessions else []) + parts)
        budget = max(0, int(max_tokens))
        tokens = count_tokens(text)
        while tokens > budget:  # joins can add a token or two; stay under
            text = truncate_tokens(text, budget)
            tokens = count_tokens(text)
        return PackedContext(text, tuple(ids), tokens)

    # ---- the profile: a small fixed cost at the head of every context --------------------------

    def _ranked_facts(self, budget: int) -> list[Fact]:
        """Saved facts by relevance to the query, then importance, then recency, within a third of
        ``budget``: facts no longer crowd out the rest of a small budget."""
        def words(text: str) -> set[str]:
            return {stem(w) for w in re.findall(r"\w{3,}", text.lower()) if w not in STOPWORDS}

        query = words(self.query)

        def rank(f: Fact) -> tuple[int, int, datetime]:
            overlap = len(query & words(f.text))
            return overlap, f.importance, f.created_at

        out, used = [], 0
        for f in sorted(self.facts, key=rank, reverse=True):
            cost = self._count(f.text) + 3
            if used + cost > budget // 3:
                continue
            out.append(f)
            used += cost
        return out

    def _summary_line(self, e: Exchange, summary: str | None, *, dated: bool = True) -> str:
        """An older exchange as its summary: packed instead when its full text does not fit."""
        line = f"(summary) {summary or summarise(e)}"
        return f"[{stamp(e.timestamp, False, self.zone)}] {line}" if dated else line

    def _sessions_text(self, budget: int) -> str:
        """Dated session summaries, oldest first, within a quarter of ``budget`` (newest kept first)."""
        room = budget // 4
        kept: list[str] = []
        used = self._count(SESSIONS_HEADER) + 1
        for s in self.sessions:
            text = local_heading(s, self.zone)
            cost = self._count(text) + 3
            if used + cost > room:
                break
            kept.append(f"- {text}")
            used += cost
        return SESSIONS_HEADER + "\n" + "\n".join(reversed(kept)) if kept else ""

    def _instructions_text(self, budget: int) -> str:
        """The user's standing instructions within a fifth of ``budget``: those that hold always first,
        then those whose condition ("when I ask about budgets") shares most words with the query."""
        line = None if self.profile is None else self.profile.line("instructions")
        if line is None or not line.items or self.profile_tokens == 0:
            return ""
        query = {stem(w) for w in re.findall(r"\w{3,}", self.query.lower()) if w not in STOPWORDS}

        def rank(item: tuple[int, str]) -> tuple[bool, int, int]:
            i, text = item
            condition = _CONDITIONAL.split(text, maxsplit=1)
            if len(condition) == 1:
                return True, 0, i  # holds always
            words = {stem(w) for w in re.findall(r"\w{3,}", condition[1].lower())
                     if w not in STOPWORDS and w not in _ASKING}
            return False, len(query & words), i  # the condition's words only; newest first among equals

        kept: list[str] = []
        used, room = self._count(INSTRUCTIONS_HEADER) + 1, budget // 5
        for item in sorted(enumerate(line.items), key=rank, reverse=True):
            always, overlap, _ = rank(item)
            text = item[1]
            cost = self._count(text) + 3
            if (always or overlap) and used + cost <= room:  # a condition the query does not meet is left out
                kept.append(f"- {text}")
                used += cost
        return INSTRUCTIONS_HEADER + "\n" + "\n".join(kept) if kept else ""

    def _profile_text(self, budget: int) -> str:
        """The profile rendered within ``profile_tokens`` (and never more than a third of ``budget``)."""
        if self.profile is None:
            return ""
        return self.profile.render(min(self.profile_tokens, budget // 3))
