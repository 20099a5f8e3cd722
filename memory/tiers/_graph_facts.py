"""How new statements change a scope's typed facts: pure planning, no I/O, no Cypher.

``plan`` takes the facts a scope holds and the statements of newly ingested
exchanges (oldest first) and returns the writes that bring the facts up to
date; ``memory.tiers.graph`` runs them with the Cypher in ``_graph_cypher``.

Rules:
* a statement repeating a fact (same predicate and object, or an alias of it)
  adds its exchange to the fact's support;
* names of people and pets are resolved: "Mel" and "Melanie" under the same
  predicate are one fact when one name is a word-prefix of the other and only
  one fact fits; the shorter form is kept as an alias;
* a single-valued predicate (``LIVES_IN``, ``WORKS_AS`` ...) with a new object
  closes the current fact at the statement's time (``valid_to``, ``closed_by``)
  instead of overwriting it; a statement older than the current fact becomes a
  fact closed when the current one began;
* a statement that says when its fact began ("I moved here last month") starts the
  fact then, and a repeat with an earlier start moves the start back; whether it
  replaces the current fact still goes by when it was said (the newest word wins);
* opposite predicates (``LIKES`` / ``DISLIKES``) about one object close each other the same way;
* an ending ("my cat Miso died", "I quit my job", "I don't have a cat anymore": the cats only) closes
  the open facts it names at its time and is kept as an ``ENDED`` fact that closed them, supported
  by its exchange: forgetting that exchange deletes it and so reopens them. An ending of a fact we
  never heard of ("I moved here from Paris") keeps it as a past fact whose period is the moment it
  ended.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from memory.models import (
    ANY_OBJECT,
    DATED_AHEAD,
    ENDED,
    KEPT_ONLY_WHILE_OPEN,
    NAMED_BY_LAST_WORDS,
    ONE_PER_DETAIL,
    OPPOSITES,
    SINGLE_VALUED,
    STUDENT,
)

# Details that a repeat may raise, lowest first: "I'm learning Japanese", later "I speak Japanese".
_DETAIL_RANKS = {"SPEAKS": ("learning", "", "native")}
RESOLVED = frozenset({"NAME", "CALLED", "HAS_PET", "SIBLING_OF", "PARENT_OF", "CHILD_OF", "PARTNER_OF", "RELATIVE_OF",
                      "FRIEND_OF"})


@dataclass
class FactState:
    """One stored fact as the planner sees it."""

    fid: str
    predicate: str
    obj: str
    aliases: list[str]
    valid_from: float
    valid_to: float | None
    new: bool = False
    label: str = ""
    detail: str = ""
    closed_by: str | None = None
    from_unit: str = ""
    told: float | None = None  # when it was said; for a job, when its place was last said


@dataclass(frozen=True)
class Said:
    """One statement of a newly ingested exchange: said at ``ts`` (epoch seconds); ``start`` is
    when it says the fact began (epoch, at most ``ts``) with its precision ``unit``, if it says."""

    xid: str
    ts: float
    predicate: str
    obj: str
    label: str
    detail: str
    start: float | None = None
    unit: str = ""
    ended: bool = False


@dataclass
class Plan:
    """The writes for one scope: facts to create, facts to close, support edges, alias updates."""

    create: list[dict[str, Any]] = field(default_factory=list)
    close: list[dict[str, Any]] = field(default_factory=list)
    support: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)


def _names(f: FactState) -> set[str]:
    return {f.obj, *f.aliases}


def _prefix(a: str, b: str) -> bool:
    """Whether one name is a word-prefix of the other ("mel" / "melanie", "ana" / "ana lopez")."""
    short, long = sorted((a, b), key=len)
    return len(short) >= 3 and short != long and long.split()[0].startswith(short.split()[0]) \
        and long.startswith(short)


def _match(facts: list[FactState], predicate: str, obj: str) -> FactState | None:
    """The open fact of ``predicate`` that ``obj`` names (exactly, by alias, or by a unique prefix)."""
    same = [f for f in facts if f.predicate == predicate and f.valid_to is None]
    exact = [f for f in same if obj in _names(f)]
    if exact:
        return exact[0]
    if predicate in RESOLVED:
        near = [f for f in same if _prefix(obj, f.obj)]  # the full name only: "mel" must not bind "melvin"
        if len(near) == 1:
            return near[0]
    if predicate in NAMED_BY_LAST_WORDS:  # "my interview" is the "job interview" told of, when it is the only one
        near = [f for f in same if (f.obj + " ").endswith(" " + obj + " ") or (obj + " ").endswith(" " + f.obj + " ")]
        if len(near) == 1:
            return near[0]
    return None


def _words(text: str) -> set[str]:
    """The words of an instruction, a plural's "s" dropped ("emoji" meets "emojis")."""
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in re.findall(r"\w+", text.lower())}


def _displaced(facts: list[FactState], predicate: str, obj: str, detail: str) -> list[FactState]:
    """The open facts that a new fact of ``predicate`` about ``obj`` ends: the current value of a
    single-valued predicate, the opposite fact, and the open ending records it follows (so that
    forgetting "I quit my job" later reopens the old job only until the new one began)."""
    endings = [f for f in facts if f.predicate == ENDED and f.detail == predicate and f.valid_to is None
               and (predicate in SINGLE_VALUED or f.obj in (obj, ANY_OBJECT))]
    if predicate in SINGLE_VALUED:
        return [f for f in facts if f.predicate == predicate and f.valid_to is None] + endings
    if predicate in ONE_PER_DETAIL:  # one age per person: "mia 4" ends "mia 3"
        return [f for f in facts if f.predicate == predicate and f.valid_to is None and f.detail == detail] + endings
    opposite = OPPOSITES.get(predicate)
    return [f for f in facts if f.predicate == opposite and f.valid_to is None and obj in _names(f)] + endings


def _end(out: Plan, facts: list[FactState], st: Said, ukey: str, user_id: str, at: float) -> None:
    if st.predicate == "INSTRUCTS":  # taken back by what it was about: every open one with all its words
        words = _words(st.obj)
        targets = [f for f in facts if f.predicate == st.predicate and f.valid_to is None and words <= _words(f.obj)]
        if not targets:
            return  # nothing of the kind was asked: nothing to keep
    elif st.obj == ANY_OBJECT:  # whatever is current; with a detail, only of that kind ("my cat died")
        targets = [f for f in facts if f.predicate == st.predicate and f.valid_to is None
                   and (not st.detail or f.detail == st.detail)]
        if st.label == STUDENT and not any(  # current, or ended by this same "I graduated" (the school goes too)
                f.predicate == "WORKS_AS" and f.obj.endswith(STUDENT)
                and (f.valid_to is None or f.valid_to == max(f.valid_from, at)) for f in facts):
            return  # "I graduated in 2015" said by a nurse: no studies are current, nothing ends
    else:
        found = _match(facts, st.predicate, st.obj)
        targets = [found] if found is not None else []
        if not targets:  # "I moved here from Paris": a fact we did not know, already over
            if st.predicate not in KEPT_ONLY_WHILE_OPEN:  # "I quit smoking": no liking we knew, none to keep
                _past(out, facts, st, ukey, user_id, at)
            return
    if st.predicate not in DATED_AHEAD:  # a plan's start is its day to come: a plan called off ends whatever
        targets = [f for f in targets if f.valid_from <= st.ts]  # not a fact said after the ending
    if not targets:
        return
    record = FactState(uuid.uuid4().hex, ENDED, st.obj, [], at, None, new=True, label=st.label,
                       detail=st.predicate)
    for f in targets:
        f.valid_to, f.closed_by = max(f.valid_from, at), record.fid
        out.close.append({"fid": f.fid, "valid_to": f.valid_to, "closed_by": record.fid})
    facts.append(record)
    out.create.append({"fid": record.fid, "ukey": ukey, "user_id": user_id, "predicate": ENDED, "obj": st.obj,
                       "label": st.label, "detail": st.predicate, "valid_from": at, "from_unit": "",
                       "valid_to": None, "closed_by": None})
    out.support.append({"xid": st.xid, "fid": record.fid})


def _past(out: Plan, facts: list[FactState], st: Said, ukey: str, user_id: str, at: float) -> None:
    """Keep a fact that is over when we first hear of it: it ended at ``at``; when it began is not
    known, so its period is that one moment. Said again, it gains the exchange as support."""
    known = next((f for f in facts if f.predicate == st.predicate and st.obj in _names(f)), None)
    if known is None:
        known = FactState(uuid.uuid4().hex, st.predicate, st.obj, [], at, at, new=True, label=st.label,
                          detail=st.detail)
        facts.append(known)
        out.create.append({"fid": known.fid, "ukey": ukey, "user_id": user_id, "predicate": st.predicate,
                           "obj": st.obj, "label": st.label, "detail": st.detail, "valid_from": at, "from_unit": "",
                           "valid_to": at, "closed_by": None})
    out.support.append({"xid": st.xid, "fid": known.fid})


def plan(ukey: str, user_id: str, facts: list[FactState], statements: list[Said]) -> Plan:
    """Writes for ``statements``, oldest said first.

    ``facts`` is updated in place to the state after the plan.
    """
    out = Plan()
    touched: dict[str, dict[str, Any]] = {}
    for st in statements:
        xid, ts, predicate, obj, label, detail = st.xid, st.ts, st.predicate, st.obj, st.label, st.detail
        # a start after the message dates nothing ("I'm moving in June"), except a plan's: its day
        start, unit = (st.start, st.unit) if st.start is not None and (st.start <= ts or predicate in DATED_AHEAD) \
            else (ts, "")
        if st.ended:
            _end(out, facts, st, ukey, user_id, start)
            continue
        found = _match(facts, predicate, obj)
        if found is not None:
            out.support.append({"xid": xid, "fid": found.fid})
            changed = False
            if obj != found.obj and obj not in found.aliases:
                found.aliases.append(obj)
                changed = True
            if len(obj) > len(found.obj) and predicate in RESOLVED:  # "Melanie" names her better than "Mel"
                found.aliases = [n for n in {*found.aliases, found.obj} if n != obj]
                found.obj, found.label = obj, label
                changed = True
            ranks = _DETAIL_RANKS.get(predicate, ())
            if detail in ranks and found.detail in ranks and ranks.index(detail) > ranks.index(found.detail):
                found.detail = detail
                changed = True
            if predicate == "WORKS_AS" and detail.startswith("in ") and (detail != found.detail or found.told is None
                                                                         or found.told < ts):
                found.detail, found.told = detail, ts  # "a nurse in Bath now": where the job is, said again
                changed = True
            if start < found.valid_from or (predicate in DATED_AHEAD and start != found.valid_from):  # moved
                for before in facts:  # what it replaced now ends at its earlier start
                    if before.closed_by == found.fid and before.valid_to == found.valid_from:
                        before.valid_to = max(before.valid_from, start)
                        out.close.append({"fid": before.fid, "valid_to": before.valid_to, "closed_by": found.fid})
                found.valid_from, found.from_unit = start, unit
                changed = True
            if changed:
                touched[found.fid] = {"fid": found.fid, "obj": found.obj, "label": found.label or label,
                                      "aliases": sorted(found.aliases), "valid_from": found.valid_from,
                                      "from_unit": found.from_unit, "detail": found.detail, "told": found.told}
            continue
        fact = FactState(uuid.uuid4().hex, predicate, obj, [], start, None, new=True, label=label, detail=detail,
                         from_unit=unit, told=ts)
        for old in _displaced(facts, predicate, obj, detail):
            if old.valid_from <= ts:  # said after the old fact began: the old one ends where this begins
                end = max(old.valid_from, start)
                old.valid_to, old.closed_by = end, fact.fid
                out.close.append({"fid": old.fid, "valid_to": end, "closed_by": fact.fid})
            else:
                fact.valid_to = old.valid_from  # an older statement: it held until the current one
                fact.closed_by = old.fid
        facts.append(fact)
        out.create.append({"fid": fact.fid, "ukey": ukey, "user_id": user_id, "predicate": predicate,
                           "obj": obj, "label": label, "detail": detail, "valid_from": start,
                           "from_unit": unit, "valid_to": fact.valid_to, "closed_by": fact.closed_by, "told": ts})
        out.support.append({"xid": xid, "fid": fact.fid})
    created = {row["fid"]: row for row in out.create}
    for fid, row in touched.items():
        if fid in created:  # created in this plan: write the final state at creation
            created[fid].update(obj=row["obj"], label=row["label"], valid_from=row["valid_from"],
                                from_unit=row["from_unit"], detail=row["detail"], told=row["told"])
            created[fid]["aliases"] = row["aliases"]
        else:
            out.update.append(row)
    for row in out.create:
        row.setdefault("aliases", [])
    for row in out.close:  # closes of facts created in this same plan are written at creation
        if row["fid"] in created:
            created[row["fid"]].update(valid_to=row["valid_to"], closed_by=row["closed_by"])
    out.close = [row for row in out.close if row["fid"] not in created]
    return out
