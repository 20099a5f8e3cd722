"""Migration from a legacy single-Chroma store: the mapper on its own, then whole runs on real tiers."""

from __future__ import annotations

import argparse
import json
import os
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from memory import HierarchicalMemoryManager
from memory.errors import ConfigurationError
from memory.launcher import Addresses
from memory.migration import (
    NO_MESSAGE,
    NO_REPLY,
    LegacyRecord,
    Mapper,
    MigrationProgress,
    Unmappable,
    add_migrate_parser,
    classify,
    exchange_id_for,
    migrate_from_chroma,
    parse_timestamp,
    run_migrate_command,
)
from memory.models import Exchange
from memory.settings import MemorySettings
from tests import servers
from tests.memory import legacy_stores as legacy

STARTED = datetime(2025, 1, 1, tzinfo=UTC)


def records_of(rows: list[legacy.Record]) -> list[LegacyRecord]:
    return [LegacyRecord(rid, doc, meta or {}, n) for n, (rid, doc, meta) in enumerate(rows)]


@pytest.mark.parametrize(("raw", "expected"), [
    ("2023-03-01T12:00:00Z", datetime(2023, 3, 1, 12, tzinfo=UTC)),
    ("2023-03-01T14:00:00+02:00", datetime(2023, 3, 1, 12, tzinfo=UTC)),
    ("2023-03-01 12:00:00", datetime(2023, 3, 1, 12, tzinfo=UTC)),        # naive means UTC
    (1677672000, datetime(2023, 3, 1, 12, tzinfo=UTC)),                   # epoch seconds
    (1677672000.5, datetime(2023, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)),
    (1677672000000, datetime(2023, 3, 1, 12, tzinfo=UTC)),                # epoch milliseconds
    ("1677672000", datetime(2023, 3, 1, 12, tzinfo=UTC)),                 # epoch as text
    ("last tuesday", None), ("", None), (None, None), (True, None), (-5, None), (float("nan"), None),
])
def test_timestamps_in_every_legacy_format(raw: object, expected: datetime | None) -> None:
    assert parse_timestamp(raw) == expected


def test_classify_tells_exchanges_messages_and_unmappable_apart() -> None:
    rows = records_of([
        ("a", "", {"user_id": "1", "user_message": "hi", "bot_response": "hello"}),
        ("b", "hi", {"role": "user", "user_id": "1"}),
        ("c", "hello", {"type": "Assistant", "user_id": "1"}),
        ("d", "User: hi\nAssistant: hello", {"user_id": "1"}),
        ("e", "orphan text", {}),
        ("f", "system text", {"role": "system", "user_id": "1"}),
        ("g", "just text", {"user_id": "1"}),
    ])
    kinds = [classify(r) for r in rows]
    assert kinds[:4] == ["exchange", "message", "message", "exchange"]
    reasons = [k.reason for k in kinds[4:] if isinstance(k, Unmappable)]
    assert len(reasons) == 3
    assert "no metadata" in reasons[0]
    assert "unknown role/type 'system'" in reasons[1]
    assert "neither" in reasons[2]


def test_transcript_documents_become_exchanges() -> None:
    record = LegacyRecord("t1", "User: I sail on weekends\nBot: Which boat?", {"user_id": "7"}, 0)
    (ex,) = Mapper("mem", "uuid-1", STARTED).map_exchange(record)
    assert isinstance(ex, Exchange)
    assert (ex.user_message, ex.bot_response) == ("I sail on weekends", "Which boat?")
    assert "legacy_document" not in ex.metadata          # the document held nothing more


def test_message_pairing_is_by_time_and_independent_of_store_order() -> None:
    rows, expected = legacy.message_store("pair", "u1", conversations=2)
    mapper = Mapper("mem", "uuid-1", STARTED)
    by_conv: dict[str, list[LegacyRecord]] = {}
    for record in records_of(rows):
        by_conv.setdefault(str(record.metadata["conversation_id"]), []).append(record)
    first = [x for recs in by_conv.values() for x in mapper.pair(recs)]
    shuffled = [x for recs in by_conv.values() for x in mapper.pair(random.Random(3).sample(recs, len(recs)))]
    assert first == shuffled
    assert all(isinstance(x, Exchange) for x in first)
    got = {tuple(x.metadata["legacy_ids"]): x for x in first if isinstance(x, Exchange)}
    assert sorted(got) == sorted(e.legacy_ids for e in expected)
    for e in expected:
        ex = got[e.legacy_ids]
        assert (ex.user_message, ex.bot_response, ex.timestamp) == (
            e.user_message, e.bot_response, e.timestamp)
        assert ex.metadata.get("legacy_unpaired", False) == (NO_REPLY in e.bot_response or
                                                             NO_MESSAGE in e.user_message)


def test_consecutive_replies_join_and_unanswered_messages_are_kept() -> None:
    t = "2024-05-01T10:00:0{}Z"
    rows = records_of([
        ("m1", "first question", {"role": "user", "user_id": "5", "timestamp": t.format(1)}),
        ("m2", "second question", {"role": "user", "user_id": "5", "timestamp": t.format(2)}),
        ("m3", "part one", {"role": "assistant", "timestamp": t.format(3)}),
        ("m4", "part two", {"role": "assistant", "timestamp": t.format(4)}),
    ])
    first, second = Mapper("mem", "uuid-1", STARTED).pair(rows)
    assert isinstance(first, Exchange) and isinstance(second, Exchange)
    assert (first.user_message, first.bot_response, first.metadata["legacy_unpaired"]) == (
        "first question", NO_REPLY, True)
    assert (second.user_message, second.bot_response) == ("second question", "part one\n\npart two")
    assert second.metadata["legacy_ids"] == ["m2", "m3", "m4"]
    assert second.user_id == "5"
    assert "legacy_unpaired" not in second.metadata


def test_missing_timestamps_fall_back_to_run_start_in_legacy_order() -> None:
    rows, expected, _ = legacy.messy_store("fb", "u9")
    mapper = Mapper("mem", "uuid-1", STARTED)
    mapped = [x for r in records_of(rows) if classify(r) == "exchange" for x in mapper.map_exchange(r)]
    exchanges = [x for x in mapped if isinstance(x, Exchange)]
    assert len(exchanges) == len(expected)
    assert [x.timestamp for x in exchanges] == [STARTED + timedelta(microseconds=n) for n in range(4)]
    assert all(x.metadata["legacy_timestamp_missing"] is True for x in exchanges)
    assert exchanges[3].metadata["legacy_timestamp_raw"] == "last tuesday"


def test_records_without_a_user_or_with_unstorable_text_are_unmappable_with_reasons() -> None:
    rows, _, unmappable = legacy.messy_store("um", "u9")
    mapper = Mapper("mem", "uuid-1", STARTED)
    reasons: dict[str, str] = {}
    for record in records_of(rows):
        kind = classify(record)
        items = mapper.map_exchange(record) if kind == "exchange" else [kind]
        reasons |= {x.legacy_id: x.reason for x in items if isinstance(x, Unmappable)}
    assert sorted(reasons) == sorted(unmappable)
    for legacy_id, fragment in unmappable.items():
        assert fragment in reasons[legacy_id]


def test_exchange_ids_are_deterministic_and_tell_stores_apart() -> None:
    same = exchange_id_for("uuid-1", "user_memories", ["0"])
    assert same == exchange_id_for("uuid-1", "user_memories", ["0"])
    assert same != exchange_id_for("uuid-2", "user_memories", ["0"])     # another store, same name and id
    assert exchange_id_for("uuid-1", "user_memories", ["0", "1"]) != exchange_id_for(
        "uuid-1", "user_memories", ["0"])


def test_guild_ids_stored_as_numbers_and_dm_markers_map_to_scopes() -> None:
    base = {"user_id": 42.0, "user_message": "hi", "bot_response": "hello"}
    mapper = Mapper("mem", "uuid-1", STARTED)
    (in_guild,) = mapper.map_exchange(LegacyRecord("g", None, base | {"guild_id": 9001, "channel_id": 7}, 0))
    (in_dm,) = mapper.map_exchange(LegacyRecord("d", None, base | {"guild_id": "None"}, 1))
    assert isinstance(in_guild, Exchange) and isinstance(in_dm, Exchange)
    assert (in_guild.user_id, in_guild.guild_id, in_guild.channel_id) == ("42", "9001", "7")
    assert in_dm.guild_id is None


# ---------------------------------------------------------------- whole runs on real tiers

@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def memory(bundled: Addresses, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[HierarchicalMemoryManager]:
    """One manager on the session's bundled servers (summaries in a fresh on-disk Chroma)."""
    user, password = bundled.neo4j_auth or ("neo4j", None)
    settings = MemorySettings(
        data_dir=tmp_path_factory.mktemp("migration-memory"), redis={"url": bundled.redis_url},
        postgres={"dsn": await servers.create_database(bundled.postgres_dsn)},  # no other worker takes its rows
        neo4j={"uri": bundled.neo4j_uri, "user": user, "password": password,
               "database": bundled.neo4j_database})
    async with HierarchicalMemoryManager.from_env(settings) as manager:
        yield manager


def tag() -> str:
    return f"mig{uuid.uuid4().hex[:8]}"


async def archived(memory: HierarchicalMemoryManager, user: str) -> list[dict[str, Any]]:
    exported = await memory.export(user)
    return list(exported["exchanges"])


def assert_migrated(rows: list[dict[str, Any]], expected: list[legacy.Expected]) -> None:
    """Every expected exchange is archived exactly once, with its text, scope, legacy ids and time."""
    by_ids = {tuple(r["metadata"]["legacy_ids"]): r for r in rows}
    assert len(by_ids) == len(rows)                         # no duplicates
    assert sorted(by_ids) == sorted(e.legacy_ids for e in expected)
    for e in expected:
        row = by_ids[e.legacy_ids]
        assert (row["user_message"], row["bot_response"]) == (e.user_message, e.bot_response)
        assert (row["guild_id"], row["channel_id"]) == (e.guild_id, e.channel_id)
        if e.timestamp is not None:
            assert datetime.fromisoformat(row["timestamp"]) == e.timestamp
        else:
            assert row["metadata"]["legacy_timestamp_missing"] is True


async def test_exchange_store_migrates_into_every_tier_and_reruns_skip(
        memory: HierarchicalMemoryManager, tmp_path: Path) -> None:
    t = tag()
    users = [f"{t}a", f"{t}b"]
    rows, expected = legacy.exchange_store(t, users, per_user=5)
    legacy.write_collection(tmp_path / "legacy", "user_memories", rows,
                            metadata={"embedding_model": "text-embedding-ada-002"})
    seen: list[MigrationProgress] = []

    report = await migrate_from_chroma(memory, str(tmp_path / "legacy"), batch_size=4, progress=seen.append)

    assert (report.records_total, report.records_read, report.exchanges_created) == (10, 10, 10)
    assert (report.skipped_existing, report.unmappable_count) == (0, 0)
    assert [p.records_read for p in seen if p.phase == "exchanges"] == [4, 8, 10]
    assert report.users == tuple(users)
    for user in users:
        assert_migrated(await archived(memory, user), [e for e in expected if e.user_id == user])
        counts = report.counts[user]
        assert counts == await memory.counts(user)
        assert counts["archive"] == 5
        assert counts["summaries"] >= 5 and counts["graph"] > 0 and counts["cache"] > 0
    assert report.sample_checked == 10 and report.sample_hits == 10
    assert (report.embedding.legacy_model, report.embedding.legacy_dimension) == (
        "text-embedding-ada-002", 1536)
    assert report.embedding.matches is False
    assert "re-embedded" in "\n".join(report.lines())

    # the graph was backfilled with the original dates, and scopes kept apart
    guild_hit = next(e for e in expected if e.user_id == users[0] and e.guild_id)
    profile = await memory.profile(users[0], guild_id="9001")
    city = next(r for r in profile if r.name == guild_hit.user_message.split(" to ")[1].split()[0].lower())
    assert city.first_seen.year == 2023
    ctx = await memory.get_conversation_context(users[0], guild_hit.user_message, guild_id="9001")
    in_context = {str(r.exchange.metadata["legacy_ids"][0]) for r in ctx.relevant} | {
        str(x.metadata["legacy_ids"][0]) for x in ctx.recent}
    assert guild_hit.legacy_ids[0] in in_context
    assert not in_context & {e.legacy_ids[0] for e in expected if e.guild_id is None}

    again = await migrate_from_chroma(memory, str(tmp_path / "legacy"), batch_size=4)
    assert (again.records_read, again.exchanges_created, again.skipped_existing) == (10, 0, 10)
    assert again.counts == report.counts


async def test_message_store_pairs_conversations_across_pages(
        memory: HierarchicalMemoryManager, tmp_path: Path) -> None:
    t = tag()
    rows, expected = legacy.message_store(t, f"{t}u", conversations=3)
    legacy.write_collection(tmp_path / "legacy", "chat_log", rows)

    report = await migrate_from_chroma(memory, str(tmp_path / "legacy"), collection="chat_log", batch_size=3)

    assert (report.records_read, report.exchanges_created, report.unmappable_count) == (
        len(rows), len(expected), 0)
    exported = await archived(memory, f"{t}u")
    assert_migrated(exported, expected)
    unpaired = sorted(r["user_message"] for r in exported if r["metadata"].get("legacy_unpaired"))
    assert len(unpaired) == 4 and unpaired.count(NO_MESSAGE) == 1

    plan = await migrate_from_chroma(memory, str(tmp_path / "legacy"), collection="chat_log", dry_run=True)
    assert (plan.exchanges_created, plan.skipped_existing, plan.sample_checked) == (0, len(expected), 0)


async def test_undated_and_unmappable_records(memory: HierarchicalMemoryManager, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    t = tag()
    user = f"{t}u"
    rows, expected, unmappable = legacy.messy_store(t, user)
    legacy.write_collection(tmp_path / "legacy", "user_memories", rows)
    monkeypatch.chdir(tmp_path)

    report = await migrate_from_chroma(memory, str(tmp_path / "legacy"))

    assert (report.exchanges_created, report.unmappable_count) == (len(expected), len(unmappable))
    assert_migrated(await archived(memory, user), expected)
    assert sum(report.unmappable_reasons.values()) == len(unmappable)
    assert sorted(os.listdir(tmp_path)) == ["legacy"]       # nothing written into the working directory
    # the unmappable records are kept in the archive, content and all, for the operator
    kept = {r.legacy_id: r for r in await memory.set_aside_records(collection="user_memories")
            if r.legacy_id.startswith(t)}
    assert sorted(kept) == sorted(unmappable)
    for legacy_id, fragment in unmappable.items():
        assert fragment in kept[legacy_id].reason
    assert kept[f"{t}-nometa-0"].record["document"] == "User likes green tea"
    assert kept[f"{t}-nul"].record["metadata"]["user_message"] == "bad\x00byte"    # exact, NUL and all
    naming_user = {f"{t}-weird", f"{t}-nul"}
    assert {r.legacy_id for r in await memory.set_aside_records(user_id=user)} == naming_user
    assert {r["legacy_id"] for r in (await memory.export(user))["legacy_set_aside"]} == naming_user

    # forget covers them: the records naming the user go, the ones naming nobody stay for the operator
    await memory.forget(user)
    assert await memory.set_aside_records(user_id=user) == []
    left = {r.legacy_id for r in await memory.set_aside_records() if r.legacy_id.startswith(t)}
    assert left == set(unmappable) - naming_user


async def test_interrupted_run_resumes_without_duplicates(
        memory: HierarchicalMemoryManager, tmp_path: Path) -> None:
    t = tag()
    user = f"{t}u"
    ex_rows, ex_expected = legacy.exchange_store(t, [user], per_user=6)
    msg_rows, msg_expected = legacy.message_store(t, user, conversations=2)
    legacy.write_collection(tmp_path / "legacy", "user_memories", ex_rows + msg_rows)

    class Stop(Exception):
        pass

    calls: list[MigrationProgress] = []

    def stop_after_first_batch(p: MigrationProgress) -> None:
        calls.append(p)
        raise Stop

    with pytest.raises(Stop):
        await migrate_from_chroma(memory, str(tmp_path / "legacy"), batch_size=4, progress=stop_after_first_batch)
    assert calls[0].exchanges_created == 4
    assert len(await archived(memory, user)) == 4

    async def stop_in_pairing(p: MigrationProgress) -> None:
        if p.phase == "conversations":
            raise Stop

    with pytest.raises(Stop):
        await migrate_from_chroma(memory, str(tmp_path / "legacy"), batch_size=4, progress=stop_in_pairing)
    partial = len(await archived(memory, user))
    assert len(ex_expected) <= partial < len(ex_expected) + len(msg_expected)

    report = await migrate_from_chroma(memory, str(tmp_path / "legacy"), batch_size=4)
    total = len(ex_expected) + len(msg_expected)
    assert (report.exchanges_created, report.skipped_existing) == (total - partial, partial)
    assert_migrated(await archived(memory, user), ex_expected + msg_expected)
    assert report.counts[user]["archive"] == total


async def test_dry_run_writes_nothing(memory: HierarchicalMemoryManager, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    t = tag()
    rows, _ = legacy.exchange_store(t, [f"{t}u"], per_user=4)
    messy, _, unmappable = legacy.messy_store(t, f"{t}u")
    legacy.write_collection(tmp_path / "legacy", "user_memories", rows + messy)
    monkeypatch.chdir(tmp_path)
    before = legacy.file_tree(tmp_path)

    report = await migrate_from_chroma(memory, str(tmp_path / "legacy"), dry_run=True)

    assert (report.dry_run, report.records_read, report.exchanges_created) == (True, len(rows + messy), 8)
    assert report.unmappable_count == len(unmappable)
    assert {u.legacy_id for u in report.unmappable_sample} == set(unmappable)
    assert report.counts == {}
    assert all(n == 0 for n in (await memory.counts(f"{t}u")).values())
    assert [r for r in await memory.set_aside_records() if r.legacy_id.startswith(t)] == []
    # the legacy store itself is untouched: same files, same bytes, same modification times
    assert legacy.file_tree(tmp_path) == before


async def test_a_real_run_leaves_the_legacy_store_untouched(memory: HierarchicalMemoryManager,
                                                            tmp_path: Path) -> None:
    t = tag()
    rows, expected = legacy.exchange_store(t, [f"{t}u"], per_user=3)
    legacy.write_collection(tmp_path / "legacy", "user_memories", rows)
    before = legacy.file_tree(tmp_path)

    report = await migrate_from_chroma(memory, str(tmp_path / "legacy"))

    assert report.exchanges_created == 3
    assert_migrated(await archived(memory, f"{t}u"), expected)
    assert legacy.file_tree(tmp_path) == before


async def test_a_folder_without_a_store_is_refused_before_anything_opens_it(
        memory: HierarchicalMemoryManager, tmp_path: Path) -> None:
    folder = tmp_path / "not-a-store"
    folder.mkdir()
    (folder / "notes.txt").write_text("private")
    before = legacy.file_tree(tmp_path)
    for dry_run in (True, False):
        with pytest.raises(ConfigurationError, match="no Chroma store"):
            await migrate_from_chroma(memory, str(folder), dry_run=dry_run)
    assert legacy.file_tree(tmp_path) == before                          # no chroma.sqlite3 created there


async def test_http_chroma_store_with_the_configured_model(
        memory: HierarchicalMemoryManager, chroma_http_url: str, tmp_path: Path) -> None:
    t = tag()
    rows, expected = legacy.exchange_store(t, [f"{t}u"], per_user=3)
    legacy.write_collection(chroma_http_url, f"{t}-memories", rows, dim=384, default_function=True)

    report = await migrate_from_chroma(memory, chroma_http_url, collection=f"{t}-memories")

    assert report.exchanges_created == 3
    assert_migrated(await archived(memory, f"{t}u"), expected)
    assert (report.embedding.legacy_model, report.embedding.legacy_dimension) == ("all-MiniLM-L6-v2", 384)
    assert report.embedding.matches is True


async def test_missing_store_or_collection_is_a_configuration_error(
        memory: HierarchicalMemoryManager, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="neither a directory"):
        await migrate_from_chroma(memory, str(tmp_path / "nowhere"))
    assert not (tmp_path / "nowhere").exists()
    legacy.write_collection(tmp_path / "legacy", "other_name", [])
    with pytest.raises(ConfigurationError, match="no collection 'user_memories'") as raised:
        await migrate_from_chroma(memory, str(tmp_path / "legacy"))
    assert "other_name" not in str(raised.value)             # the store's other collections stay unnamed


async def test_cli_command_prints_the_report(memory: HierarchicalMemoryManager, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    t = tag()
    rows, _ = legacy.exchange_store(t, [f"{t}u"], per_user=2)
    legacy.write_collection(tmp_path / "legacy", "user_memories", rows)
    parser = argparse.ArgumentParser(prog="memory")
    add_migrate_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["migrate", "--from-chroma", str(tmp_path / "legacy"), "--batch-size", "1",
                              "--collection", f"{t}-cli"])

    assert await run_migrate_command(args, memory) == 2       # no such collection
    capsys.readouterr()
    legacy.write_collection(tmp_path / "legacy", f"{t}-cli", [*rows, (f"{t}-x", "orphan", None)])
    assert await run_migrate_command(args, memory) == 0
    out = capsys.readouterr().out
    assert "exchanges created: 2" in out and "retrieval check: 2/2" in out
    assert "unmappable records: 1" in out and "--list-unmappable" in out

    listing = parser.parse_args(["migrate", "--list-unmappable", "--collection", f"{t}-cli"])
    assert await run_migrate_command(listing, memory) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["legacy_id"] == f"{t}-x" and json.loads(line)["record"]["document"] == "orphan"

    bad = parser.parse_args(["migrate", "--from-chroma", str(tmp_path / "missing"), "--dry-run"])
    assert await run_migrate_command(bad, memory) == 2
