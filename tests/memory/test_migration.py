"""Migration from a legacy single-Chroma store: the mapper on its own, then whole runs on real tiers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from memory.migration import (
    NO_MESSAGE,
    NO_REPLY,
    LegacyRecord,
    Mapper,
    Unmappable,
    classify,
    exchange_id_for,
    parse_timestamp,
)
from memory.models import Exchange
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
