"""Time named in a query, as a date window: "in July 2023", "on 29 Dec 2023", "last week".

``window(query, now, zone)`` returns the half-open interval ``[start, end)`` the
query points at, or None. Absolute dates win over relative ones; relative
expressions are read against ``now`` (the time of asking). Days begin at midnight
in ``zone``, the asker's time zone (UTC unless they set one): for a user in
California, "yesterday" asked at 8 pm is their yesterday, not UTC's. Only English
phrasings are recognised; anything else simply yields no window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

_MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
# A month's name or its abbreviation, without a group (``month_number`` reads it).
MONTH_WORDS = (r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
               r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?")
_MONTH = rf"({MONTH_WORDS})\.?"
_YEAR = r"((?:19|20)\d\d)"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_DAY_MONTH_YEAR = re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}\b", re.I)
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+{_YEAR}\b", re.I)
_NUMERIC = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b|\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b")
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\s+(?:of\s+)?{_YEAR}\b", re.I)
_DAY_MONTH = re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}\b|\b{_MONTH}\s+{_DAY}\b", re.I)
# A month alone, after a word that makes it a time: "in March", "back in June", "during December"
_MONTH_ONLY = re.compile(rf"\b(?:(?:back )?in|during|throughout|over|early|late|mid-?|last)\s+(?:the month of\s+)?"
                         rf"({MONTH_WORDS})\b(?!\.?\s*\d)", re.I)
_YEAR_ONLY = re.compile(rf"\b(?:in|during|of|since)\s+{_YEAR}\b", re.I)
_AGO = re.compile(r"\b(\d+|a|an|one|two|three|four|five|six)\s+(day|week|month|year)s?\s+ago\b", re.I)
_LAST = re.compile(r"\b(yesterday|today|this morning|tonight|last night|(?:last|this|past)\s+"
                   r"(?:week|month|year|weekend|few days))\b", re.I)
_COUNTS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    phrase: str  # the words of the query that named it


def month_number(name: str) -> int:
    """1-12 for a name ``MONTH_WORDS`` matches ("Sept", "march")."""
    return _MONTHS[name[:3].lower()]


def _day(year: int, month: int, day: int, phrase: str, zone: tzinfo) -> Window | None:
    try:
        start = datetime(year, month, day, tzinfo=zone)
    except ValueError:
        return None
    return Window(start, start + timedelta(days=1), phrase)


def _month_window(year: int, month: int, phrase: str, zone: tzinfo) -> Window:
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
    return Window(start, end, phrase)


def _absolute(query: str, now: datetime, zone: tzinfo) -> Window | None:
    if m := _DAY_MONTH_YEAR.search(query):
        return _day(int(m.group(3)), month_number(m.group(2)), int(m.group(1)), m.group(0), zone)
    if m := _MONTH_DAY_YEAR.search(query):
        return _day(int(m.group(3)), month_number(m.group(1)), int(m.group(2)), m.group(0), zone)
    if m := _NUMERIC.search(query):
        if m.group(1):
            return _day(int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(0), zone)
        return _day(int(m.group(6)), int(m.group(5)), int(m.group(4)), m.group(0), zone)  # day.month.year
    if m := _MONTH_YEAR.search(query):
        return _month_window(int(m.group(2)), month_number(m.group(1)), m.group(0), zone)
    if m := _DAY_MONTH.search(query):
        day, month = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        year = now.year if (int(month_number(month)), int(day)) <= (now.month, now.day) else now.year - 1
        return _day(year, month_number(month), int(day), m.group(0), zone)
    if m := _MONTH_ONLY.search(query):  # the latest such month up to the time of asking
        month = month_number(m.group(1))
        latest = month < now.month or (month == now.month and not m.group(0).lower().startswith("last"))
        return _month_window(now.year if latest else now.year - 1, month, m.group(0), zone)
    if m := _YEAR_ONLY.search(query):
        year = int(m.group(1))
        return Window(datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone), m.group(0))
    return None


def _relative(query: str, now: datetime, zone: tzinfo) -> Window | None:
    today = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if m := _AGO.search(query):
        n = _COUNTS.get(m.group(1).lower()) or int(m.group(1))
        days = _UNIT_DAYS[m.group(2).lower()]
        centre = today - timedelta(days=n * days)
        slack = timedelta(days=max(1, days // 2))
        return Window(centre - slack, centre + slack + timedelta(days=1), m.group(0))
    if m := _LAST.search(query):
        phrase = " ".join(m.group(1).lower().split())
        span = {"yesterday": (1, 0), "today": (0, -1), "this morning": (0, -1), "tonight": (0, -1),
                "last night": (1, 0), "last weekend": (9, 0), "this week": (7, -1), "past week": (7, -1),
                "last week": (14, 0), "this month": (31, -1), "past month": (31, -1), "last month": (62, 0),
                "this year": (366, -1), "past year": (366, -1), "last year": (731, 0),
                "past few days": (5, -1), "last few days": (5, -1)}.get(phrase)
        if span is None:
            return None
        back, until = span
        return Window(today - timedelta(days=back), today + timedelta(days=-until if until >= 0 else 1), m.group(0))
    return None


def window(query: str, now: datetime, zone: tzinfo = UTC) -> Window | None:
    """The date window ``query`` names, or None (see the module docstring)."""
    local = now.astimezone(zone)  # "in March" and "on the 5th" are read against the asker's date
    return _absolute(query, local, zone) or _relative(query, local, zone)


# ---- when a self-statement says its fact began ------------------------------------------------

@dataclass(frozen=True, slots=True)
class Began:
    """The start a statement gives its fact ("I moved here last month"), and how precisely:
    ``unit`` is "day", "month" or "year"."""

    at: datetime
    unit: str


_MONTH_ALONE = re.compile(rf"\b(?:since|in|back in|from|around)\s+{_MONTH}(?!\s*\d)", re.I)
_FOR = re.compile(r"\bfor (?:about |around |almost |nearly |over |the (?:past|last) )?(\d+|a|an|one|two|three|four"
                  r"|five|six|seven|eight|nine|ten) (day|week|month|year)s?\b", re.I)
_PERFECT = re.compile(r"(?:'ve|’ve|\bhave|'s|’s|\bhas) (?:been|lived|worked|had|owned)\b", re.I)
_COUNTS_MORE = {**_COUNTS, "seven": 7, "eight": 8, "nine": 9, "ten": 10}


def _back(today: datetime, n: int, unit: str) -> Began:
    if unit == "year":
        return Began(datetime(today.year - n, 1, 1, tzinfo=today.tzinfo), "year")
    if unit == "month":
        months = today.year * 12 + today.month - 1 - n
        return Began(datetime(months // 12, months % 12 + 1, 1, tzinfo=today.tzinfo), "month")
    return Began(today - timedelta(days=n * _UNIT_DAYS[unit]), "day")


def _midnight(now: datetime) -> datetime:
    """The start of ``now``'s day in its own time zone (UTC for a naive time)."""
    return (now if now.tzinfo else now.replace(tzinfo=UTC)).replace(hour=0, minute=0, second=0, microsecond=0)


def _began(clause: str, now: datetime) -> Began | None:
    today = _midnight(now)
    zone = today.tzinfo or UTC
    if m := _MONTH_YEAR.search(clause):
        if not (_DAY_MONTH_YEAR.search(clause) or _MONTH_DAY_YEAR.search(clause)):
            return Began(datetime(int(m.group(2)), month_number(m.group(1)), 1, tzinfo=zone), "month")
    if (w := _absolute(clause, now, zone)) is not None:
        span = w.end - w.start
        return Began(w.start, "day" if span <= timedelta(days=1) else "month" if span <= timedelta(days=31) else "year")
    if m := _MONTH_ALONE.search(clause):
        month = month_number(m.group(1))
        return Began(datetime(today.year - (month > today.month), month, 1, tzinfo=zone), "month")
    if m := _AGO.search(clause):
        return _back(today, _COUNTS.get(m.group(1).lower()) or int(m.group(1)), m.group(2).lower())
    if m := _LAST.search(clause):
        phrase = " ".join(m.group(1).lower().split())
        if phrase in ("today", "this morning", "tonight"):
            return Began(today, "day")
        if phrase in ("yesterday", "last night"):
            return Began(today - timedelta(days=1), "day")
        if phrase in ("last week", "last weekend"):
            return Began(today - timedelta(days=7), "day")
        if phrase in ("last month", "last year"):
            return _back(today, 1, phrase.split()[1])
        if phrase in ("this month", "this year"):
            return _back(today, 0, phrase.split()[1])
        return None
    if (m := _FOR.search(clause)) and _PERFECT.search(clause):
        n = _COUNTS_MORE.get(m.group(1).lower()) or int(m.group(1))
        return _back(today, n, m.group(2).lower())
    return None


def began(clause: str, now: datetime) -> Began | None:
    """When ``clause`` (one clause of a message said at ``now``) says its fact began: "since March",
    "in 2019", "last month", "two weeks ago", "for three years" (with "I've been ..."). None when it
    names no time, or one after ``now`` (a plan, not a fact). Days are ``now``'s own: give it in the
    speaker's time zone, and "yesterday" said late in the evening in California is their yesterday."""
    found = _began(clause, now)
    if found is None or found.at > now or found.at.year < now.year - 120:
        return None
    return found


# ---- when a plan the user tells of will happen -------------------------------------------------

_WEEKDAY_NAMES = ("mon", "tues", "wednes", "thurs", "fri", "satur", "sun")
_SOON = re.compile(r"\b(?:(?P<rel>tomorrow|tonight|today|later today|this (?:morning|afternoon|evening|weekend)|"
                   r"next (?:week|month|weekend))|(?P<which>on|this|next|this coming|coming) "
                   r"(?P<wd>mon|tues|wednes|thurs|fri|satur|sun)day|(?<!last )(?<!past )(?<!on )"
                   r"(?P<wd2>mon|tues|wednes|thurs|fri|satur|sun)day"
                   r"|in (?P<n>\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten) (?P<unit>day|week)s?"
                   r"|on the (?P<nth>\d{1,2})(?:st|nd|rd|th)\b(?!\s+(?:of\s+)?(?:" + MONTH_WORDS + r")))\b", re.I)


def _soon(clause: str, today: datetime) -> Began | None:
    m = _SOON.search(clause)
    if m is None:
        return None
    if rel := m.group("rel"):
        rel = " ".join(rel.lower().split())
        if rel == "tomorrow":
            return Began(today + timedelta(days=1), "day")
        if rel in ("this weekend", "next weekend"):
            ahead = (5 - today.weekday()) % 7 if today.weekday() < 5 else 0  # Saturday, or today at the weekend
            return Began(today + timedelta(days=ahead + 7 * (rel == "next weekend")), "day")
        if rel == "next week":
            return Began(today + timedelta(days=7 - today.weekday()), "week")  # its Monday
        if rel == "next month":
            return Began(datetime(today.year + (today.month == 12), today.month % 12 + 1, 1, tzinfo=today.tzinfo),
                         "month")
        return Began(today, "day")  # today, tonight, this evening
    if wd := m.group("wd") or m.group("wd2"):
        ahead = (_WEEKDAY_NAMES.index(wd.lower()) - today.weekday()) % 7 or 7  # "on Friday" said on a Friday: next
        return Began(today + timedelta(days=ahead), "day")
    if n := m.group("n"):
        count = _COUNTS_MORE.get(n.lower()) or int(n)
        return Began(today + timedelta(days=count * _UNIT_DAYS[m.group("unit").lower()]), "day")
    day = int(m.group("nth"))  # "on the 12th": this month's, or next month's once it has passed
    year, month = (today.year, today.month) if day >= today.day else (
        today.year + (today.month == 12), today.month % 12 + 1)
    try:
        return Began(datetime(year, month, day, tzinfo=today.tzinfo), "day")
    except ValueError:
        return None


# Holidays a plan is named by ("we're going to Rome for Christmas"): fixed days, Easter Sunday (Western) and
# Thanksgiving (the US's fourth Thursday of November). Only as a time: "for", "on", "over", "at", "this", "next".
_HOLIDAY = re.compile(r"\b(?:for|on|over|at|this|next|until|till|by|before|after|around) (?:the )?"
                      r"(?P<h>christmas eve|christmas|xmas|new year'?s eve|nye|new year'?s(?: day)?|halloween|"
                      r"valentine'?s(?: day)?|easter|thanksgiving)\b(?!['’]| (?:party|parties|dinner|lunch|market|"
                      r"tree|present|gift|card|movie|song|sweater|jumper|lights|shopping|break|holidays?))", re.I)


def _easter(year: int) -> tuple[int, int]:
    """Western Easter Sunday (month, day): the anonymous Gregorian computus."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return month, day + 1


def _holiday(name: str, today: datetime) -> Began:
    """The next day (from ``today``) of a holiday ``_HOLIDAY`` names."""
    key = name.lower().replace("'", "")
    for year in (today.year, today.year + 1):
        if key.startswith("easter"):
            month, day = _easter(year)
        elif key == "thanksgiving":
            first = datetime(year, 11, 1).weekday()
            month, day = 11, 1 + (3 - first) % 7 + 21
        else:
            month, day = {"christmas eve": (12, 24), "christmas": (12, 25), "xmas": (12, 25), "new years eve": (12, 31),
                          "nye": (12, 31), "halloween": (10, 31)}.get(key, (2, 14) if key.startswith("valentine")
                                                                          else (1, 1))
        at = datetime(year, month, day, tzinfo=today.tzinfo)
        if at >= today:
            return Began(at, "day")
    return Began(datetime(today.year + 1, 1, 1, tzinfo=today.tzinfo), "day")  # not reached: every holiday recurs


def upcoming(clause: str, now: datetime) -> Began | None:
    """The day (or week, month) a plan in ``clause``, said at ``now``, will happen: "tomorrow", "on
    Friday", "next week", "in two weeks", "on the 12th", "on 3 March" (the next one), "on 3 March 2027".
    None when the clause names no time, or one already past. Days begin at midnight in ``now``'s own
    time zone, so "tomorrow" said at 11 pm in Tokyo is the next day there."""
    today = _midnight(now)
    zone = today.tzinfo or UTC
    found: Began | None = None
    if (m := _DAY_MONTH.search(clause)) and not (_DAY_MONTH_YEAR.search(clause) or _MONTH_DAY_YEAR.search(clause)):
        day, month = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        for year in (today.year, today.year + 1):  # the next such day
            try:
                at = datetime(year, month_number(month), int(day), tzinfo=zone)
            except ValueError:
                return None
            if at >= today:
                found = Began(at, "day")
                break
    elif m := _MONTH_ONLY.search(clause):  # "in March": the next March, or this month
        month = month_number(m.group(1))
        found = Began(datetime(today.year + (month < today.month), month, 1, tzinfo=zone), "month")
    elif (w := _absolute(clause, today, zone)) is not None and w.end - w.start <= timedelta(days=31):
        span = w.end - w.start
        found = Began(w.start, "day" if span <= timedelta(days=1) else "month")
    else:
        found = _soon(clause, today)
        if found is None and (h := _HOLIDAY.search(clause)):  # "for Christmas"
            found = _holiday(h.group("h"), today)
    # a week or month that has begun is still to come ("next week" said on a Monday, "in December" in December)
    if found is None or found.at < today - timedelta(days={"week": 6, "month": 30}.get(found.unit, 0)) \
            or found.at > today + timedelta(days=3 * 366):
        return None
    return found
