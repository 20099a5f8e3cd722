"""Packing a ConversationContext into a token budget, counted with the real tokenizer."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from memory.context import ConversationContext, RankedExchange
from memory.models import Exchange
from memory.tiers.ledger import Fact
from memory.tokens import count_tokens

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BUDGETS = [0, 1, 5, 30, 100, 500, 1000, 2000]
WORDS = ["cat", "Paris", "hiking", "the", "quantum", "🧠", "café", "naïve", "日本語", "שלום", "x", "!!", "—",
         "pasta", "Zürich", "'quoted'", "{json: 1}", "   ", "\n", "DROP", "TABLE", "lorem", "ipsum"]


def marker(n: int) -> str:
    return f"MARK{n:03d}Z"


def make_exchange(n: int, words: int, rnd: random.Random | None = None) -> Exchange:
    rnd = rnd or random.Random(n)
    body = " ".join(rnd.choice(WORDS) for _ in range(words))
    return Exchange(id=f"ex-{n}", user_id="alice", guild_id="g1", channel_id="c1",
                    user_message=f"{marker(n)} {body}",
                    bot_response=" ".join(rnd.choice(WORDS) for _ in range(5)),
                    timestamp=T0 + timedelta(hours=n, minutes=n))


def fact(n: int, text: str) -> Fact:
    return Fact(f"f{n}", "alice", "g1", text, T0)


def random_context(seed: int) -> ConversationContext:
    rnd = random.Random(seed)
    n_recent, n_relevant, n_facts = rnd.randint(0, 8), rnd.randint(0, 8), rnd.randint(0, 4)
    numbers = rnd.sample(range(1, 200), n_recent + n_relevant)
    recent = sorted((make_exchange(n, rnd.choice([3, 20, 80, 400]), rnd) for n in numbers[:n_recent]),
                    key=lambda e: e.timestamp, reverse=True)
    relevant = [RankedExchange(make_exchange(n, rnd.choice([3, 20, 80, 400]), rnd), 1.0 / (i + 1),
                               ("fulltext",))
                for i, n in enumerate(numbers[n_recent:])]
    facts = [fact(i, f"FACT{i} " + " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 30))))
             for i in range(n_facts)]
    return ConversationContext(user_id="alice", guild_id="g1", query="q", recent=recent, relevant=relevant,
                               facts=facts)


def _number(exchange_id: str) -> int:
    return int(exchange_id.removeprefix("ex-"))


@pytest.mark.parametrize("seed", range(25))
def test_packing_never_exceeds_budget_and_ids_match_text(seed: int) -> None:
    ctx = random_context(seed)
    everyone = {e.id for e in ctx.recent} | {r.exchange.id for r in ctx.relevant}
    for budget in BUDGETS:
        packed = ctx.pack(budget)
        assert count_tokens(packed.text) <= budget
        assert packed.tokens == count_tokens(packed.text)
        assert ctx.to_context_string(budget) == packed.text
        assert len(packed.exchange_ids) == len(set(packed.exchange_ids))
        for exchange_id in everyone:
            shown = marker(_number(exchange_id)) in packed.text
            assert shown == (exchange_id in packed.exchange_ids), (budget, exchange_id)


@pytest.mark.parametrize("seed", range(25))
def test_packing_at_many_budgets_gives_what_a_fresh_context_gives(seed: int) -> None:
    """A context counts each text once and reuses the count: packing it at one budget must not
    change what it packs at another."""
    reused = random_context(seed)
    for budget in (*BUDGETS, *reversed(BUDGETS)):
        assert reused.to_context_string(budget) == random_context(seed).to_context_string(budget), budget


@pytest.mark.parametrize("seed", range(25))
def test_facts_come_first_and_sections_in_order(seed: int) -> None:
    ctx = random_context(seed)
    text = ctx.pack(2000).text
    headers = [h for h in ("Facts the user asked you to remember:",
                           "Relevant earlier conversations (oldest first):",
                           "Recent conversation (oldest first):") if h in text]
    assert [text.index(h) for h in headers] == sorted(text.index(h) for h in headers)
    if ctx.facts:
        assert text.startswith("Facts the user asked you to remember:")


def test_small_budget_prefers_facts_then_the_best_relevant() -> None:
    recent = [make_exchange(n, 10) for n in (9, 8, 7, 6)]
    relevant = [RankedExchange(make_exchange(n, 10), 1.0 - n / 10, ("semantic",)) for n in (1, 2, 3, 4, 5)]
    ctx = ConversationContext("alice", "g1", "q", recent=recent, relevant=relevant,
                              facts=[fact(1, "Allergic to peanuts")])
    text = ctx.to_context_string(120)
    assert "Allergic to peanuts" in text
    ids = ctx.pack(120).exchange_ids
    assert "ex-1" in ids  # the most relevant exchange beats the newest one when room is short
    assert set(ids) <= {"ex-1", "ex-2", "ex-3"}
    # with more room: the top three relevant, the newest two, then the rest of the relevant
    assert {"ex-1", "ex-2", "ex-3", "ex-9", "ex-8"} <= set(ctx.pack(400).exchange_ids)
    full = ctx.pack(5000).exchange_ids
    assert set(full) == {e.id for e in recent} | {r.exchange.id for r in relevant}


def test_only_the_ongoing_conversation_gets_reserved_room() -> None:
    recent = [make_exchange(n, 10) for n in (9, 8, 7, 6)]  # ex-9 is the newest
    relevant = [RankedExchange(make_exchange(n, 10), 1.0 - n / 10, ("semantic",)) for n in (1, 2, 3, 4, 5, 10)]
    room = sum(count_tokens(f"{e.user_message} {e.bot_response}") + 16 for e in recent[:2]) + 6 * 16 + 40

    def packed(since: datetime | None) -> tuple[str, ...]:
        return ConversationContext("alice", "g1", "q", recent=recent, relevant=relevant,
                                   session_since=since).pack(room).exchange_ids

    # the last two exchanges are minutes old: the newest two are kept beside the best memories
    ongoing = packed(recent[1].timestamp - timedelta(minutes=5))
    assert {"ex-9", "ex-8"} <= set(ongoing)
    # they are days old: no reserved room, the memories take it
    stale = packed(recent[0].timestamp + timedelta(days=3))
    assert "ex-9" not in stale and "ex-8" not in stale
    assert len({"ex-1", "ex-2", "ex-3", "ex-4", "ex-5", "ex-10"} & set(stale)) > \
        len({"ex-1", "ex-2", "ex-3", "ex-4", "ex-5", "ex-10"} & set(ongoing))
    # with room for everything, old recent exchanges still come last rather than not at all
    assert {"ex-9", "ex-8", "ex-7", "ex-6"} <= set(ConversationContext(
        "alice", "g1", "q", recent=recent, relevant=relevant,
        session_since=recent[0].timestamp + timedelta(days=3)).pack(5000).exchange_ids)


def test_sections_render_dates_in_time_order() -> None:
    recent = [make_exchange(n, 5) for n in (30, 20, 10)]  # newest first, as the cache returns them
    relevant = [RankedExchange(make_exchange(n, 5), s, ("fulltext",)) for n, s in ((2, 0.9), (1, 0.5))]
    ctx = ConversationContext("alice", "g1", "q", recent=recent, relevant=relevant)
    text = ctx.to_context_string(5000)
    recent_part = text.split("Recent conversation (oldest first):", 1)[1]
    relevant_part = text.split("Recent conversation (oldest first):", 1)[0]
    positions = [recent_part.index(marker(n)) for n in (10, 20, 30)]
    assert positions == sorted(positions)
    assert relevant_part.index(marker(1)) < relevant_part.index(marker(2))
    for n in (10, 20, 30):  # recent ones carry date and time
        ts = (T0 + timedelta(hours=n, minutes=n)).strftime("%Y-%m-%d %H:%M")
        assert f"[{ts}] User: {marker(n)}" in recent_part
    # relevant ones carry the date, once for the day (both are on T0's day)
    day = f"[{T0.date().isoformat()}]"
    assert relevant_part.count(day) == 1 and f"{day}\nUser: {marker(1)}" in relevant_part
    assert f"\nUser: {marker(2)}" in relevant_part
    assert list(ctx.exchange_ids) == ["ex-1", "ex-2", "ex-10", "ex-20", "ex-30"]


def test_long_exchange_is_truncated_rather_than_dropped() -> None:
    long = make_exchange(5, 3000)
    ctx = ConversationContext("alice", "g1", "q", recent=[long])
    assert count_tokens(long.user_message) > 1000
    packed = ctx.pack(300)
    assert packed.exchange_ids == ("ex-5",)
    assert marker(5) in packed.text
    assert "…" in packed.text
    assert 200 < packed.tokens <= 300  # it fills the room it has


def test_no_fragment_when_room_is_too_small() -> None:
    ctx = ConversationContext("alice", "g1", "q", recent=[make_exchange(5, 3000)],
                              facts=[fact(1, "likes tea")])
    packed = ctx.pack(20)
    assert packed.exchange_ids == ()
    assert marker(5) not in packed.text
    assert "likes tea" in packed.text


def test_duplicates_across_sections_appear_once() -> None:
    e = make_exchange(4, 10)
    ctx = ConversationContext("alice", "g1", "q", recent=[e], relevant=[RankedExchange(e, 1.0, ("graph",))])
    packed = ctx.pack(1000)
    assert packed.exchange_ids == ("ex-4",)
    assert packed.text.count(marker(4)) == 1


def test_empty_context_packs_to_nothing() -> None:
    packed = ConversationContext("alice", None, "q").pack(1000)
    assert (packed.text, packed.exchange_ids, packed.tokens) == ("", (), 0)


def test_negative_budget_is_empty() -> None:
    ctx = random_context(3)
    assert ctx.to_context_string(-10) == ""


def test_relevant_exchanges_of_one_day_share_its_date_line_and_that_room_holds_more() -> None:
    # n = 1..8 are on T0's day, 30 and 31 on the next: hours n past noon
    relevant = [RankedExchange(make_exchange(n, 6), 1.0 / n, ("fulltext",)) for n in (*range(1, 9), 30, 31)]
    ctx = ConversationContext("alice", "g1", "q", relevant=relevant)
    text = ctx.to_context_string(5000)
    first, second = f"[{T0.date().isoformat()}]", f"[{(T0 + timedelta(days=1)).date().isoformat()}]"
    assert text.count(first) == 1 and text.count(second) == 1
    # each day's line heads that day's exchanges, in time order
    assert text.index(first) < text.index(marker(1)) < text.index(marker(8)) < text.index(second) < text.index(
        marker(30))
    # under a budget that is tight, the dates paid once leave room for more exchanges than a date on each
    budget = ctx.pack(5000).tokens * 2 // 3
    grouped = ctx.pack(budget)
    ctx.date_groups = False
    each = ctx.pack(budget)
    assert each.text.count(first) == len([i for i in each.exchange_ids if int(i[3:]) < 24])
    assert len(grouped.exchange_ids) > len(each.exchange_ids)
    assert grouped.tokens <= budget and each.tokens <= budget
