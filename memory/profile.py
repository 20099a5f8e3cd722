"""The user's profile: a few lines derived from current typed facts and saved facts.

``build_profile`` turns the graph's facts (``TypedFact``), the facts saved with
``/remember`` and the user's corrections into ``ProfileLine``s, each with a
stable key ("name", "home", "people" ...) the user can remove or replace.
``Profile.render`` packs them into a small fixed token budget for every
context. A correction applies while the line still reads as it did when it
was corrected; once the facts behind a line change, the line is computed afresh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo

from memory.models import STUDENT, TypedFact
from memory.tiers.ledger import Fact
from memory.tokens import count_tokens, truncate_tokens

HEADER = "User profile:"
PROFILE_TOKENS = 80
# What a diet already says it leaves out: a vegetarian's "avoids meat" would only repeat it
_MEATS = frozenset({"meat", "red meat", "pork", "beef", "lamb", "chicken"})
_IMPLIED = {"vegetarian": _MEATS | {"fish", "seafood", "shellfish"}, "pescatarian": _MEATS,
            "pescetarian": _MEATS, "vegan": _MEATS | {"fish", "seafood", "shellfish", "dairy", "eggs",
                                                       "animal products"}}
_PEOPLE = ("PARTNER_OF", "SIBLING_OF", "PARENT_OF", "CHILD_OF", "RELATIVE_OF", "FRIEND_OF")
# line key -> heading, in the order lines are shown (and kept when the budget is short)
LINES = {"name": "Name", "called": "Likes to be called", "pronouns": "Pronouns", "home": "Lives in", "work": "Work",
         "plans": "Plans", "allergies": "Allergic to", "health": "Health", "diet": "Diet", "birthday": "Birthday",
         "age": "Age", "origin": "From", "languages": "Speaks", "relationship": "Relationship", "people": "People",
         "loss": "Passed away",
         "pets": "Pets", "likes": "Likes", "dislikes": "Dislikes", "instructions": "Instructions"}
# Lines the context packs in a section of their own, ranked by the query, not in the profile's budget
OWN_SECTION = frozenset({"instructions"})


@dataclass(frozen=True, slots=True)
class ProfileLine:
    key: str
    text: str
    corrected: bool = False
    items: tuple[str, ...] = ()  # the line's parts where the context takes them one by one (instructions)


@dataclass(frozen=True, slots=True)
class Profile:
    """One user's profile in one scope; ``lines`` are derived, ``saved`` are the /remember facts."""

    user_id: str
    guild_id: str | None
    lines: tuple[ProfileLine, ...] = ()
    saved: tuple[Fact, ...] = field(default_factory=tuple)

    def line(self, key: str) -> ProfileLine | None:
        return next((ln for ln in self.lines if ln.key == key), None)

    def render(self, max_tokens: int = PROFILE_TOKENS, *, include_saved: bool = False) -> str:
        """The profile as text within ``max_tokens`` (lines in priority order; "" when empty)."""
        lines = [f"- {ln.text}" for ln in self.lines if ln.key not in OWN_SECTION]
        if include_saved:
            lines += [f"- Saved: {f.text}" for f in self.saved]
        if not lines or max_tokens <= count_tokens(HEADER) + 2:
            return ""
        out = HEADER
        for ln in lines:
            candidate = out + "\n" + ln
            if count_tokens(candidate) > max_tokens:
                room = max_tokens - count_tokens(out) - 1
                if room >= 8:
                    out += "\n" + truncate_tokens(ln, room)
                break
            out = candidate
        return "" if out == HEADER else out

    def to_json(self) -> dict[str, object]:
        return {"lines": [{"key": ln.key, "text": ln.text, "corrected": ln.corrected} for ln in self.lines],
                "saved": [{"id": f.id, "text": f.text} for f in self.saved]}


def _student(job: str) -> bool:
    """Whether a job is a student's ("comp sci student"): its line reads as one, and graduating ends it."""
    return job.lower().endswith(STUDENT)


def _join(items: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(items))


def _clauses(parts: Sequence[str]) -> str:
    """Clauses of one line, the first capitalised: "Allergic to: peanuts; intolerant to lactose"."""
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]


def _grouped(facts: Sequence[TypedFact]) -> str:
    """Names grouped by their relation, compactly: "friend Ben, Jess; sister Maria; Tom"."""
    groups: dict[str, list[str]] = {}
    for f in facts:
        groups.setdefault(f.detail, []).append(f.label)
    return "; ".join(f"{detail} {_join(names)}".strip() for detail, names in groups.items())


def _since(fact: TypedFact) -> str:
    """The fact's start as precisely as it is known: "2019", "Mar 2026" or "2026-03-14"."""
    return fact.valid_from.strftime({"year": "%Y", "month": "%b %Y"}.get(fact.from_unit, "%Y-%m-%d"))


def _when(fact: TypedFact) -> str:
    """A plan's day as people read it: "Fri 4 Dec 2026", "week of 7 Dec 2026", "Mar 2027"."""
    at = fact.valid_from
    if fact.from_unit == "month":
        return f"{at:%b %Y}"
    return ("week of " if fact.from_unit == "week" else f"{at:%a} ") + f"{at.day} {at:%b %Y}"


def _in_zone(fact: TypedFact, zone: tzinfo) -> TypedFact:
    """``fact`` with its times in ``zone``. A start the user named ("since March", "on Friday") is a
    calendar day: it shows as the day whose midnight is nearest, so a day stored at midnight UTC
    (before days were read in the user's zone) keeps its date west of Greenwich too."""
    start = fact.valid_from.astimezone(zone)
    if fact.from_unit:
        start = (start + timedelta(hours=12)).replace(hour=0, minute=0, second=0, microsecond=0)
    end = None if fact.valid_to is None else fact.valid_to.astimezone(zone)
    return replace(fact, valid_from=start, valid_to=end)


def derive_lines(facts: Sequence[TypedFact], now: datetime | None = None, zone: tzinfo = UTC) -> dict[str, str]:
    """Line key -> text from typed facts: current values, with the previous home and work kept.
    Plans are those to come and those of the last week (``now``, default the present), so the model
    can ask how one went. Dates are shown in ``zone``, the user's time zone."""
    now = now or datetime.now(UTC)
    if zone is not UTC:
        facts = [_in_zone(f, zone) for f in facts]
    current = [f for f in facts if f.current]
    closed = sorted((f for f in facts if not f.current), key=lambda f: f.valid_to or f.valid_from, reverse=True)

    def latest(predicate: str) -> TypedFact | None:
        found = [f for f in current if f.predicate == predicate]
        return max(found, key=lambda f: f.valid_from) if found else None

    lines: dict[str, str] = {}
    if (name := latest("NAME")) is not None:
        lines["name"] = f"Name: {name.label}"
    if (called := latest("CALLED")) is not None:
        lines["called"] = f"Likes to be called: {called.label}"
    if (pronouns := latest("PRONOUNS")) is not None:
        lines["pronouns"] = f"Pronouns: {pronouns.label}"
    home = latest("LIVES_IN")
    before = next((f for f in closed if f.predicate == "LIVES_IN"), None)
    if home is not None or before is not None:
        # "since" only when the user said when it began; else the day we heard it ("I live in Porto" says
        # nothing of how long, and "since" that day would tell the model a move that never happened)
        text = (f"Lives in {home.label} ({'since' if home.from_unit else 'as of'} {_since(home)}" if home
                else "Home: unknown now (")
        if before is not None and before.valid_to is not None:
            # "until" would repeat "since", or say no more than it (a past home we heard of after this one)
            same = home is not None and before.valid_to >= home.valid_from
            text += ("; " if home else "") + f"before: {before.label}" + (
                "" if same else f" until {before.valid_to:%Y-%m-%d}")
        lines["home"] = text + ")"
    origins = sorted((f for f in current if f.predicate == "FROM"), key=lambda f: f.valid_from)
    said = [f"{lead} {_join([f.label for f in origins if f.detail == detail])}"
            for detail, lead in (("", "from"), ("born", "born in"), ("grew up", "grew up in"))
            if any(f.detail == detail for f in origins)]
    if said:  # "From Brazil; born in Recife; grew up in Ohio"
        lines["origin"] = _clauses(said)
    job, employer = latest("WORKS_AS"), latest("WORKS_AT")
    if job or employer:
        if job is not None and _student(job.label):  # "Comp sci student at University of Leeds"
            text = job.label[:1].upper() + job.label[1:] + (f" at {employer.label}" if employer else "")
        else:
            text = "Works" + (f" as {job.label}" if job else "") + (f" at {employer.label}" if employer else "")
        # "Works as nurse in Leeds"; a move since the job's place was told leaves the place in doubt ("we moved
        # to Bristol" after "I'm a nurse in London"), so it is left out until the user says it again
        moved = job is not None and home is not None and home.label not in job.detail \
            and (home.told or home.valid_from) > (job.told or job.valid_from)
        if job is not None and job.detail.startswith("in ") and not moved:
            text += f" {job.detail}"
        if dated := [f for f in (job, employer) if f is not None and f.from_unit]:  # the user said since when
            text += f" (since {_since(min(dated, key=lambda f: f.valid_from))})"
        old = next((f for f in closed if f.predicate == "WORKS_AS"), None)
        if old is not None and old.valid_to is not None:
            began = min(f.valid_from for f in (job, employer) if f is not None)
            text += f"; before: {old.label}" + (f" until {old.valid_to:%Y-%m-%d}" if old.valid_to < began else "")
        lines["work"] = text
    elif ended := [f for f in closed if f.predicate in ("WORKS_AS", "WORKS_AT") and f.valid_to is not None]:
        # "I quit my job": no job now, and the last one is worth knowing
        last = ended[0]
        together = sorted((f for f in ended if f.valid_to == last.valid_to), key=lambda f: f.predicate)
        job = next((f for f in together if f.predicate == "WORKS_AS"), None)
        if job is not None and _student(job.label):
            school = "".join(f" at {f.label}" for f in together if f.predicate == "WORKS_AT")  # "I graduated"
            lines["work"] = f"Former {job.label}{school} (until {last.valid_to:%Y-%m-%d})"
        else:
            was = " ".join(f"{'as' if f.predicate == 'WORKS_AS' else 'at'} {f.label}" for f in together)
            lines["work"] = f"No job now (before: {was} until {last.valid_to:%Y-%m-%d})"
    plans = sorted((f for f in current if f.predicate == "PLANS" and f.valid_from >= now - timedelta(days=7)),
                   key=lambda f: f.valid_from)[:5]
    if plans:
        lines["plans"] = "Plans: " + "; ".join(f"{f.label} ({_when(f)})" for f in plans)
    allergic = _join([f.label for f in current if f.predicate == "ALLERGIC_TO" and f.detail != "intolerant"])
    intolerant = _join([f.label for f in current if f.predicate == "ALLERGIC_TO" and f.detail == "intolerant"])
    if allergic or intolerant:  # "Allergic to: peanuts; intolerant to lactose"
        lines["allergies"] = _clauses([part for part in (allergic and f"Allergic to: {allergic}",
                                                         intolerant and f"intolerant to {intolerant}") if part])
    if conditions := _join([f.label for f in current if f.predicate == "HAS_CONDITION"]):
        lines["health"] = f"Health: {conditions}"  # "Health: type 1 diabetes, migraines"
    diet = latest("DIET")
    implied = _IMPLIED.get(diet.label, frozenset()) if diet is not None else frozenset()
    avoids = sorted((f for f in current if f.predicate == "AVOIDS" and f.label not in implied),
                    key=lambda f: f.valid_from)
    if diet is not None or avoids:  # "Diet: vegetarian; avoids alcohol (since 2019), caffeine"
        avoided = _join([f"{f.label} (since {_since(f)})" if f.from_unit else f.label for f in avoids])
        lines["diet"] = "Diet: " + "; ".join(filter(None, (diet.label if diet else "",
                                                            avoided and f"avoids {avoided}")))
    if (born := latest("BIRTHDAY")) is not None:
        lines["birthday"] = f"Birthday: {born.label}"
    if (age := latest("AGE")) is not None:  # a year on, the model can tell the age has moved
        lines["age"] = f"Age: {age.label} (as of {_since(age)})"
    speaks = [f for f in current if f.predicate == "SPEAKS"]
    if speaks:
        known = _join([f"{f.label} (native)" if f.detail == "native" else f.label
                       for f in speaks if f.detail != "learning"])
        learning = _join([f.label for f in speaks if f.detail == "learning"])
        lines["languages"] = "Speaks: " + "; ".join(filter(None, (known, learning and f"learning {learning}")))
    if (status := latest("RELATIONSHIP")) is not None:  # "Married (since Jun 2019)", "In a relationship"
        lines["relationship"] = status.label[:1].upper() + status.label[1:] + (
            f" (since {_since(status)})" if status.from_unit else "")
    ages = {f.detail: f for f in sorted(current, key=lambda f: f.valid_from) if f.predicate == "AGE_OF"}  # by person

    def aged(person: TypedFact) -> TypedFact:
        """"Kavya (4)"; an age told over half a year ago says when ("Kavya (4 in Jan 2025)")."""
        age = next((ages[n] for n in (person.obj, *person.aliases) if n in ages), None)
        if age is None:
            return person
        told = age.label if now - age.valid_from <= timedelta(days=183) else f"{age.label} in {age.valid_from:%b %Y}"
        return replace(person, label=f"{person.label} ({told})")

    people = _grouped([aged(f) for p in _PEOPLE for f in current if f.predicate == p])
    if people:
        lines["people"] = "People: " + people
    if lost := sorted((f for f in current if f.predicate == "LOST"), key=lambda f: f.valid_from):
        def who(loss: TypedFact) -> str:
            """"grandma Rose"; "husband Marco" for "my husband passed away" when Marco was the husband it ended."""
            if loss.label.lower() != loss.detail:
                return f"{loss.detail} {loss.label}".strip()
            named = [f for f in closed if f.predicate in _PEOPLE and f.detail == loss.detail and f.valid_to
                     and abs(f.valid_to - loss.valid_from) < timedelta(days=1)]
            return f"{loss.detail} {named[0].label}" if len(named) == 1 else loss.detail

        # "Passed away: mother (2025); grandma Rose (Mar 2026)": when, if the user said
        lines["loss"] = "Passed away: " + "; ".join(who(f) + (f" ({_since(f)})" if f.from_unit else "") for f in lost)
    pets = _grouped([f for f in current if f.predicate == "HAS_PET"])
    if pets:
        lines["pets"] = "Pets: " + pets
    for key, predicate in (("likes", "LIKES"), ("dislikes", "DISLIKES")):
        values = [f.label for f in current if f.predicate == predicate][-6:]
        if values:
            lines[key] = f"{LINES[key]}: " + _join(values)
    if told := instructions(facts):
        lines["instructions"] = "Instructions: " + "; ".join(told)
    return lines


def instructions(facts: Sequence[TypedFact]) -> list[str]:
    """The user's standing instructions ("Always cite sources"), oldest first, each once."""
    told = sorted((f for f in facts if f.current and f.predicate == "INSTRUCTS"), key=lambda f: f.valid_from)
    return list(dict.fromkeys(f.label for f in told))


def build_profile(user_id: str, guild_id: str | None, facts: Sequence[TypedFact], saved: Sequence[Fact],
                  corrections: Mapping[str, tuple[str, str | None]], now: datetime | None = None,
                  zone: tzinfo = UTC) -> Profile:
    """The profile from typed facts, saved facts and corrections (key -> (line corrected, replacement)),
    its dates in ``zone``. A correction names the line as it read in UTC (``ProfileBook.correct``), so
    it holds whatever zone the user sets later."""
    derived = derive_lines(facts, now, zone)
    canonical = derived if zone is UTC else derive_lines(facts, now)
    out: list[ProfileLine] = []
    for key in [*LINES, *sorted(k for k in corrections if k not in LINES)]:
        text = derived.get(key)
        correction = corrections.get(key)
        if correction is not None and (text is None or canonical.get(key) == correction[0]):
            if correction[1] is not None:
                out.append(ProfileLine(key, correction[1], corrected=True, items=(correction[1],)))
            continue
        if text is not None:
            out.append(ProfileLine(key, text, items=tuple(instructions(facts)) if key == "instructions" else ()))
    return Profile(user_id, guild_id, tuple(out), tuple(saved))
