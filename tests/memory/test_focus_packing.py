"""Packing long user-assistant exchanges on the real stack: a relevant exchange is cut to its
matching turn only when, whole, it would take more than ``RETRIEVAL__FOCUS_SHARE`` of the budget,
and the turn kept is the one where the query's words are densest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from memory import HierarchicalMemoryManager
from memory.tokens import count_tokens

CROPS = ["tomatoes", "carrots", "beans", "leeks", "onions", "radishes", "peas", "kale"]


def reply(i: int) -> str:
    """A ~110-token assistant reply about gardening, different for each exchange."""
    return " ".join(f"Gardening tip {i}.{k}: water early, mulch well and rotate beds every season."
                    for k in range(8))


async def test_exchanges_under_a_quarter_of_the_budget_stay_whole(memory: HierarchicalMemoryManager,
                                                                 uid: Callable[[str], str]) -> None:
    user = uid("gardener")
    for i, crop in enumerate(CROPS):
        await memory.store_conversation(user, f"I planted {crop} in the raised garden bed.", reply(i),
                                        timestamp=datetime(2025, 3, 1 + i, 9, tzinfo=UTC))
    await memory.flush()
    ctx = await memory.get_conversation_context(user, "What did I plant in the raised garden bed?",
                                                max_tokens=1000)
    assert len(ctx.relevant) == len(CROPS)
    cost = count_tokens(ctx.relevant[0].exchange.user_message + ctx.relevant[0].exchange.bot_response)
    assert 80 < cost < 250  # long enough to be focused before, under a quarter of 1,000 tokens
    wide = ctx.to_context_string(1000)
    # 1,000 tokens: each exchange costs less than 250, so they are packed whole in rank order until
    # the budget is spent (the next one as its summary line, then a cut one)
    whole = [f"User: {r.exchange.user_message}\nBot: {r.exchange.bot_response}" for r in ctx.relevant]
    assert [w in wide for w in whole] == [True] * 5 + [False] * 3
    assert f"(summary) User: {ctx.relevant[5].exchange.user_message}" in wide and count_tokens(wide) <= 1000
    # 400 tokens: a quarter is 100, so every exchange is cut to the turn naming the bed; all eight fit,
    # and the room left widens the best one back to the whole exchange
    tight = ctx.to_context_string(400)
    assert all(f"User: I planted {crop} in the raised garden bed." in tight for crop in CROPS)
    assert [w in tight for w in whole] == [True] + [False] * 7 and count_tokens(tight) <= 400


async def test_the_turn_kept_is_where_the_query_words_are_densest(memory: HierarchicalMemoryManager,
                                                                  uid: Callable[[str], str]) -> None:
    """A long question shares many words with a long reply in passing (7 of its 32 distinct words)
    and fewer with the short user turn that answers it (3 of 9): the user turn is kept. Shared
    words per square root of the length, the rule before, kept the reply (7/sqrt(32) > 3/sqrt(9))."""
    user = uid("reader")
    extra = ("mornings commute lamp tea balcony library pencil margins bookmark evenings garden sofa "
             "headphones train park bench kettle blanket window candle").split()
    plan = "Here is a plan. " + " ".join(
        f"Week {k}: two chapters of the novel, notes on the characters, a short summary, best with "
        f"{extra[2 * k]} and {extra[2 * k + 1]}." for k in range(10)) + " Kafka fits well; keep reading and writing."
    await memory.store_conversation(user, "My book club is reading Kafka's The Trial in March, at the cafe near "
                                    "the station.", plan, timestamp=datetime(2025, 2, 1, 9, tzinfo=UTC))
    for i in range(6):  # other long exchanges about reading crowd the budget
        await memory.store_conversation(user, f"Any tips for reading novels faster, attempt {i}?", reply(i),
                                        timestamp=datetime(2025, 2, 2 + i, 9, tzinfo=UTC))
    await memory.flush()
    query = ("Remind me, for my book club next month, which Kafka novel are we reading, and should I write a "
             "summary of each chapter or of the characters?")
    ctx = await memory.get_conversation_context(user, query, max_tokens=300)
    text = ctx.to_context_string(300)
    assert ("[2025-02-01]\nUser: My book club is reading Kafka's The Trial in March, at the cafe near the "
            "station.") in text
    assert "Here is a plan." not in text and count_tokens(text) <= 300
