"""Time named by what the user said happened: "before I moved", "since I got my dog", "when I
lived in Leeds".

``anchor(query)`` reads such a phrase (first person, English); ``resolve(anchor, facts, now)``
turns it into a date window from the user's typed facts: a move starts their current home
(``LIVES_IN``), a new job their ``WORKS_AS``/``WORKS_AT``, a pet its ``HAS_PET``, meeting someone
their ``PARTNER_OF``; quitting a job or breaking up ends the latest such fact. "before" gives
everything until then, "after"/"since" everything from then until now, "when I moved" the weeks
around it, and "when I lived in Leeds" that fact's whole period. A phrase whose fact we do not
know gives no window, so the query is answered as if it named no time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from memory.models import TypedFact
from memory.timeq import Window

_PETS = (r"dog|cat|puppy|kitten|parrot|rabbit|bunny|hamster|horse|turtle|tortoise|fish|bird|snake|lizard|"
         r"guinea pig|ferret|gecko")
_PARTNERS = r"wife|husband|partner|girlfriend|boyfriend|fiance|fiancee|fiancé"
_NAME = r"(?P<obj>(?-i:[^\W\d_a-z][\w'’\-]*(?: [^\W\d_a-z][\w'’\-]*){0,2}))"
# "when did I move" reads as "when I moved": the verbs below take both forms
_REL = r"\b(?P<rel>before|after|since|until|till|when|while|once) (?:did )?"
_JOB = r"(?P<obj>[a-z][a-z\- ]{1,30}?)(?=\s*(?:[.,!?;:]|\band\b|\bor\b|\bbut\b|\bat\b|\bfor\b|$))"

# (pattern, predicate, what the event did to the fact: "start" or "end")
_EVENTS: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(_REL + r"i (?:moved?|relocated?)(?: (?:to|into) " + _NAME
                + r"| here| there| back| house| away)?", re.I), "LIVES_IN", "start"),
    (re.compile(_REL + r"i (?:start(?:ed)?|g[eo]t|t[ao]ke?|took|land(?:ed)?) (?:my|the|a|this|that) "
                r"(?:new |current |first )?(?:job|position|role)(?: (?:at|with) " + _NAME + ")?", re.I),
     "WORK", "start"),
    (re.compile(_REL + r"i (?:bec[oa]me|start(?:ed)? working as|start(?:ed)? as) an? " + _JOB, re.I),
     "WORKS_AS", "start"),
    (re.compile(_REL + r"i (?:start(?:ed)? working|start(?:ed)?) (?:at|for) " + _NAME, re.I), "WORKS_AT", "start"),
    (re.compile(_REL + r"i (?:quit|left|leave|lose|lost) my (?:old |last |previous )?job|"
                + _REL.replace("rel", "rel2") + r"i (?:got|get|was) (?:laid off|fired|made redundant)|"
                + _REL.replace("rel", "rel3") + r"i retired?", re.I), "WORK", "end"),
    (re.compile(_REL + r"(?:i|we) (?:g[eo]t|adopt(?:ed)?|rescued?) (?:my|our|the|a|an) (?:new )?(?:\w+ )?"
                r"(?P<kind>" + _PETS + r")\b", re.I), "HAS_PET", "start"),
    (re.compile(_REL + r"(?:i|we) (?:g[eo]t|adopt(?:ed)?|rescued?) " + _NAME, re.I), "HAS_PET", "start"),
    (re.compile(_REL + r"i (?:met|meet|start(?:ed)? (?:dating|seeing)|g[eo]t together with|marr(?:y|ied))"
                r"(?: my (?:" + _PARTNERS + r"))?(?: " + _NAME + r")?", re.I), "PARTNER_OF", "start"),
    (re.compile(_REL + r"(?:we|i) (?:broke up|break up|split up|separated?|g[eo]t divorced)", re.I),
     "PARTNER_OF", "end"),
]
# A fact's own period: "when I lived in Leeds", "while I was working at Arup", "back when I was a nurse"
_PERIODS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(?:when|while) i (?:lived|was living|still lived) in " + _NAME, re.I), "LIVES_IN"),
    (re.compile(r"\b(?:when|while) i (?:worked|was working|still worked) (?:at|for) " + _NAME, re.I), "WORKS_AT"),
    (re.compile(r"\b(?:when|while) i (?:was|still was|worked as|was working as) an? (?!(?:kid|child|teen|teenager|"
                r"baby|boy|girl|toddler|little|young|lot|bit)\b)" + _JOB, re.I), "WORKS_AS"),
]
_ANY = re.compile(r"\b(?:before|after|since|until|till|when|while|once) (?:did )?(?:i|we)\b", re.I)
_KINDS = {"puppy": "dog", "kitten": "cat", "bunny": "rabbit", "tortoise": "turtle"}  # a puppy is a dog
_AROUND_BEFORE = timedelta(days=7)
_AROUND_AFTER = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Anchor:
    """An event or period the query names, still to be found among the user's facts."""

    relation: str  # "before", "after", "around" (the event's time) or "during" (the fact's period)
    predicate: str  # a typed-fact predicate, or "WORK" for WORKS_AS or WORKS_AT
    edge: str  # "start" or "end": which end of the fact the event is
    obj: str  # the name or phrase the query gives ("" for "before I moved")
    kind: str  # a pet's kind ("dog"), matched against the fact's detail
    phrase: str  # the words of the query that named it


def _relation(word: str) -> str:
    word = word.lower()
    if word in ("before", "until", "till"):
        return "before"
    if word in ("after", "since", "once"):
        return "after"
    return "around"


def anchor(query: str) -> Anchor | None:
    """The event or period ``query`` names, or None (see the module docstring)."""
    if not _ANY.search(query):  # every phrase below starts so: most queries stop here, in a few us
        return None
    for pattern, predicate in _PERIODS:
        if m := pattern.search(query):
            return Anchor("during", predicate, "start", m.group("obj").strip(), "", m.group(0))
    for pattern, predicate, edge in _EVENTS:
        if m := pattern.search(query):
            groups = m.groupdict()
            rel = next(groups[g] for g in ("rel", "rel2", "rel3") if groups.get(g))
            return Anchor(_relation(rel), predicate, edge, (groups.get("obj") or "").strip(),
                          (groups.get("kind") or "").lower(), m.group(0))
    return None


def _key(text: str) -> str:
    return " ".join(text.replace("’", "'").removesuffix("'s").lower().split())


def _names(f: TypedFact) -> set[str]:
    return {f.obj, _key(f.label), *f.aliases}


def _matches(f: TypedFact, a: Anchor) -> bool:
    if a.predicate == "WORK":
        if f.predicate not in ("WORKS_AS", "WORKS_AT"):
            return False
    elif f.predicate != a.predicate:
        return False
    if a.kind and _KINDS.get(f.detail.lower(), f.detail.lower()) != _KINDS.get(a.kind, a.kind):
        return False
    if not a.obj:
        return True
    want = _key(a.obj)
    return any(n == want or n.startswith(want + " ") or want.startswith(n + " ") for n in _names(f))


def _event(a: Anchor, facts: Sequence[TypedFact], now: datetime) -> tuple[TypedFact, datetime] | None:
    """The fact the event started or ended, and when."""
    found = [f for f in facts if _matches(f, a)]
    if a.edge == "end" and not a.obj:
        found = [f for f in found if f.valid_to is not None]  # what was quit is over
    if not found:
        return None
    if a.edge == "end":
        fact = max(found, key=lambda f: f.valid_to or now)
        return fact, fact.valid_to or now
    fact = max(found, key=lambda f: f.valid_from)  # the latest move, the newest job
    return fact, fact.valid_from


def resolve(a: Anchor, facts: Sequence[TypedFact], now: datetime) -> Window | None:
    """The window ``a`` names among ``facts`` (the user's typed facts, current and closed), or None
    when none of them is the event it names."""
    until_now = now.astimezone(UTC) + timedelta(days=1)
    found = _event(a, facts, until_now)
    if found is None:
        return None
    fact, at = found
    if a.relation == "during":
        return Window(fact.valid_from, fact.valid_to or until_now, a.phrase)
    if a.relation == "before":
        return Window(datetime(1970, 1, 1, tzinfo=UTC), at, a.phrase)
    if a.relation == "after":
        return Window(at, until_now, a.phrase)
    return Window(at - _AROUND_BEFORE, at + _AROUND_AFTER, a.phrase)


def stated_in(a: Anchor, facts: Sequence[TypedFact], now: datetime) -> tuple[str, ...]:
    """For "when did I move?": the exchanges where the user said it (the fact's support, or for an
    ending the support of the ``ENDED`` record that closed it). They may lie outside the window
    when the user named an earlier time ("I moved last month"). Empty for other relations."""
    if a.relation != "around":
        return ()
    found = _event(a, facts, now.astimezone(UTC) + timedelta(days=1))
    if found is None:
        return ()
    fact, at = found
    if a.edge == "start":
        return fact.support
    closed = {"WORKS_AS", "WORKS_AT"} if a.predicate == "WORK" else {a.predicate}
    return tuple(x for f in facts if f.predicate == "ENDED" and f.detail in closed
                 and abs((f.valid_from - at).total_seconds()) < 1 for x in f.support)
