"""Dates named in a query become a window; queries naming no date give none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from memory.timeq import began, upcoming, window

NOW = datetime(2024, 3, 10, 15, 30, tzinfo=UTC)


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


@pytest.mark.parametrize(("query", "start", "end"), [
    ("What did Evan do in July 2023?", day(2023, 7, 1), day(2023, 8, 1)),
    ("What did Evan do in December 2023?", day(2023, 12, 1), day(2024, 1, 1)),
    ("What kind of pasta did Kate make on 29 Dec 2023?", day(2023, 12, 29), day(2023, 12, 30)),
    ("What happened on January 5th, 2024?", day(2024, 1, 5), day(2024, 1, 6)),
    ("Where was I on 03.01.2024?", day(2024, 1, 3), day(2024, 1, 4)),
    ("and on 2023-11-02?", day(2023, 11, 2), day(2023, 11, 3)),
    ("What did we say on 5 January?", day(2024, 1, 5), day(2024, 1, 6)),
    ("What did we say on 20 December?", day(2023, 12, 20), day(2023, 12, 21)),  # not yet this year
    ("Which trips did I take in 2022?", day(2022, 1, 1), day(2023, 1, 1)),
    # a month alone is the latest one up to the time of asking (10 March 2024)
    ("what did we talk about in January?", day(2024, 1, 1), day(2024, 2, 1)),
    ("what did I tell you back in june", day(2023, 6, 1), day(2023, 7, 1)),
    ("anything from early March?", day(2024, 3, 1), day(2024, 4, 1)),
    ("where was I last March?", day(2023, 3, 1), day(2023, 4, 1)),
    ("what did I eat yesterday", day(2024, 3, 9), day(2024, 3, 10)),
    ("what did I do last week", day(2024, 2, 25), day(2024, 3, 10)),
    ("the film I saw 3 days ago", day(2024, 3, 6), day(2024, 3, 9)),
])
def test_named_dates_become_windows(query: str, start: datetime, end: datetime) -> None:
    w = window(query, NOW)
    assert w is not None and (w.start, w.end) == (start, end)
    assert w.phrase in query


@pytest.mark.parametrize("query", ["When did I move?", "May I ask about my cat?", "I ran 30 laps", "I may go",
                                   "any improvement in decision clarity?", "in marching bands",
                                   "on 31 February 2024 what happened", ""])
def test_no_date_no_window(query: str) -> None:
    assert window(query, NOW) is None


# ---- when a statement says its fact began ---------------------------------------------------------

@pytest.mark.parametrize(("clause", "at", "unit"), [
    ("I moved to Manchester last month from Leeds", day(2024, 2, 1), "month"),
    ("since March I have been a paramedic", day(2024, 3, 1), "month"),
    ("since May I have been a paramedic", day(2023, 5, 1), "month"),  # May has not come yet this year
    ("I got a puppy two weeks ago", day(2024, 2, 25), "day"),
    ("I've been living in Porto for about three years now", day(2021, 1, 1), "year"),
    ("I moved to Leeds in 2019", day(2019, 1, 1), "year"),
    ("I have worked at Google since 2015", day(2015, 1, 1), "year"),
    ("I moved to Leeds in May 2021", day(2021, 5, 1), "month"),
    ("I moved to Leeds back in January", day(2024, 1, 1), "month"),  # a month alone names a month, not a year
    ("we moved on 3 May 2022", day(2022, 5, 3), "day"),
    ("I moved here yesterday", day(2024, 3, 9), "day"),
    ("I moved to Berlin last weekend", day(2024, 3, 3), "day"),
    ("I moved to Berlin a year ago", day(2023, 1, 1), "year"),
])
def test_a_statement_says_when_its_fact_began(clause: str, at: datetime, unit: str) -> None:
    found = began(clause, NOW)
    assert found is not None and (found.at, found.unit) == (at, unit)


@pytest.mark.parametrize("clause", [
    "I live in Leeds", "I will move to Leeds in 2030", "I'm moving there in June 2025",  # a plan, not a fact
    "I work as a nurse for the NHS",  # "for" without a duration
    "I work nights for three weeks",  # a duration without "have been": not a start
])
def test_no_start_without_a_past_time(clause: str) -> None:
    assert began(clause, NOW) is None


def test_days_begin_at_the_askers_midnight() -> None:
    # 04:00 UTC on 1 Dec is 20:00 on 30 Nov in California: "yesterday" there is 29 Nov, local midnights
    la = ZoneInfo("America/Los_Angeles")
    asked = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
    w = window("what did I say yesterday?", asked, la)
    assert w is not None
    assert (w.start, w.end) == (datetime(2026, 11, 29, 8, tzinfo=UTC), datetime(2026, 11, 30, 8, tzinfo=UTC))
    utc = window("what did I say yesterday?", asked)
    assert utc is not None and utc.start == datetime(2026, 11, 30, tzinfo=UTC)
    # an absolute day is the asker's day too: 5 March in Tokyo starts at 15:00 UTC on the 4th
    tokyo = window("what happened on 5 March 2026?", asked, ZoneInfo("Asia/Tokyo"))
    assert tokyo is not None and tokyo.start == datetime(2026, 3, 4, 15, tzinfo=UTC)
    assert tokyo.end - tokyo.start == timedelta(days=1)
    # a month alone is read against the asker's date: at 20:00 on 30 Nov in California, November is current
    month = window("what did we talk about in December?", asked, la)
    assert month is not None and month.start == datetime(2025, 12, 1, 8, tzinfo=UTC)


def test_a_day_with_a_clock_change_is_that_days_length() -> None:
    # Europe/Berlin moved its clocks forward on 29 Mar 2026: that day has 23 hours
    berlin = ZoneInfo("Europe/Berlin")
    w = window("what did I do yesterday", datetime(2026, 3, 30, 12, tzinfo=UTC), berlin)
    assert w is not None
    assert (w.start, w.end) == (datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC))


WEDNESDAY = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(("clause", "day", "unit"), [
    ("I have an exam tomorrow", "2026-12-03", "day"), ("my interview is on Friday", "2026-12-04", "day"),
    ("meeting Thursday", "2026-12-03", "day"), ("on Wednesday", "2026-12-09", "day"),  # said on one: the next
    ("next Monday", "2026-12-07", "day"), ("this weekend", "2026-12-05", "day"), ("next weekend", "2026-12-12", "day"),
    ("tonight", "2026-12-02", "day"), ("next week", "2026-12-07", "week"), ("next month", "2027-01-01", "month"),
    ("in two weeks", "2026-12-16", "day"), ("in 3 days", "2026-12-05", "day"), ("on the 12th", "2026-12-12", "day"),
    ("on the 1st", "2027-01-01", "day"),  # this month's has passed
    ("on 3 March", "2027-03-03", "day"), ("December 25th", "2026-12-25", "day"), ("in March", "2027-03-01", "month"),
    ("in December", "2026-12-01", "month"), ("on 3 March 2027", "2027-03-03", "day"),
    # holidays: the next one
    ("we're going to Rome for Christmas", "2026-12-25", "day"), ("on new year's eve", "2026-12-31", "day"),
    ("for New Year's", "2027-01-01", "day"), ("over Easter", "2027-03-28", "day"),  # Easter 2027 is 28 March
    ("at Thanksgiving", "2027-11-25", "day"), ("for Valentine's day", "2027-02-14", "day"),
])
def test_a_plan_says_when_it_will_happen(clause: str, day: str, unit: str) -> None:
    found = upcoming(clause, WEDNESDAY)
    assert found is not None and (found.at.date().isoformat(), found.unit) == (day, unit)


@pytest.mark.parametrize("clause", ["yesterday", "last Friday", "on the past Monday", "in March 2025",
                                    "on 1 January 2026", "I have an exam", "in 2030 or so", "the Christmas party",
                                    "for christmas shopping", "Easter eggs"])
def test_no_plan_day_without_a_time_to_come(clause: str) -> None:
    assert upcoming(clause, WEDNESDAY) is None


@pytest.mark.parametrize(("said", "easter", "thanksgiving"), [
    ("2024-01-10", "2024-03-31", "2024-11-28"), ("2025-01-10", "2025-04-20", "2025-11-27"),
    ("2026-01-10", "2026-04-05", "2026-11-26"), ("2026-11-27", "2027-03-28", "2027-11-25"),
])
def test_the_moving_holidays_fall_on_their_days(said: str, easter: str, thanksgiving: str) -> None:
    at = datetime.fromisoformat(said).replace(tzinfo=UTC)
    found = upcoming("for Easter", at), upcoming("on Thanksgiving", at)
    assert [f.at.date().isoformat() if f else None for f in found] == [easter, thanksgiving]


def test_plans_and_starts_are_read_in_the_speakers_own_day() -> None:
    # 23:30 UTC on Wednesday 2 Dec is 08:30 on Thursday 3 Dec in Tokyo and 15:30 on Wednesday in California
    said = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
    tokyo, la = said.astimezone(ZoneInfo("Asia/Tokyo")), said.astimezone(ZoneInfo("America/Los_Angeles"))
    # (when, tomorrow, "on Thursday" (said on one in Tokyo: the next), yesterday), days of December
    for at, tomorrow, thursday, yesterday in ((said, 3, 3, 1), (tokyo, 4, 10, 2), (la, 3, 3, 1)):
        plan = upcoming("my interview is tomorrow", at)
        assert plan is not None and plan.at == datetime(2026, 12, tomorrow, tzinfo=at.tzinfo)  # that zone's midnight
        party = upcoming("the party is on Thursday", at)
        assert party is not None and party.at == datetime(2026, 12, thursday, tzinfo=at.tzinfo)
        start = began("I moved here yesterday", at)
        assert start is not None and start.at == datetime(2026, 12, yesterday, tzinfo=at.tzinfo)
    month = began("I started at the bakery last month", datetime(2026, 12, 1, 2, tzinfo=UTC).astimezone(
        ZoneInfo("America/Los_Angeles")))  # still 30 November there: last month is October
    assert month is not None and (month.at.month, month.unit) == (10, "month")
    # "in two weeks" across Berlin's clock change lands on a midnight there, not at 23:00 or 01:00
    spring = upcoming("the exam is in two weeks", datetime(2026, 3, 20, 12, tzinfo=ZoneInfo("Europe/Berlin")))
    assert spring is not None and spring.at.astimezone(UTC) == datetime(2026, 4, 2, 22, tzinfo=UTC)
