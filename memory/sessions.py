"""Sessions: consecutive exchanges of one user and scope, summarised with their dates.

A session runs while the gap between exchanges stays under the idle time and its
text stays within a token cap; a longer gap or an overflow starts the next one.
``split`` cuts a user's time-ordered exchanges into sessions and tells which are
finished (idle since, or closed by an overflow); ``summary_text`` writes a short
dated line from the exchanges' own summaries and topics (``memory.extraction``),
with no LLM call. When LLM extraction is configured, a ``SessionWriter``
(``memory.llm_sessions``) writes the text after the dates instead, one call per
session, and the rules' line stands in whenever it gives none. The worker stores
finished sessions (``memory.tiers.sessions``) so "what did we talk about last week?" finds them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Protocol

from memory.extraction import labelled_topics, summarise
from memory.models import Exchange
from memory.tokens import count_tokens

if TYPE_CHECKING:
    from memory.tiers.sessions import PostgresSessions

MAX_CHARS = 300
SHOWN = 8  # session summaries offered to one context at most
_ABOUT = re.compile(r"\bwhat (?:did|have|were) (?:we|i|you) (?:been )?(?:talk|chat|discuss|speak|talking|chatting|"
                    r"discussing|speaking)", re.I)
HEADER = "Earlier sessions with the user:"


@dataclass(frozen=True, slots=True)
class SessionSummary:
    user_id: str
    guild_id: str | None
    started_at: datetime
    ended_at: datetime
    exchange_ids: tuple[str, ...]
    text: str


def asks_about_sessions(query: str) -> bool:
    """Whether ``query`` asks what was talked about ("what did we talk about ...?")."""
    return bool(_ABOUT.search(query))


def split(exchanges: Sequence[Exchange], idle: timedelta, max_tokens: int,
          now: datetime) -> list[tuple[list[Exchange], bool]]:
    """Sessions of ``exchanges`` (ordered by user, scope and time) with whether each is finished:
    followed by a gap of at least ``idle``, closed by an overflow of ``max_tokens``, or idle by ``now``."""
    out: list[tuple[list[Exchange], bool]] = []
    current: list[Exchange] = []
    tokens = 0

    def close(finished: bool) -> None:
        nonlocal current, tokens
        out.append((current, finished or now - current[-1].timestamp >= idle))
        current, tokens = [], 0

    for e in exchanges:
        cost = count_tokens(e.user_message) + count_tokens(e.bot_response)
        if current:
            last = current[-1]
            if last.user_id != e.user_id or last.scope != e.scope:
                close(False)
            elif e.timestamp - last.timestamp >= idle or tokens + cost > max_tokens:
                close(True)  # idle gap, or the window overflowed: the session ends here
        current.append(e)
        tokens += cost
    if current:
        close(False)
    return out


def _span(started: datetime, ended: datetime) -> str:
    day = started.strftime("%Y-%m-%d")
    end = ended.strftime("%H:%M") if ended.date() == started.date() else ended.strftime("%Y-%m-%d %H:%M")
    return f"{day} {started.strftime('%H:%M')}\u2013{end}"


def local_heading(summary: SessionSummary, zone: tzinfo) -> str:
    """The summary's text with the dates and times that open it (written in UTC) in ``zone``."""
    written = _span(summary.started_at.astimezone(UTC), summary.ended_at.astimezone(UTC))
    if zone is UTC or not summary.text.startswith(written):
        return summary.text
    return _span(summary.started_at.astimezone(zone), summary.ended_at.astimezone(zone)) + summary.text[len(written):]


def _heading(session: Sequence[Exchange]) -> str:
    n = len(session)
    return f"{_span(session[0].timestamp, session[-1].timestamp)}, {n} exchange{'s' if n != 1 else ''}"


def summary_text(session: Sequence[Exchange], max_chars: int = MAX_CHARS) -> str:
    """"2026-11-20 14:05–14:40, 6 exchanges: talked about x, y. <first sentences> ..." within ``max_chars``."""
    counts: Counter[str] = Counter()
    labels: dict[str, str] = {}
    for e in session:
        found = labelled_topics(e.user_message)
        counts.update(key for key, _ in found)
        for key, label in found:
            labels.setdefault(key, label)
    about = ", ".join(labels[t] for t, _ in counts.most_common(4))
    text = _heading(session)
    if about:
        text += f": talked about {about}"
    seen: set[str] = set()
    for e in session:
        line = summarise(e, max_tokens=40).split(" | Bot:", 1)[0].removeprefix("User: ")
        if line in seen:
            continue
        seen.add(line)
        sep = " " if text[-1] in ".!?" else ". "
        candidate = f"{text}{sep}{line}"
        if len(candidate) > max_chars:
            room = max_chars - len(text) - len(sep) - 3
            if room >= 20:
                text = f"{text}{sep}{line[:room].rstrip()}..."
            break
        text = candidate
    return text[:max_chars]


class SessionWriter(Protocol):
    down: bool  # the last call got no answer at all (timeout, connection or HTTP error)

    async def write(self, session: Sequence[Exchange], limit: int) -> str | None:
        """The text that follows the dates, within ``limit`` characters, or None (the rules write it)."""
        ...


def build(session: Sequence[Exchange], body: str | None = None) -> SessionSummary:
    """The session's summary: its dates and count, then ``body`` when given, else the rules' text."""
    first = session[0]
    heading = _heading(session)
    if body and len(heading) + 2 + len(body) <= MAX_CHARS:
        text = f"{heading}: {body}"
    else:
        text = summary_text(session)
    return SessionSummary(first.user_id, first.guild_id, first.timestamp, session[-1].timestamp,
                          tuple(e.id for e in session), text)


JOB = "session_summaries"
BATCH = 2000  # uncovered exchanges read per run; the rest wait for the next run
WRITTEN_PER_RUN = 20  # sessions a writer (an LLM call each) handles per run, so the worker's loop is not held


async def summarise_finished(store: PostgresSessions, idle: timedelta, max_tokens: int, now: datetime,
                             writer: SessionWriter | None = None) -> int:
    """Store a summary for every finished session not summarised yet; returns sessions added.

    A full batch may end mid-session, so its last session waits for the next run. A stored
    session within the idle time of uncovered exchanges is dropped and summarised again with them.
    With a ``writer``, at most WRITTEN_PER_RUN sessions are summarised per run, each with the writer's
    text, or the rules' when it gives none; the rest wait for the next run, as they do after the first
    session the writer's endpoint did not answer for.
    Raises ArchiveUnavailable; TierUnavailable when the writer cannot read its budget.
    """
    rows = await store.uncovered(BATCH)
    sessions = split(rows, idle, max_tokens, now)
    reopened = 0
    for s, _ in sessions:  # exchanges stored late (backdated) join the stored session next to them
        reopened += await store.reopen(s[0].user_id, s[0].scope, s[0].timestamp - idle, s[-1].timestamp + idle)
    if reopened:
        rows = await store.uncovered(BATCH)
        sessions = split(rows, idle, max_tokens, now)
    if len(rows) >= BATCH and sessions:
        sessions = sessions[:-1]
    finished = [s for s, done in sessions if done]
    if writer is None:
        return await store.add([build(s) for s in finished])
    added = 0
    for s in finished[:WRITTEN_PER_RUN]:  # each stored at once: a later failure keeps what was paid for
        body = await writer.write(s, MAX_CHARS - len(_heading(s)) - 2)
        added += await store.add([build(s, body)])
        if writer.down:  # one timeout per run at most holds the worker's loop; the rest wait for the next
            break
    return added
