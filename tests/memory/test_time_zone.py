"""A user's time zone: their days in the query ("on 10 March"), their dates in the context, kept
in PostgreSQL, exported, and gone when they forget everything."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from memory import HierarchicalMemoryManager
from memory.errors import InvalidInput
from memory.lifecycle import zone_suggestions
from memory.models import Exchange
from memory.sessions import build, local_heading

LATE = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)   # 00:30 on 10 March in Berlin
NOON = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)    # 13:00 on 9 March in Berlin


async def _two_evenings(memory: HierarchicalMemoryManager, user: str) -> None:
    await memory.store_conversation(user, "I planted tomatoes in the garden by torchlight.", "Brave!",
                                    timestamp=LATE)
    await memory.store_conversation(user, "I repaired the bike chain at lunch.", "Nice.", timestamp=NOON)


def _dated(ctx_text: str, words: str) -> str:
    """The "[date]" line the exchange with ``words`` is packed under."""
    lines = ctx_text.splitlines()
    at = next(i for i, line in enumerate(lines) if words in line)
    return next(line for line in reversed(lines[:at]) if line.startswith("[20"))


async def test_the_users_days_and_dates_are_in_their_time_zone(memory: HierarchicalMemoryManager,
                                                              uid: Callable[[str], str]) -> None:
    berlin, utc = uid("berlin"), uid("utc")
    for user in (berlin, utc):
        await _two_evenings(memory, user)
    assert await memory.set_time_zone(berlin, "europe/berlin") == "Europe/Berlin"
    await memory.flush()
    query = "What did I do on 10 March 2026?"
    local = await memory.get_conversation_context(berlin, query, max_tokens=300)
    assert [r.exchange.timestamp for r in local.relevant if "time" in r.sources] == [LATE]
    text = local.to_context_string()
    assert _dated(text, "I planted tomatoes") == "[2026-03-10]"  # its local date, not 2026-03-09
    assert _dated(text, "I repaired the bike") == "[2026-03-09]"
    plain = await memory.get_conversation_context(utc, query, max_tokens=300)
    assert [r for r in plain.relevant if "time" in r.sources] == []  # nothing on 10 March in UTC
    assert _dated(plain.to_context_string(), "I planted tomatoes") == "[2026-03-09]"


async def test_only_time_zone_names_are_kept(memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("names")
    assert await memory.time_zone(user) is None
    assert await memory.set_time_zone(user, "lisbon") == "Europe/Lisbon"  # a city one zone is named after
    assert await memory.set_time_zone(user, "buenos aires") == "America/Argentina/Buenos_Aires"  # and its alias
    assert await memory.set_time_zone(user, "  America/New York ") == "America/New_York"
    for bad in ("Mars/Olympus_Mons", "eastern", "Etc/Nowhere", "Europe/Berlin'; DROP TABLE user_settings; --", "",
                "Europe/\x00Berlin", "+05:30", "x" * 5000, "../../etc/passwd"):
        with pytest.raises(InvalidInput) as err:
            await memory.set_time_zone(user, bad)
        assert err.value.field == "time_zone"
    assert await memory.time_zone(user) == "America/New_York"  # nothing changed
    assert await memory.set_time_zone(user, None) is None
    assert await memory.time_zone(user) is None


async def test_export_shows_it_and_forgetting_everything_removes_it(memory: HierarchicalMemoryManager,
                                                                    uid: Callable[[str], str]) -> None:
    user = uid("forgets")
    await _two_evenings(memory, user)
    await memory.set_time_zone(user, "Asia/Tokyo")
    assert (await memory.export(user))["preferences"]["time_zone"] == "Asia/Tokyo"
    await memory.forget(user, dm=True)  # these DMs only: a setting for everywhere stays
    assert await memory.time_zone(user) == "Asia/Tokyo"
    await memory.store_conversation(user, "I moved to Osaka last spring.", "Welcome!", timestamp=LATE)
    await memory.flush()
    assert (await memory.get_conversation_context(user, "where do I live?")).zone == ZoneInfo("Asia/Tokyo")
    await memory.forget(user)
    assert await memory.time_zone(user) is None
    assert (await memory.export(user))["preferences"]["time_zone"] is None
    assert (await memory.get_conversation_context(user, "where do I live?")).zone is UTC  # not a cached zone


def test_session_summaries_are_shown_in_the_readers_zone() -> None:
    session = [Exchange(id=f"e{i}", user_id="u", guild_id=None, channel_id=None, user_message=f"tomato row {i}",
                        bot_response="ok", timestamp=LATE.replace(minute=30 + 10 * i)) for i in range(2)]
    summary = build(session)
    assert summary.text.startswith("2026-03-09 23:30\u201323:40, 2 exchanges")
    shown = local_heading(summary, ZoneInfo("Europe/Berlin"))
    assert shown.startswith("2026-03-10 00:30\u201300:40, 2 exchanges")
    assert shown.endswith(summary.text.split(", 2 exchanges", 1)[1])
    assert local_heading(summary, UTC) == summary.text


def test_half_typed_names_suggest_zones() -> None:
    assert zone_suggestions("berl")[0] == "Europe/Berlin"
    assert "America/New_York" in zone_suggestions("new y")
    assert len(zone_suggestions("")) == 25
