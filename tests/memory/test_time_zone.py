"""A user's time zone: their days in the query ("on 10 March"), their dates in the context, kept
in PostgreSQL, exported, and gone when they forget everything."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from memory import HierarchicalMemoryManager
from memory.errors import InvalidInput
from memory.lifecycle import zone_suggestions
from memory.models import Exchange, TypedFact
from memory.profile import derive_lines
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


# ---- the profile's dates: read and shown in the user's zone ---------------------------------------


def _evening_before(now: datetime) -> datetime:
    """23:30 UTC yesterday: already the next morning in Tokyo, still the afternoon in California."""
    return (now - timedelta(days=1)).replace(hour=23, minute=30, second=0, microsecond=0)


def _day(at: datetime) -> str:
    return f"{at:%a} {at.day} {at:%b %Y}"


async def test_a_plan_and_a_move_are_dated_by_the_users_own_day(memory: HierarchicalMemoryManager,
                                                               uid: Callable[[str], str]) -> None:
    tokyo, utc = uid("tokyo"), uid("utc")
    assert await memory.set_time_zone(tokyo, "Asia/Tokyo") == "Asia/Tokyo"
    said = _evening_before(datetime.now(UTC))  # plans show while to come and a week after: near real time
    for user in (tokyo, utc):
        await memory.store_conversation(user, "I have a job interview tomorrow. I moved to Osaka yesterday.",
                                        "Good luck!", timestamp=said)
    await memory.flush()
    local_day = said.astimezone(ZoneInfo("Asia/Tokyo")).date()  # the morning after in Tokyo
    for user, today in ((tokyo, local_day), (utc, said.date())):
        profile = await memory.user_profile(user)
        plan, home = profile.line("plans"), profile.line("home")
        assert plan is not None and plan.text == f"Plans: job interview ({_day(today + timedelta(days=1))})"
        assert home is not None and home.text == f"Lives in Osaka (since {today - timedelta(days=1)})"
    # the graph keeps the Tokyo interview at midnight in Tokyo
    interview = next(f for f in await memory.typed_facts(tokyo) if f.predicate == "PLANS")
    assert interview.valid_from == datetime.combine(local_day + timedelta(days=1), datetime.min.time(),
                                                    ZoneInfo("Asia/Tokyo"))
    # the context the model reads says the same as /memory profile
    ctx = await memory.get_conversation_context(tokyo, "any news?", max_tokens=400)
    assert f"job interview ({_day(local_day + timedelta(days=1))})" in ctx.to_context_string()


async def test_a_correction_holds_when_the_user_sets_a_time_zone_later(memory: HierarchicalMemoryManager,
                                                                      uid: Callable[[str], str]) -> None:
    user = uid("porto")
    said = _evening_before(datetime.now(UTC))
    await memory.store_conversation(user, "I live in Porto.", "Lovely city.", timestamp=said)
    await memory.flush()
    home = (await memory.user_profile(user)).line("home")
    assert home is not None and home.text == f"Lives in Porto (as of {said.date()})"
    await memory.correct_profile(user, "home", "Lives in Porto, Portugal")
    await memory.set_time_zone(user, "Asia/Tokyo")  # the line would read "as of" the next day there
    home = (await memory.user_profile(user)).line("home")
    assert home is not None and (home.text, home.corrected) == ("Lives in Porto, Portugal", True)
    ctx = await memory.get_conversation_context(user, "where do I live?", max_tokens=300)
    assert "Lives in Porto, Portugal" in ctx.to_context_string() and "as of" not in ctx.to_context_string()
    # a new home is a new line: the correction no longer applies, and the day heard is Tokyo's
    await memory.store_conversation(user, "I live in Kyoto now.", "Nice!", timestamp=said + timedelta(minutes=5))
    await memory.flush()
    home = (await memory.user_profile(user)).line("home")
    tokyo_day = (said + timedelta(minutes=5)).astimezone(ZoneInfo("Asia/Tokyo")).date()
    assert home is not None and home.text.startswith(f"Lives in Kyoto (as of {tokyo_day}")


def test_a_day_stored_at_midnight_utc_keeps_its_date_west_of_greenwich() -> None:
    # facts dated before days were read in the user's zone sit at midnight UTC: 16:00 the day before in California
    la = ZoneInfo("America/Los_Angeles")
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    plan = TypedFact("p", "PLANS", "exam", "exam", "", datetime(2026, 12, 4, tzinfo=UTC), None, (), from_unit="day")
    home = TypedFact("h", "LIVES_IN", "leeds", "Leeds", "", datetime(2026, 12, 2, 3, tzinfo=UTC), None, ())
    lines = derive_lines([plan, home], now, la)
    assert lines["plans"] == "Plans: exam (Fri 4 Dec 2026)"
    assert lines["home"] == "Lives in Leeds (as of 2026-12-01)"  # heard at 19:00 on 1 Dec there: an instant
    assert derive_lines([plan, home], now)["home"] == "Lives in Leeds (as of 2026-12-02)"
