"""The profile at the head of every packed context, and summaries packed when full text does not fit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from memory.context import ConversationContext, RankedExchange
from memory.models import Exchange, TypedFact
from memory.profile import build_profile
from memory.tokens import count_tokens

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ex(n: int, user: str, bot: str) -> Exchange:
    return Exchange(f"x{n}", "alice", None, None, user, bot, T0 + timedelta(days=n))


def fact(predicate: str, label: str, days: int, until: int | None = None, detail: str = "") -> TypedFact:
    return TypedFact(f"{predicate}{label}", predicate, label.lower(), label, detail, T0 + timedelta(days=days),
                     None if until is None else T0 + timedelta(days=until), ("x0",))


def test_an_exchange_too_long_to_fit_goes_in_as_its_summary_and_the_next_still_fits() -> None:
    long = ex(1, "I sold the old car and picked up a Volvo V60 yesterday.", "Nice! " + "Volvos are safe. " * 80)
    other = ex(2, "My oldest friend is Casimir.", "Lovely.")
    ctx = ConversationContext("alice", None, "car?", relevant=[RankedExchange(long, 1.0, ("fulltext",)),
                                                              RankedExchange(other, 0.9, ("fulltext",))],
                              focus=False)  # without focus packing, which would keep the user's line
    text = ctx.to_context_string(120)
    assert "[2024-05-02]\n(summary) User: I sold the old car and picked up a Volvo V60 yesterday." in text
    assert "Casimir" in text and count_tokens(text) <= 120
    stored = RankedExchange(long, 1.0, ("semantic",), summary="Sold old car, bought a Volvo V60 (2024-05-01).")
    ctx = ConversationContext("alice", None, "car?", relevant=[stored], focus=False)
    assert "(summary) Sold old car, bought a Volvo V60 (2024-05-01)." in ctx.to_context_string(120)
    assert "Volvos are safe" in ctx.to_context_string(2000)  # full text when it fits


def test_the_profile_heads_every_context_within_its_share() -> None:
    profile = build_profile("alice", None, [fact("NAME", "Alice", 0), fact("LIVES_IN", "Paris", 0, until=30),
                                            fact("LIVES_IN", "Berlin", 30), fact("HAS_PET", "Rex", 3, detail="dog")],
                            [], {})
    ctx = ConversationContext("alice", None, "hi", recent=[ex(40, "hello", "hi!")], profile=profile)
    text = ctx.to_context_string(500)
    assert text.split("\n\n")[0] == ("User profile:\n- Name: Alice\n- Lives in Berlin (as of 2024-05-31; "
                                     "before: Paris)\n- Pets: dog Rex")
    assert "hello" in text
    tight = ctx.to_context_string(60)  # the profile takes at most a third: 20 tokens
    assert tight.startswith("User profile:\n- Name: Alice") and count_tokens(tight) <= 60
    assert count_tokens(tight.split("\n\n")[0]) <= 20
    assert ctx.to_context_string(0) == ""


def test_saved_facts_are_ranked_by_relevance_and_importance_under_a_cap() -> None:
    from memory.tiers.ledger import Fact
    facts = [Fact(f"f{i}", "alice", None, f"trivia number {i} about nothing in particular at all", T0, "other", 1)
             for i in range(20)]
    facts += [Fact("vital", "alice", None, "Severe peanut allergy", T0, "health", 5),
              Fact("tea", "alice", None, "Favourite tea is sencha", T0, "preference", 2)]
    ctx = ConversationContext("alice", None, "which tea should I buy?", facts=facts,
                              recent=[ex(1, "hello there", "hi!")])
    text = ctx.to_context_string(150)
    lines = [ln for ln in text.split("\n\n")[0].splitlines() if ln.startswith("- ")]
    assert lines[:2] == ["- Favourite tea is sencha", "- Severe peanut allergy"]  # relevant, then vital
    assert sum(count_tokens(ln) + 1 for ln in lines) <= 150 // 3 + 5
    assert "hello there" in text  # the rest of the budget is not crowded out
