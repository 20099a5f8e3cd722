"""Issue 9, items 2a and 3: inputs that used to crash or poison memory now raise InvalidInput
naming the field, and write nothing (checked in the real archive)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from memory import HierarchicalMemoryManager, InvalidInput
from memory.cli import _parse_line, build_parser, cmd_import
from memory.models import MAX_METADATA_DEPTH, MAX_METADATA_ITEMS, clean_id, clean_metadata, utc
from memory.settings import TimestampSettings


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.mark.parametrize("ts", [
    datetime(1, 1, 1),                                           # Go's zero time: PostgreSQL -infinity
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime.now(UTC) + timedelta(days=2),
    datetime.max,
])
def test_timestamps_outside_the_window_are_refused(ts: datetime) -> None:
    with pytest.raises(InvalidInput) as caught:
        utc(ts)
    assert caught.value.field == "timestamp"


@pytest.mark.parametrize("ts", [
    datetime.max.replace(tzinfo=timezone(timedelta(hours=-3))),  # past year 9999 once in UTC
    datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),   # before year 1 once in UTC
])
def test_timestamps_that_overflow_in_utc_are_invalid_input(ts: datetime) -> None:
    with pytest.raises(InvalidInput) as caught:
        utc(ts)
    assert caught.value.field == "timestamp" and "UTC" in caught.value.reason


def test_timestamps_inside_the_window_keep_their_instant() -> None:
    plus14 = timezone(timedelta(hours=14))
    with pytest.raises(InvalidInput):  # 1969-12-31T23:00Z: the window is checked in UTC
        utc(datetime(1970, 1, 1, 13, 0, tzinfo=plus14))
    assert utc(datetime(2024, 5, 1, 12, 0, tzinfo=plus14)) == datetime(2024, 4, 30, 22, 0, tzinfo=UTC)


def test_the_window_is_a_setting() -> None:
    window = TimestampSettings(earliest="2020-01-01", max_future_seconds=0)
    with pytest.raises(InvalidInput):
        utc(datetime(2019, 12, 31, tzinfo=UTC), earliest=window.earliest_at, max_future=window.max_future)
    assert utc(datetime(2020, 1, 1), earliest=window.earliest_at) == datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        TimestampSettings(earliest="0001-01-01")


@pytest.mark.parametrize("value", ["u1\n", "u1\r\n", "\nu1", " u1", "u1 ", "u1\t", "a" * 100 + "\n"])
def test_ids_with_whitespace_or_a_trailing_newline_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_id(value, "user_id")
    assert caught.value.field == "user_id"


def test_deep_metadata_is_invalid_input_not_recursion_error() -> None:
    assert clean_metadata(_nested(MAX_METADATA_DEPTH)) == _nested(MAX_METADATA_DEPTH)
    for depth in (MAX_METADATA_DEPTH + 1, 2000, 100_000):
        with pytest.raises(InvalidInput) as caught:
            clean_metadata(_nested(depth))
        assert caught.value.field == "metadata" and "nested" in caught.value.reason
    deep_list: list[object] = []
    for _ in range(5000):
        deep_list = [deep_list]
    with pytest.raises(InvalidInput):
        clean_metadata({"x": deep_list})


def test_huge_and_cyclic_metadata_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        clean_metadata({str(i): i for i in range(MAX_METADATA_ITEMS + 1)})
    assert "values" in caught.value.reason
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    with pytest.raises(InvalidInput):
        clean_metadata(cyclic)


async def test_the_manager_refuses_each_and_writes_nothing(memory: HierarchicalMemoryManager,
                                                           uid: Callable[[str], str]) -> None:
    user = uid("limits")
    bad: list[tuple[dict[str, object], str]] = [
        ({"timestamp": datetime(1, 1, 1)}, "timestamp"),
        ({"timestamp": datetime.max.replace(tzinfo=timezone(timedelta(hours=-3)))}, "timestamp"),
        ({"timestamp": datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))}, "timestamp"),
        ({"metadata": _nested(2000)}, "metadata"),
        ({"channel_id": "c1\n"}, "channel_id"),
        ({"exchange_id": "x" * 100 + "\n"}, "exchange_id"),
    ]
    for kwargs, field in bad:
        with pytest.raises(InvalidInput) as caught:
            await memory.store_conversation(user, "hello", "hi", **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field
    with pytest.raises(InvalidInput) as caught:
        await memory.store_conversation(user + "\n", "hello", "hi")
    assert caught.value.field == "user_id"
    assert (await memory.counts(user))["archive"] == 0
    with pytest.raises(InvalidInput):
        await memory.forget(user + "\n")


@pytest.mark.parametrize(("line", "field"), [
    ('{"user_id": "u", "user_message": "a", "bot_response": "b", "timestamp": 1e400}', "timestamp"),
    ('{"user_id": "u", "user_message": "a", "bot_response": "b", "timestamp": -1e20}', "timestamp"),
    ('{"user_id": "u", "user_message": "a", "bot_response": "b", "timestamp": true}', "timestamp"),
    ('{"user_id": "u", "user_message": "a", "bot_response": "b", "timestamp": [2024]}', "timestamp"),
    ('{"user_id": "u", "user_message": "a", "bot_response": "b", "timestamp": "yesterday"}', "timestamp"),
    ('{"user_id": ["u"], "user_message": "a", "bot_response": "b"}', "user_id"),
    ('{"user_id": true, "user_message": "a", "bot_response": "b"}', "user_id"),
    ('{"user_id": "u", "user_message": "a", "bot_response": "b", "id": {"x": 1}}', "id"),
])
def test_import_lines_with_bad_fields_name_them(line: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _parse_line(line, 7)
    assert caught.value.field == field and "line 7" in caught.value.reason


def test_import_line_nested_past_the_parser_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        _parse_line("[" * 100_000 + "]" * 100_000, 1)


async def test_import_file_with_go_zero_times_skips_them_and_keeps_the_rest(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str], tmp_path: Path) -> None:
    user = uid("import")
    rows = [
        {"user_id": user, "user_message": "zero time from Go", "bot_response": "b",
         "timestamp": "0001-01-01T00:00:00Z"},
        {"user_id": user, "user_message": "ok line\u2028with a line separator", "bot_response": "fine",
         "timestamp": "2024-02-03T04:05:06+05:00", "metadata": {"k": [1, 2]}},
        {"user_id": user, "user_message": "epoch zero minus one", "bot_response": "b", "timestamp": -1},
    ]
    deep = json.dumps({"user_id": user, "user_message": "deep", "bot_response": "b"})[:-1]
    deep += ', "metadata": ' + '{"k": ' * 3000 + "{}" + "}" * 3000 + "}"
    path = tmp_path / "history.jsonl"
    lines = [json.dumps(r, ensure_ascii=False) for r in rows] + [deep]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = await cmd_import(build_parser().parse_args(["import", str(path)]), memory)
    assert code == 2  # some lines were skipped
    [stored] = (await memory.export(user))["exchanges"]
    assert stored["user_message"] == "ok line\u2028with a line separator"
    assert stored["timestamp"] == "2024-02-02T23:05:06+00:00"
    assert await memory.pending() == 0
