"""Evidence, not whole exchanges: the part of an exchange that answers the query.

When the budget is tight, packing the one turn of an exchange that shares words
with the query (the user's message or the reply), with its date and speaker,
leaves room for more memories than packing the whole exchange. The packer
widens a focused item back to the whole exchange when room remains.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

from memory.extraction import STOPWORDS, stem
from memory.models import Exchange

_WORD = re.compile(r"[^\W_][\w'’\-]*[^\W_]|[^\W_]")
_STEM_STOP = frozenset(stem(w) for w in STOPWORDS)


def terms(text: str) -> frozenset[str]:
    """The stemmed content words of ``text`` (stop words and one-letter words dropped)."""
    return frozenset(s for w in _WORD.findall(text.lower())
                     if len(w) > 1 and w not in STOPWORDS and (s := stem(w)) not in _STEM_STOP)


def speakers(e: Exchange) -> tuple[str, str]:
    """How the two sides are labelled: the display names stored in the exchange's metadata
    (``user_name``, ``bot_name``) or ``User``/``Bot``."""
    meta = e.metadata or {}
    user, bot = meta.get("user_name"), meta.get("bot_name")
    return (user if isinstance(user, str) and user.strip() else "User",
            bot if isinstance(bot, str) and bot.strip() else "Bot")


def stamp(ts: datetime, with_time: bool = False, zone: tzinfo = UTC) -> str:
    """The date (and time) a memory is shown with, in the reader's time zone."""
    return ts.astimezone(zone).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def focused(e: Exchange, query_terms: frozenset[str], *, with_time: bool = False,
            dated: bool = True, zone: tzinfo = UTC) -> str | None:
    """The exchange cut to its turn in which the query's words are densest (shared words per
    distinct word), with speaker and (``dated``) date; None when no turn shares a word, or both
    score the same."""
    if not query_terms:
        return None
    user, bot = speakers(e)
    parts = [(user, e.user_message), (bot, e.bot_response)]
    words = [terms(text) for _, text in parts]
    # shared words per distinct word: a long reply does not win by sheer length, and a short turn
    # that is about the query beats a long one that mentions it in passing
    overlap = [len(query_terms & w) / max(1, len(w)) for w in words]
    best = max(overlap)
    if best == 0 or all(o == best for o in overlap):
        return None
    label, text = parts[overlap.index(best)]
    line = f"{label}: {text}"
    return f"[{stamp(e.timestamp, with_time, zone)}] {line}" if dated else line
