"""Edits, deletions, pause, notices, guild settings, retention and activity, on real servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory import HierarchicalMemoryManager, InvalidInput, NotFound
from memory.errors import MemoryPaused
from memory.launcher import Addresses
from memory.models import Scope
from tests.memory.conftest import ManagerFactory, settings_for

NOW = datetime.now(UTC)


async def drain(memory: HierarchicalMemoryManager) -> None:
    """Run the worker here until the outbox is empty (managers built with ``in_process`` false)."""
    while await memory.pending() > 0:
        await memory.worker.run_once()


async def own_manager(bundled: Addresses, dsn: str, make_manager: ManagerFactory, tmp_path: Path,
                      **overrides: object) -> HierarchicalMemoryManager:
    """A manager on a database of its own (its job_runs and outbox are not shared with other tests)."""
    addresses = replace(bundled, postgres_dsn=dsn)
    return await make_manager(settings_for(addresses, tmp_path, **overrides))


async def summaries_of(memory: HierarchicalMemoryManager, user: str, exchange_id: str) -> list[str]:
    return [r.summary for r in await memory.summaries.records(user) if r.exchange_id == exchange_id]


# ---- edits -------------------------------------------------------------------------------------


async def test_an_edit_replaces_the_text_in_every_tier(memory: HierarchicalMemoryManager,
                                                       uid: Callable[[str], str]) -> None:
    user = uid("editor")
    scope = Scope(user, "g1")
    edited = await memory.store_conversation(user, "My dog is called Rex and he loves the beach.", "Sounds lovely.",
                                             guild_id="g1", channel_id="c1", message_id="9001")
    other = await memory.store_conversation(user, "I work as a carpenter in Leeds.", "A fine trade.",
                                            guild_id="g1", channel_id="c1", message_id="9002")
    await memory.flush()
    assert edited in await memory.graph.topic_exchanges(scope, "rex")
    before = await memory.counts(user, guild_id="g1")

    updated = await memory.update_message(user, "9001", "My cat is called Miso and she loves the sofa.")

    assert updated is not None and updated.id == edited and updated.revision == 1
    assert updated.user_message == "My cat is called Miso and she loves the sofa."
    assert "edited_at" in updated.metadata and updated.message_id == "9001"
    assert await memory.cache.recent(scope, 10) is None  # dropped at once, warmed again from the archive
    await memory.flush()
    archived = {e["id"]: e for e in (await memory.export(user))["exchanges"]}
    assert archived[edited]["user_message"] == "My cat is called Miso and she loves the sofa."
    assert archived[other]["user_message"] == "I work as a carpenter in Leeds."
    summaries = await summaries_of(memory, user, edited)
    assert len(summaries) == 1 and "Miso" in summaries[0] and "Rex" not in summaries[0]
    assert await memory.graph.topic_exchanges(scope, "rex") == []
    assert await memory.graph.topic_exchanges(scope, "miso") == [edited]
    assert await memory.t.archive.search(scope, "Rex", 5) == []
    ctx = await memory.get_conversation_context(user, "What is my pet called?", guild_id="g1", max_tokens=800)
    text = ctx.to_context_string(800)
    assert "Miso" in text and "Rex" not in text
    cached = {e.id: e for e in await memory.cache.recent(scope, 10) or []}
    assert cached[edited].user_message.startswith("My cat is called Miso")
    after = await memory.counts(user, guild_id="g1")
    assert after["archive"] == before["archive"] == 2 and after["summaries"] == before["summaries"]


async def test_edits_reach_only_the_author_and_bad_text_changes_nothing(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    alice, mallory = uid("alice"), uid("mallory")
    await memory.store_conversation(alice, "My locker code is 4471.", "Noted.", guild_id="g1", message_id="9101")
    assert await memory.update_message(mallory, "9101", "My locker code is 0000.") is None
    assert await memory.update_message(alice, "9999", "never stored") is None
    with pytest.raises(InvalidInput):
        await memory.update_message(alice, "9101", "   ")
    with pytest.raises(InvalidInput):
        await memory.update_message(alice, "91 01; DROP TABLE exchanges", "x")
    same = await memory.update_message(alice, "9101", "My locker code is 4471.")
    assert same is not None and same.revision == 0  # unchanged text: nothing to do
    assert [e["user_message"] for e in (await memory.export(alice))["exchanges"]] == ["My locker code is 4471."]


async def test_update_exchange_by_id(memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("byid")
    xid = await memory.store_conversation(user, "What is the capital of Peru?", "Quito.")
    fixed = await memory.update_exchange(user, xid, bot_response="Lima.")
    assert (fixed.user_message, fixed.bot_response, fixed.revision) == ("What is the capital of Peru?", "Lima.", 1)
    with pytest.raises(InvalidInput):
        await memory.update_exchange(user, xid)
    with pytest.raises(NotFound):
        await memory.update_exchange(uid("stranger"), xid, bot_response="Bogotá.")
    await memory.flush()
    assert ["Lima" in s and "Quito" not in s for s in await summaries_of(memory, user, xid)] == [True]


async def test_an_edit_while_a_worker_holds_the_old_text_is_not_lost(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    memory = await own_manager(bundled, own_postgres_dsn, make_manager, tmp_path, worker={"in_process": False})
    user = uid("race")
    scope = Scope(user, "g1")
    xid = await memory.store_conversation(user, "My dog is called Rex.", "Nice.", guild_id="g1", message_id="77")
    stale = [e for e, _ in await memory.t.outbox.claim(10, 60)]  # a worker takes the old text ...
    assert [e.id for e in stale] == [xid]
    await memory.update_message(user, "77", "My cat is called Miso.")  # ... the user edits meanwhile ...
    extractions = await memory.extractor.extract(stale)  # ... and that worker finishes with the old text
    await memory.graph.ingest(list(zip(stale, extractions, strict=True)))
    await memory.t.outbox.complete([xid], revisions=[stale[0].revision])

    assert await memory.pending() == 1  # the edit is still queued
    await drain(memory)
    assert await memory.graph.topic_exchanges(scope, "rex") == []
    assert await memory.graph.topic_exchanges(scope, "miso") == [xid]
    assert ["Miso" in s for s in await summaries_of(memory, user, xid)] == [True]


# ---- deletions ---------------------------------------------------------------------------------


async def test_deleting_a_message_forgets_its_exchange_in_every_tier(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("deleter")
    await memory.store_conversation(user, "My passport number is X1234567.", "I'll keep it safe.",
                                    guild_id="g-del", channel_id="c-del", message_id="9201")
    kept = await memory.store_conversation(user, "I live in Bergen.", "Rainy but lovely.", guild_id="g-keep",
                                           channel_id="c-keep", message_id="9202")
    await memory.flush()
    await memory.set_rolling_summary(user, "g-del", "c-del", "they said X1234567")
    assert (await memory.counts(user, guild_id="g-del"))["summaries"] == 1

    assert await memory.forget_message("9201", channel_id="c-other") is None  # wrong channel: nothing
    removed = await memory.forget_message("9201", channel_id="c-del")

    assert removed is not None and removed["archive"] == 1 and removed["summaries"] == 1 and removed["graph"] > 0
    assert await memory.counts(user, guild_id="g-del") == {"archive": 0, "cache": 0, "summaries": 0, "graph": 0,
                                                           "facts": 0}
    assert await memory.rolling_summary(user, "g-del", "c-del") is None
    assert [e["id"] for e in (await memory.export(user))["exchanges"]] == [kept]
    assert (await memory.counts(user, guild_id="g-keep"))["summaries"] == 1
    assert await memory.forget_message("9201", channel_id="c-del") is None  # already gone


# ---- pause and notice --------------------------------------------------------------------------


async def test_pause_stores_nothing_in_that_scope_in_any_process_until_resumed(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    one = await own_manager(bundled, own_postgres_dsn, make_manager, tmp_path / "one")
    two = await own_manager(bundled, own_postgres_dsn, make_manager, tmp_path / "two")  # another process's pool
    user = uid("pauser")
    assert await one.pause(user, guild_id="g1") is True
    assert await one.pause(user, guild_id="g1") is False

    with pytest.raises(MemoryPaused):
        await two.store_conversation(user, "Remember my pin is 1234", "ok", guild_id="g1")
    assert (await two.counts(user, guild_id="g1"))["archive"] == 0
    assert await two.pending() == 0
    await two.store_conversation(user, "In DMs you may remember this.", "Sure.")  # DMs are not paused
    assert (await two.message_state(user, "g1", claim_notice=False)).paused is True
    assert (await two.message_state(user, None, claim_notice=False)).paused is False
    assert [s.label for s in await one.paused_scopes(user)] == ["guild g1"]
    assert (await one.export(user))["preferences"] == {"paused": ["guild g1"], "time_zone": None}

    assert await two.resume(user, guild_id="g1") is True
    await one.store_conversation(user, "Now remember my favourite tea is sencha.", "Noted.", guild_id="g1")
    assert (await two.counts(user, guild_id="g1"))["archive"] == 1
    assert await one.resume(user, guild_id="g1") is False


async def test_the_notice_is_due_once_per_user_and_scope(memory: HierarchicalMemoryManager,
                                                         uid: Callable[[str], str]) -> None:
    ana, ben = uid("ana"), uid("ben")
    assert (await memory.message_state(ana, "g1", claim_notice=False)).first_notice is False
    dues = [(await memory.message_state(user, guild)).first_notice
            for user, guild in ((ana, "g1"), (ana, "g1"), (ana, "g2"), (ana, None), (ben, "g1"), (ana, None))]
    assert dues == [True, False, True, True, True, False]
    together = await asyncio.gather(*(memory.message_state(ben, "g9") for _ in range(8)))
    assert sum(s.first_notice for s in together) == 1  # concurrent messages: still once


# ---- guild settings ----------------------------------------------------------------------------


async def test_guild_settings_change_only_their_guild(memory: HierarchicalMemoryManager,
                                                      uid: Callable[[str], str]) -> None:
    a, b = uid("guild-a"), uid("guild-b")
    assert (await memory.guild_settings(a)).persona is None
    s = await memory.update_guild_settings(a, updated_by="42", persona="  You are a pirate. ",
                                           add_channels=["111", "222"], retention_days=90)
    assert (s.persona, s.always_on_channels, s.retention_days, s.updated_by) == (
        "You are a pirate.", frozenset({"111", "222"}), 90, "42")
    s = await memory.update_guild_settings(a, updated_by="43", add_channels=["333"], remove_channels=["111"])
    assert (s.persona, s.always_on_channels, s.retention_days) == ("You are a pirate.", frozenset({"222", "333"}), 90)
    assert (await memory.message_state(uid("u"), a, claim_notice=False)).guild == s
    assert (await memory.message_state(uid("u"), b, claim_notice=False)).guild is None
    assert (await memory.message_state(uid("u"), None, claim_notice=False)).guild is None

    for bad in ({"persona": "x" * 4001}, {"retention_days": 0}, {"add_channels": ["12 34"]},
                {"add_channels": [str(i) for i in range(60)]}):
        with pytest.raises(InvalidInput):
            await memory.update_guild_settings(a, updated_by="44", **bad)  # type: ignore[arg-type]
    s = await memory.update_guild_settings(a, updated_by="45", clear_persona=True, clear_retention=True)
    assert (s.persona, s.always_on_channels, s.retention_days) == (None, frozenset({"222", "333"}), None)
    assert (await memory.guild_settings(b)).always_on_channels == frozenset()


# ---- activity and retention --------------------------------------------------------------------


async def test_active_conversations_are_recent_ones_of_the_guild_asked(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user, other = uid("talker"), uid("elsewhere")
    guild = uid("g-active")
    await memory.store_conversation(user, "hello there", "hi", guild_id=guild, channel_id="c-now")
    await memory.store_conversation(user, "and again", "hi again", guild_id=guild, channel_id="c-now")
    await memory.store_conversation(user, "an old chat", "yes", guild_id=guild, channel_id="c-old",
                                    timestamp=datetime.now(UTC) - timedelta(hours=2))
    await memory.store_conversation(other, "somewhere else", "ok", guild_id=uid("g-other"), channel_id="c-x")

    active = await memory.active_conversations(30, guild_id=guild)
    assert [(a.user_id, a.guild_id, a.channel_id, a.exchanges) for a in active] == [(user, guild, "c-now", 2)]
    assert len(await memory.active_conversations(180, guild_id=guild)) == 2
    everywhere = {(a.user_id, a.channel_id) for a in (await memory.stats()).active}
    assert {(user, "c-now"), (other, "c-x")} <= everywhere and (user, "c-old") not in everywhere


async def test_retention_removes_old_exchanges_from_every_tier(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    memory = await own_manager(bundled, own_postgres_dsn, make_manager, tmp_path, worker={"in_process": False},
                               memory={"retention_days": 30})
    user = uid("keeper")
    days = lambda n: NOW - timedelta(days=n)  # noqa: E731
    stored = {
        # (guild, age in days): expected to be kept?
        ("g-plain", 40): False, ("g-plain", 10): True, (None, 45): False, (None, 1): True,
        ("g-short", 10): False, ("g-short", 3): True,    # the guild keeps 7 days
        ("g-long", 40): False, ("g-long", 20): True,     # asks for 100 days: cannot lengthen the global 30
    }
    ids = {}
    for (guild, age) in stored:
        ids[(guild, age)] = await memory.store_conversation(
            user, f"Trip number {age} to Oslo in {guild or 'dms'}", "Nice trip.", guild_id=guild,
            timestamp=days(age))
    await memory.update_guild_settings("g-short", updated_by="1", retention_days=7)
    await memory.update_guild_settings("g-long", updated_by="1", retention_days=100)
    await drain(memory)
    assert (await memory.counts(user))["summaries"] == len(stored)

    report = await memory.apply_retention(force=True)

    gone = {ids[k] for k, keep in stored.items() if not keep}
    kept = {ids[k] for k, keep in stored.items() if keep}
    assert report is not None and report.exchanges == len(gone) and report.pending == ()
    assert report.removed["archive"] == len(gone) and report.removed["summaries"] == len(gone)
    assert {e["id"] for e in (await memory.export(user))["exchanges"]} == kept
    assert {r.exchange_id for r in await memory.summaries.records(user)} == kept
    for guild in ("g-plain", "g-short", "g-long", None):
        oslo = set(await memory.graph.topic_exchanges(Scope(user, guild), "oslo"))
        assert oslo == {ids[k] for k in stored if k[0] == guild and stored[k]}
        recent = await memory.cache.recent(Scope(user, guild), 20) or []
        assert {e.id for e in recent} <= kept
    stats = await memory.stats()
    assert stats.retention_removed == len(gone) and stats.retention_last_run is not None
    again = await memory.apply_retention(force=True)
    assert again is not None and again.exchanges == 0
    assert (await memory.stats()).retention_removed == len(gone)


async def test_retention_is_off_by_default(memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("ancient")
    assert memory.settings.memory.retention_days is None
    await memory.store_conversation(user, "A memory from years ago", "ok", guild_id=uid("g-none"),
                                    timestamp=NOW - timedelta(days=3650))
    report = await memory.apply_retention(force=True)
    assert report is not None and report.exchanges == 0
    assert (await memory.counts(user))["archive"] == 1


async def test_the_worker_runs_retention_periodically(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    memory = await own_manager(bundled, own_postgres_dsn, make_manager, tmp_path,
                               memory={"retention_days": 30, "retention_check_minutes": 0.01})
    user = uid("periodic")
    old = await memory.store_conversation(user, "An old story about Oslo", "ok", timestamp=NOW - timedelta(days=31))
    young = await memory.store_conversation(user, "A new story about Rome", "ok")
    deadline = time.monotonic() + 120
    while (await memory.counts(user))["archive"] > 1:
        assert time.monotonic() < deadline, "the worker never ran the retention job"
        await asyncio.sleep(0.2)
    await memory.flush()
    assert [e["id"] for e in (await memory.export(user))["exchanges"]] == [young]
    assert old not in {r.exchange_id for r in await memory.summaries.records(user)}
    assert (await memory.stats()).retention_removed >= 1
