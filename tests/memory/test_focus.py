"""A relevant exchange is packed as the turn that answers the query, widened when room remains."""

from __future__ import annotations

from datetime import UTC, datetime

from memory.context import ConversationContext, RankedExchange
from memory.focus import focused, terms
from memory.models import Exchange
from memory.tokens import count_tokens

TS = datetime(2024, 1, 3, 10, 0, tzinfo=UTC)
FILLER = " ".join(f"word{i}" for i in range(120))


def ex(i: int, user: str, bot: str, **meta: str) -> Exchange:
    return Exchange(id=f"e{i}", user_id="u", guild_id=None, channel_id=None, user_message=user,
                    bot_response=bot, timestamp=TS.replace(day=i), metadata=dict(meta))


def test_terms_are_stemmed_content_words() -> None:
    # the light stemmer: hike/hiking meet as "hik", Kate as "kat"
    assert terms("When did Kate go hiking with her dogs?") == frozenset({"kat", "hik", "dog"})


def test_focus_keeps_the_matching_turn_with_date_and_speaker() -> None:
    e = ex(3, "I finally made the tiramisu for my sister", FILLER, user_name="Elise")
    assert focused(e, terms("Who did Elise make tiramisu for?")) == (
        "[2024-01-03] Elise: I finally made the tiramisu for my sister")
    assert focused(e, terms("What about the weather?")) is None  # no turn matches: the whole exchange


def test_tight_budget_packs_more_evidence_and_wide_budget_packs_whole_exchanges() -> None:
    exchanges = [ex(i + 1, f"Tiramisu attempt number {i} went fine", FILLER) for i in range(6)]
    ctx = ConversationContext(user_id="u", guild_id=None, query="how did the tiramisu go?",
                              relevant=[RankedExchange(e, 1.0, ("fulltext",)) for e in exchanges])
    tight = ctx.to_context_string(300)
    assert all(f"Tiramisu attempt number {i} went fine" in tight for i in range(6))
    assert FILLER not in tight and count_tokens(tight) <= 300
    ctx.focus = False
    assert sum(f"attempt number {i} " in ctx.to_context_string(300) for i in range(6)) < 6
    ctx.focus = True
    wide = ctx.to_context_string(3000)
    assert wide.count(FILLER) == 6 and count_tokens(wide) <= 3000


def test_short_exchanges_are_packed_whole() -> None:
    short = ex(2, "I finally made the tiramisu", "Yum, how did it turn out?")
    ctx = ConversationContext(user_id="u", guild_id=None, query="did I make tiramisu?",
                              relevant=[RankedExchange(short, 1.0, ("fulltext",))])
    assert "I finally made the tiramisu\nBot: Yum, how did it turn out?" in ctx.to_context_string(100)
