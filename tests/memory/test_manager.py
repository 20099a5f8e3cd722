"""The manager on real servers: write and read paths, isolation, forget, export, rebuild, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory import HierarchicalMemoryManager, InvalidInput, tokens
from memory.launcher import Addresses
from memory.models import ForgetTarget
from memory.tokens import count_tokens
from tests.memory.conftest import ManagerFactory, settings_for

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

HISTORY = [
    ("My sister Maria just moved to Lisbon for a nursing job.", "Lisbon is a lovely city, good luck to Maria!"),
    ("I adopted a beagle puppy and named him Biscuit.", "Biscuit is a great name for a beagle."),
    ("Work is busy, we're migrating our billing system to Rust.", "Rust should make billing safer."),
    ("I ran my first half marathon in Porto, 1:52!", "Congratulations on the half marathon."),
    ("Can you recommend a sci-fi novel?", "Try 'The Left Hand of Darkness'."),
]


async def seed(memory: HierarchicalMemoryManager, user: str, guild: str | None = None,
               history: list[tuple[str, str]] = HISTORY) -> list[str]:
    ids = []
    for i, (u, b) in enumerate(history):
        ids.append(await memory.store_conversation(user, u, b, guild_id=guild, timestamp=T0 + timedelta(days=i)))
    await memory.flush()
    return ids


async def test_old_relevant_exchange_reaches_the_context_with_its_date(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("ana")
    ids = await seed(memory, user)
    filler = [(f"Random chat number {i} about the weather and lunch.", "Sounds good.") for i in range(25)]
    await seed(memory, user, history=filler)
    ctx = await memory.get_conversation_context(user, "what kind of dog do I have?", max_tokens=400)
    text = ctx.to_context_string(400)
    assert "Biscuit" in text
    assert "2025-03-02" in text  # the puppy exchange's date
    assert ids[1] in ctx.exchange_ids
    assert count_tokens(text) <= 400
    assert {ctx.tiers[t].status for t in ("cache", "archive", "summaries", "graph")} == {"ok"}


async def test_the_ongoing_conversation_is_kept_beside_old_memories(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("bo")
    await seed(memory, user)  # March 2025, the beagle among them
    chatter = [(f"Long chat {i} about nothing much: the weather, lunch, the bus being late again, "
                "and the neighbour's very loud radio that plays all afternoon.", "Ah, quite a day.")
               for i in range(6)]
    await seed(memory, user, history=chatter)  # the newest exchanges, but months old
    question = "what kind of dog do I have?"
    tight = count_tokens(HISTORY[1][0] + HISTORY[1][1]) + 45
    ctx = await memory.get_conversation_context(user, question, max_tokens=tight)
    assert "Biscuit" in ctx.to_context_string(tight)  # no stale chatter holds reserved room
    now = await memory.store_conversation(user, "brb, making tea", "Enjoy your tea!")
    ctx = await memory.get_conversation_context(user, question, max_tokens=250)
    assert now in ctx.exchange_ids  # the conversation going on right now is kept ...
    assert ctx.exchange_ids.index(now) == len(ctx.exchange_ids) - 1  # ... as the newest, last
    assert "Biscuit" in ctx.to_context_string(250)


async def test_users_guilds_and_dms_never_cross(memory: HierarchicalMemoryManager,
                                                uid: Callable[[str], str]) -> None:
    alice, bob = uid("alice"), uid("bob")
    await seed(memory, alice, guild="g1", history=[("My locker code is 4471.", "Noted, 4471.")])
    await seed(memory, alice, history=[("In private: my diary password is tulip.", "Kept private.")])
    await seed(memory, bob, guild="g1", history=[("I like tulips in spring.", "Tulips are pretty.")])
    await seed(memory, alice, guild="g2", history=[("Guild two chatter about tulip fields.", "Nice.")])

    dm = (await memory.get_conversation_context(alice, "tulip password locker code", max_tokens=2000))
    g1 = (await memory.get_conversation_context(alice, "tulip password locker code", guild_id="g1",
                                                max_tokens=2000))
    bob_g1 = (await memory.get_conversation_context(bob, "locker code tulip password", guild_id="g1",
                                                    max_tokens=2000))
    assert "tulip" in dm.to_context_string() and "4471" not in dm.to_context_string()
    assert "Guild two" not in dm.to_context_string()
    assert "4471" in g1.to_context_string() and "diary" not in g1.to_context_string()
    assert "Guild two" not in g1.to_context_string()
    assert "4471" not in bob_g1.to_context_string() and "diary" not in bob_g1.to_context_string()
    assert "tulips in spring" in bob_g1.to_context_string()


async def test_forget_user_leaves_nothing_in_any_tier(memory: HierarchicalMemoryManager,
                                                      uid: Callable[[str], str]) -> None:
    user, other = uid("gone"), uid("stays")
    await seed(memory, user)
    await seed(memory, user, guild="g9")
    await memory.remember_fact(user, "I am allergic to peanuts")
    await seed(memory, other)
    await memory.get_conversation_context(user, "dog")  # warms the cache
    before = await memory.counts(user)
    assert all(before[t] > 0 for t in ("archive", "cache", "summaries", "graph", "facts"))

    removed = await memory.forget(user)

    assert removed["archive"] == 2 * len(HISTORY) and removed["facts"] == 1
    assert await memory.counts(user) == {"archive": 0, "cache": 0, "summaries": 0, "graph": 0, "facts": 0}
    assert (await memory.counts(other))["archive"] == len(HISTORY)
    ctx = await memory.get_conversation_context(user, "dog Biscuit sister")
    assert ctx.to_context_string() == ""


async def test_forget_one_guild_keeps_the_dms(memory: HierarchicalMemoryManager,
                                              uid: Callable[[str], str]) -> None:
    user = uid("scoped")
    await seed(memory, user, guild="g5")
    await seed(memory, user)
    await memory.forget(user, guild_id="g5")
    assert (await memory.counts(user, guild_id="g5"))["archive"] == 0
    assert (await memory.counts(user, guild_id="g5"))["summaries"] == 0
    assert (await memory.counts(user, dm=True))["archive"] == len(HISTORY)


async def test_forget_topic_and_last_exchange(memory: HierarchicalMemoryManager,
                                              uid: Callable[[str], str]) -> None:
    user = uid("topic")
    ids = await seed(memory, user)
    removed = await memory.forget(user, topic="Biscuit", dm=True)
    assert removed["archive"] == 1
    left = {e["id"] for e in (await memory.export(user))["exchanges"]}
    assert ids[1] not in left and len(left) == len(HISTORY) - 1
    await memory.forget(user, last=True)
    left = {e["id"] for e in (await memory.export(user))["exchanges"]}
    assert ids[-1] not in left and len(left) == len(HISTORY) - 2
    ctx = await memory.get_conversation_context(user, "beagle puppy Biscuit")
    assert "Biscuit" not in ctx.to_context_string()


async def test_export_holds_everything_and_is_json(memory: HierarchicalMemoryManager,
                                                   uid: Callable[[str], str]) -> None:
    user = uid("export")
    await seed(memory, user)
    await memory.remember_fact(user, "Prefers metric units")
    data = json.loads(json.dumps(await memory.export(user)))
    assert [e["user_message"] for e in data["exchanges"]] == [u for u, _ in HISTORY]
    assert data["facts"][0]["text"] == "Prefers metric units"
    assert len(data["summaries"]) == len(HISTORY)
    assert any(r["name"] == "Biscuit" for r in data["graph"]["dm"])


async def _empty_derived_tiers(memory: HierarchicalMemoryManager, user: str) -> None:
    """Drop what the cache, summaries and graph hold for ``user``; the archive keeps everything."""
    target = ForgetTarget(user)
    for tier in (memory.cache, memory.summaries, memory.graph):
        await tier.forget(target)
    counts = await memory.counts(user)
    assert (counts["cache"], counts["summaries"], counts["graph"]) == (0, 0, 0)
    assert counts["archive"] > 0


async def test_rebuild_regenerates_derived_tiers_from_the_archive(memory: HierarchicalMemoryManager,
                                                                  uid: Callable[[str], str]) -> None:
    user = uid("rebuild")
    await seed(memory, user)
    before = await memory.counts(user)
    assert before["summaries"] == len(HISTORY) and before["graph"] > 0
    await _empty_derived_tiers(memory, user)
    ctx = await memory.get_conversation_context(user, "half marathon time")
    assert ctx.tiers["summaries"].hits == 0 and ctx.tiers["graph"].hits == 0

    queued = await memory.rebuild(user)
    assert queued == len(HISTORY)
    await memory.flush()
    after = await memory.counts(user)
    assert (after["archive"], after["summaries"], after["graph"]) == \
        (len(HISTORY), len(HISTORY), before["graph"])
    assert {r.name for r in await memory.profile(user, limit=100)} >= {"biscuit", "lisbon", "maria", "porto"}
    ctx = await memory.get_conversation_context(user, "half marathon time")
    assert ctx.tiers["summaries"].hits > 0
    assert "1:52" in ctx.to_context_string()


async def test_rebuild_of_everyone_restores_every_user(bundled: Addresses, own_postgres_dsn: str,
                                                       make_manager: ManagerFactory, tmp_path: Path,
                                                       uid: Callable[[str], str]) -> None:
    own = replace(bundled, postgres_dsn=own_postgres_dsn)
    memory = await make_manager(settings_for(own, tmp_path))
    ana, bo = uid("ana"), uid("bo")
    await seed(memory, ana)
    await seed(memory, bo, guild="g7", history=HISTORY[:2])
    before = {u: await memory.counts(u) for u in (ana, bo)}
    for u in (ana, bo):
        await _empty_derived_tiers(memory, u)

    assert await memory.rebuild() == len(HISTORY) + 2  # every archived exchange of every user
    await memory.flush()
    for u, n in ((ana, len(HISTORY)), (bo, 2)):
        after = await memory.counts(u)
        assert (after["archive"], after["summaries"], after["graph"]) == (n, n, before[u]["graph"])
    assert "Biscuit" in (await memory.get_conversation_context(bo, "my puppy's name", guild_id="g7")
                         ).to_context_string()


async def test_a_started_manager_has_its_tokenizer_loaded(bundled: Addresses, own_postgres_dsn: str,
                                                          make_manager: ManagerFactory, tmp_path: Path) -> None:
    # Loaded lazily, the encoding (~0.5 s) was read inside the worker's first batch after a
    # restart with a backlog: the event loop stalled and the first reads timed out ("graph
    # unavailable" on the first /memory show). Start-up loads it before anything runs.
    tokens._encoding.cache_clear()
    await make_manager(settings_for(replace(bundled, postgres_dsn=own_postgres_dsn), tmp_path))
    assert tokens._encoding.cache_info().currsize == 1


@pytest.mark.parametrize("text", [
    "Robert'); DROP TABLE exchanges;--",
    "MATCH (n) DETACH DELETE n //",
    '{"$and": [{"user_id": "x"}]}',
    "emoji 👩🏽‍🚀 and RTL مرحبا and combining e\u0301",
    "x" * 100_000,
])
async def test_hostile_and_huge_text_is_stored_faithfully(memory: HierarchicalMemoryManager,
                                                          uid: Callable[[str], str], text: str) -> None:
    user = uid("hostile")
    xid = await memory.store_conversation(user, text, "ok: " + text[:50])
    await memory.flush()
    [stored] = (await memory.export(user))["exchanges"]
    assert stored["id"] == xid and stored["user_message"] == text
    assert (await memory.counts(user))["summaries"] >= 1


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"user_message": ""}, "user_message"),
    ({"user_message": "   \n\t"}, "user_message"),
    ({"user_message": "nul\x00byte"}, "user_message"),
    ({"bot_response": "lone \ud800 surrogate"}, "bot_response"),
    ({"user_message": "y" * 300_000}, "user_message"),
    ({"bot_response": "語" * 87_382}, "bot_response"),  # 87,382 characters, but 262,146 bytes
    ({"user_id": "a b"}, "user_id"),
    ({"guild_id": "g 1"}, "guild_id"),
    ({"channel_id": "c/1"}, "channel_id"),
    ({"exchange_id": "x" * 101}, "exchange_id"),
    ({"metadata": {"when": object()}}, "metadata"),
])
async def test_bad_input_is_refused_and_writes_nothing(memory: HierarchicalMemoryManager,
                                                       uid: Callable[[str], str], kwargs: dict[str, object],
                                                       field: str) -> None:
    user = uid("bad")
    call: dict[str, object] = {"user_id": user, "user_message": "hi", "bot_response": "hello", **kwargs}
    await memory.flush()  # earlier tests' work is done, so the queue cannot move by itself
    exchanges, users = await memory.t.archive.totals()
    pending = await memory.pending()
    with pytest.raises(InvalidInput) as info:
        await memory.store_conversation(**call)  # type: ignore[arg-type]
    assert info.value.field == field
    # nothing written for anyone (the bad id may be the user's own): the archive and queue are unchanged
    assert await memory.t.archive.totals() == (exchanges, users)
    assert await memory.pending() == pending


async def test_storing_an_existing_id_changes_nothing(memory: HierarchicalMemoryManager,
                                                      uid: Callable[[str], str]) -> None:
    user = uid("idem")
    first = await memory.store_conversation(user, "hello", "hi", exchange_id="legacy-1")
    again = await memory.store_conversation(user, "hello again", "hi", exchange_id="legacy-1")
    await memory.flush()
    assert first == again == "legacy-1"
    assert (await memory.counts(user))["archive"] == 1
    assert await memory.existing_exchange_ids(["legacy-1", "nope"]) == {"legacy-1"}
