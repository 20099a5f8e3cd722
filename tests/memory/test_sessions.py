"""Dated session summaries (memory.sessions): built by the worker's job from idle or overflowing
conversations, stored in PostgreSQL, read for "what did we talk about last week?", forgotten
and exported, on the real servers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from memory.manager import HierarchicalMemoryManager
from memory.models import Exchange
from memory.sessions import build, split, summary_text

DAY = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
# two sessions last week (8 and 6 days ago, 10 minutes between turns), one 40 days ago
TALKS = [
    (DAY - timedelta(days=8), "I adopted a greyhound called Pepper yesterday.", "Congratulations on Pepper!"),
    (DAY - timedelta(days=8, minutes=-10), "Pepper sleeps on the sofa all day.", "Greyhounds love sofas."),
    (DAY - timedelta(days=8, minutes=-20), "What food suits a greyhound?", "A high-protein kibble."),
    (DAY - timedelta(days=6), "My violin recital is on Friday in Lisbon.", "Good luck in Lisbon!"),
    (DAY - timedelta(days=6, minutes=-10), "The violin piece is by Sibelius.", "A beautiful concerto."),
    (DAY - timedelta(days=40), "I repaired my bicycle chain.", "Nice work on the bicycle."),
]


async def store_all(memory: HierarchicalMemoryManager, user: str) -> list[str]:
    return [await memory.store_conversation(user, u, b, guild_id="g-sess", timestamp=ts) for ts, u, b in TALKS]


@pytest.mark.asyncio
async def test_job_summarises_idle_sessions_once_with_their_dates(memory: HierarchicalMemoryManager,
                                                                  uid: Callable[[str], str]) -> None:
    user = uid("sess")
    await store_all(memory, user)
    await memory.store_conversation(user, "Still chatting about Pepper right now.", "Sure!", guild_id="g-sess")
    await memory.summarise_sessions(force=True)
    sessions = await memory.t.sessions.all(user)
    # the ongoing conversation (a minute old) is not finished: no summary for it yet
    assert [(s.started_at, s.ended_at, len(s.exchange_ids)) for s in sessions] == [
        (TALKS[5][0], TALKS[5][0], 1), (TALKS[0][0], TALKS[2][0], 3), (TALKS[3][0], TALKS[4][0], 2)]
    pepper = sessions[1].text
    assert pepper.startswith((DAY - timedelta(days=8)).strftime("%Y-%m-%d 09:00\u201309:20, 3 exchanges"))
    assert "greyhound" in pepper and "Pepper" in pepper and len(pepper) <= 300
    await memory.summarise_sessions(force=True)  # idempotent: nothing new
    assert await memory.t.sessions.all(user) == sessions

    context = await memory.get_conversation_context(user, "What did we talk about last week?", guild_id="g-sess")
    text = context.to_context_string(1500)
    assert pepper in text and sessions[2].text in text
    assert sessions[0].text not in text  # 40 days ago: outside "last week"
    # a month alone names the latest such month: 40 days ago is in another month than last week's talks
    month = (DAY - timedelta(days=40)).strftime("%B")
    older = (await memory.get_conversation_context(user, f"what did we talk about in {month}?",
                                                   guild_id="g-sess")).to_context_string(1500)
    assert sessions[0].text in older and pepper not in older
    other = await memory.get_conversation_context(user, "Anything new?", guild_id="g-sess")
    assert pepper not in other.to_context_string(1500)  # no time window, no question about the past
    factual = await memory.get_conversation_context(user, "What sofa did I buy last week?", guild_id="g-sess")
    assert "sessions" not in factual.tiers  # a question about a fact, not about our talks: no session lines
    assert sessions[2].text not in factual.to_context_string(1500)


@pytest.mark.asyncio
async def test_forget_drops_and_the_job_rebuilds_without_the_forgotten_exchange(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("sessf")
    ids = await store_all(memory, user)
    await memory.summarise_sessions(force=True)
    await memory.forget(user, guild_id="g-sess", exchange_id=ids[1])
    left = await memory.t.sessions.all(user)
    assert len(left) == 2 and all(ids[1] not in s.exchange_ids for s in left)
    await memory.summarise_sessions(force=True)
    rebuilt = [s for s in await memory.t.sessions.all(user) if s.started_at == TALKS[0][0]]
    assert len(rebuilt) == 1 and rebuilt[0].exchange_ids == (ids[0], ids[2])
    assert "sofa" not in rebuilt[0].text.lower() and "2 exchanges" in rebuilt[0].text

    exported = await memory.export(user)
    assert sorted(s["text"] for s in exported["session_summaries"]) == sorted(
        s.text for s in await memory.t.sessions.all(user))
    assert len(exported["session_summaries"]) == 3

    await memory.forget(user)
    assert await memory.t.sessions.all(user) == []
    assert (await memory.export(user))["session_summaries"] == []


def exchange(n: int, minutes: int, words: int) -> Exchange:
    return Exchange(id=f"e{n}", user_id="u", guild_id=None, channel_id=None, user_message="word " * words,
                    bot_response="ok", timestamp=DAY + timedelta(minutes=minutes))


def test_split_closes_windows_by_gap_and_by_tokens() -> None:
    rows = [exchange(0, 0, 100), exchange(1, 5, 100), exchange(2, 10, 100),  # ~303 tokens of text so far
            exchange(3, 60, 10), exchange(4, 200, 10)]
    sessions = split(rows, timedelta(minutes=30), 250, now=DAY + timedelta(minutes=210))
    # e2 overflows the 250-token window; e3 starts after a 50-minute gap; e4 is 10 minutes old: open
    assert [([e.id for e in s], done) for s, done in sessions] == [
        (["e0", "e1"], True), (["e2"], True), (["e3"], True), (["e4"], False)]


def test_a_summary_names_what_was_talked_about_in_words_not_stems() -> None:
    rows = [Exchange(f"h{i}", "u", None, None, text, "ok", DAY + timedelta(minutes=5 * i))
            for i, text in enumerate(["Actually we went hiking in the hills last month.",
                                      "Hiking boots hurt, the hills were steep.", "More hiking next week!"])]
    text = summary_text(rows)
    assert "talked about hiking, hills, boots" in text  # was "hik, hill, actually, ..."


@pytest.mark.asyncio
async def test_edits_resummarise_and_forgotten_exchanges_are_never_summarised(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("sesse")
    ids = await store_all(memory, user)
    await memory.summarise_sessions(force=True)
    await memory.update_exchange(user, ids[3], user_message="My cello recital is on Friday in Porto.")
    assert len(await memory.t.sessions.all(user)) == 2  # the edited exchange's session is gone
    await memory.summarise_sessions(force=True)
    assert len(await memory.t.sessions.all(user)) == 3
    recital = [s for s in await memory.t.sessions.all(user) if s.started_at == TALKS[3][0]]
    assert len(recital) == 1 and "Porto" in recital[0].text and "Lisbon" not in recital[0].text

    # a session read before its exchange was forgotten is not stored after it
    stale = build([e for e in await memory.t.archive.exchanges(user) if e.id in ids[:3]])
    await memory.forget(user, guild_id="g-sess", exchange_id=ids[0])
    assert await memory.t.sessions.add([stale]) == 0
    assert all(ids[0] not in s.exchange_ids for s in await memory.t.sessions.all(user))


@pytest.mark.asyncio
async def test_a_late_exchange_joins_its_stored_session(memory: HierarchicalMemoryManager,
                                                        uid: Callable[[str], str]) -> None:
    user = uid("sessl")
    first = [await memory.store_conversation(user, u, b, guild_id="g-sess", timestamp=ts) for ts, u, b in TALKS[:2]]
    await memory.summarise_sessions(force=True)
    assert [s.exchange_ids for s in await memory.t.sessions.all(user)] == [tuple(first)]
    ts, u, b = TALKS[2]
    late = await memory.store_conversation(user, u, b, guild_id="g-sess", timestamp=ts)  # backdated, 10 min on
    await memory.summarise_sessions(force=True)
    sessions = await memory.t.sessions.all(user)
    assert [s.exchange_ids for s in sessions] == [(*first, late)]
