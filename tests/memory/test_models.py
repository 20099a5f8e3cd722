"""Validation of untrusted input and the small domain types."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from memory.errors import InvalidInput
from memory.models import (
    MAX_MESSAGE_BYTES,
    MAX_METADATA_BYTES,
    Exchange,
    ForgetTarget,
    Scope,
    clean_id,
    clean_metadata,
    clean_text,
    utc,
)

# --- clean_text -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["", " ", "\t\n  \r", "\u3000", "\u00a0\u2003"])
def test_clean_text_refuses_empty_and_whitespace(value: str) -> None:
    with pytest.raises(InvalidInput) as err:
        clean_text(value, "user_message")
    assert err.value.field == "user_message"
    assert "user_message" in str(err.value)


def test_clean_text_allow_empty() -> None:
    assert clean_text("", "bot_response", allow_empty=True) == ""
    assert clean_text("  ", "bot_response", allow_empty=True) == "  "


@pytest.mark.parametrize("value", ["a\x00b", "\x00", "ok" + "\x00" * 3])
def test_clean_text_refuses_nul(value: str) -> None:
    with pytest.raises(InvalidInput) as err:
        clean_text(value, "bot_response")
    assert err.value.field == "bot_response"
    assert "NUL" in err.value.reason


@pytest.mark.parametrize("value", ["bad \ud800 high", "bad \udfff low", "\udc80",
                                   "pair reversed \udc00\ud800"])
def test_clean_text_refuses_lone_surrogates(value: str) -> None:
    with pytest.raises(InvalidInput) as err:
        clean_text(value, "user_message")
    assert err.value.field == "user_message"


@pytest.mark.parametrize(("unit", "bytes_each"), [("é", 2), ("語", 3), ("🧠", 4)])
def test_the_size_limit_counts_utf8_bytes_not_characters(unit: str, bytes_each: int) -> None:
    """256 KiB of UTF-8: a text of multi-byte characters reaches it with far fewer characters."""
    fits = unit * (262_144 // bytes_each)
    assert clean_text(fits, "user_message") == fits
    over = fits + unit
    assert len(over) < 262_144  # a character limit would let it through
    with pytest.raises(InvalidInput) as err:
        clean_text(over, "user_message")
    assert err.value.field == "user_message"
    assert f"is {len(over) * bytes_each} bytes as UTF-8; the limit is 262144" in str(err.value)


def test_clean_text_refuses_oversize_and_non_strings() -> None:
    assert MAX_MESSAGE_BYTES == 262_144  # the README's 256 KiB
    assert clean_text("x" * 262_144, "user_message") == "x" * 262_144
    with pytest.raises(InvalidInput) as err:
        clean_text("x" * 262_145, "user_message")
    assert err.value.field == "user_message"
    with pytest.raises(InvalidInput):
        clean_text("abcdef", "topic", max_chars=5)
    for value in (None, 42, b"bytes", ["list"]):
        with pytest.raises(InvalidInput) as err:
            clean_text(value, "query")
        assert err.value.field == "query"


@pytest.mark.parametrize("value", [
    "emoji 🧠👩‍👩‍👧🇫🇷", "שלום עולם", "مرحبا", "e\u0301\u0301\u0301", "Z\u0335\u0321\u0310algo",
    "\u200b\u200dzero width", "\ufeffBOM", "\U0010fffd plane 16", "tab\tand\nnewlines\r\n",
    "'); DROP TABLE exchanges; --", "\x01\x7f control",
])
def test_clean_text_accepts_odd_unicode_unchanged(value: str) -> None:
    assert clean_text(value, "user_message") == value


# --- clean_id and Scope ---------------------------------------------------------------------------

def test_clean_id_accepts_snowflakes_and_names() -> None:
    assert clean_id(123456789012345678, "user_id") == "123456789012345678"
    assert clean_id("alice.smith@example-1_x", "user_id") == "alice.smith@example-1_x"
    assert clean_id("x" * 100, "user_id") == "x" * 100


@pytest.mark.parametrize("value", ["", "a:b", "a b", "a*", "x" * 101, "ünï", None, True, 1.5, "a\x00"])
def test_clean_id_refuses(value: object) -> None:
    with pytest.raises(InvalidInput) as err:
        clean_id(value, "guild_id")
    assert err.value.field == "guild_id"


def test_scope_keys_and_labels() -> None:
    dm, guild = Scope.of(42), Scope.of("42", 7)
    assert (dm.user_id, dm.guild_id, dm.key, dm.label) == ("42", None, "dm", "DMs")
    assert (guild.guild_id, guild.key, guild.label) == ("7", "g:7", "guild 7")
    assert Scope.guild_of(dm.key) is None
    assert Scope.guild_of(guild.key) == "7"
    assert Scope.of("a", "dm").key != Scope.of("a").key  # a guild named "dm" is not the DMs
    assert Scope.guild_of(Scope.of("a", "dm").key) == "dm"
    assert Scope.of(1, 2) == Scope("1", "2")
    assert len({Scope.of(1, 2), Scope("1", "2"), Scope("1")}) == 2
    with pytest.raises(InvalidInput) as err:
        Scope.of("a", "g:1")
    assert err.value.field == "guild_id"


def test_forget_target_needs_scope_for_exchanges() -> None:
    with pytest.raises(InvalidInput):
        ForgetTarget("alice", exchange_ids=("e1",))
    assert ForgetTarget("alice", Scope("alice"), ("e1",)).exchange_ids == ("e1",)


# --- clean_metadata -------------------------------------------------------------------------------

def test_clean_metadata_returns_a_json_copy() -> None:
    source = {"channel": "general", "n": 3, "ok": True, "tags": ("a", "b"), "when": datetime(2024, 5, 1),
              "nested": {"emoji": "🧠", "none": None}}
    cleaned = clean_metadata(source)
    assert cleaned == {"channel": "general", "n": 3, "ok": True, "tags": ["a", "b"],
                       "when": "2024-05-01T00:00:00", "nested": {"emoji": "🧠", "none": None}}
    cleaned["nested"]["emoji"] = "changed"
    assert source["nested"]["emoji"] == "🧠"  # type: ignore[index]
    assert clean_metadata(None) == {}


@pytest.mark.parametrize("value", [
    {"x": object()}, {"x": {1, 2}}, {"x": b"bytes"}, {"x": Decimal("1.5")}, {"x": math.nan},
    {"x": math.inf}, {"x": "nul\x00"}, {"nul\x00key": 1}, {"x": ["ok", {"deep": "\x00"}]},
    {"x": "lone \ud800"}, {"x": ["\udc00"]}, {"x": "y" * MAX_METADATA_BYTES},
    # every lone surrogate, U+D800..U+DFFF, not only those starting D8 or DC
    {"x": "lone \uda00"}, {"x": "lone \udb40"}, {"x": "lone \udfff"}, {"lone \udfff": 1},
])
def test_clean_metadata_refuses(value: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as err:
        clean_metadata(value)
    assert err.value.field == "metadata"


def test_clean_metadata_refuses_non_mappings() -> None:
    for value in (["a"], "text", 3):
        with pytest.raises(InvalidInput):
            clean_metadata(value)  # type: ignore[arg-type]


# --- utc and Exchange -----------------------------------------------------------------------------

def test_utc_normalises_timestamps() -> None:
    naive = datetime(2024, 5, 1, 12, 0)
    assert utc(naive) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    paris = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert utc(paris).tzinfo is UTC
    assert utc(paris).hour == 12
    before = datetime.now(UTC)
    assert before <= utc(None) <= datetime.now(UTC)
    with pytest.raises(InvalidInput):
        utc("2024-05-01")  # type: ignore[arg-type]


def test_exchange_json_round_trip() -> None:
    e = Exchange("e1", "alice", "g1", None, "hi 🧠", "hello\nthere", datetime(2024, 5, 1, tzinfo=UTC),
                 {"k": [1, 2]})
    assert Exchange.from_json(e.to_json()) == e
    assert e.scope == Scope("alice", "g1")
    assert e.text == "hi 🧠\nhello\nthere"
