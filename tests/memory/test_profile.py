"""The profile's lines from typed facts, as pure functions (the graph's side is in test_understanding)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from memory.models import TypedFact
from memory.profile import derive_lines

NOW = datetime(2026, 12, 2, 9, tzinfo=UTC)


def fact(predicate: str, label: str, days_ago: int = 0, detail: str = "", *, unit: str = "",
         told_days_ago: int | None = None) -> TypedFact:
    at = NOW - timedelta(days=days_ago)
    told = None if told_days_ago is None else NOW - timedelta(days=told_days_ago)
    return TypedFact(f"{predicate}-{label}", predicate, label.lower(), label, detail, at, None, (), (), unit, told)


def test_the_diet_line_leaves_out_what_the_diet_already_says() -> None:
    vegetarian = [fact("DIET", "vegetarian"), fact("AVOIDS", "meat"), fact("AVOIDS", "fish"),
                  fact("AVOIDS", "alcohol", 400, unit="year")]
    assert derive_lines(vegetarian, NOW)["diet"] == "Diet: vegetarian; avoids alcohol (since 2025)"
    vegan = [fact("DIET", "vegan"), fact("AVOIDS", "eggs"), fact("AVOIDS", "dairy")]
    assert derive_lines(vegan, NOW)["diet"] == "Diet: vegan"
    no_longer = [fact("DIET", "no longer vegetarian"), fact("AVOIDS", "pork", 3), fact("AVOIDS", "coffee", 1)]
    assert derive_lines(no_longer, NOW)["diet"] == "Diet: no longer vegetarian; avoids pork, coffee"


def test_a_home_told_after_the_jobs_place_leaves_the_place_out() -> None:
    job = fact("WORKS_AS", "nurse", 30, "in London", told_days_ago=30)
    # the move is dated a month back, before the job was told, but it was told after: the place is in doubt
    moved = fact("LIVES_IN", "Bristol", 40, unit="month", told_days_ago=1)
    assert derive_lines([job, moved], NOW)["work"] == "Works as nurse"
    # a home told before the job, or the job's own city, leaves the place as said
    before = fact("LIVES_IN", "Bristol", 60, told_days_ago=60)
    assert derive_lines([job, before], NOW)["work"] == "Works as nurse in London"
    same = fact("LIVES_IN", "London", 1, told_days_ago=1)
    assert derive_lines([job, same], NOW)["work"] == "Works as nurse in London"
    # facts kept before the time told was stored go by their start
    old_job, old_home = fact("WORKS_AS", "nurse", 30, "in London"), fact("LIVES_IN", "Bristol", 2)
    assert derive_lines([old_job, old_home], NOW)["work"] == "Works as nurse"


def test_a_persons_age_follows_their_name_and_says_when_it_is_old() -> None:
    kavya, arjun = fact("CHILD_OF", "Kavya", 400, "daughter"), fact("CHILD_OF", "Arjun", 400, "son")
    ages = [replace(fact("AGE_OF", "kavya 4", 30, "kavya"), label="4"),  # as the rules state them: detail the person
            replace(fact("AGE_OF", "arjun 7", 400, "arjun"), label="7")]
    lines = derive_lines([kavya, arjun, *ages], NOW)
    assert lines["people"] == "People: daughter Kavya (4); son Arjun (7 in Oct 2025)"
