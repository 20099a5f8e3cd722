"""Time named by an event of the user's own ("before I moved", "since I got my dog"): read from the
query, resolved against the typed facts, and used as the query's date window on the real servers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from memory import HierarchicalMemoryManager
from memory.anchors import anchor, resolve, stated_in
from memory.models import TypedFact
from tests.memory.test_understanding import tell

NOW = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(("query", "relation", "predicate", "edge", "obj", "kind"), [
    ("what hobbies did I have before I moved?", "before", "LIVES_IN", "start", "", ""),
    ("What did I do after I moved to York", "after", "LIVES_IN", "start", "York", ""),
    ("how has my sleep been since I got my dog", "after", "HAS_PET", "start", "", "dog"),
    ("what did we talk about when I moved here?", "around", "LIVES_IN", "start", "", ""),
    ("what restaurants did I like when I lived in Leeds?", "during", "LIVES_IN", "start", "Leeds", ""),
    ("who were my friends while I was working at Arup", "during", "WORKS_AT", "start", "Arup", ""),
    ("what was I stressed about before I started my new job?", "before", "WORK", "start", "", ""),
    ("and after I quit my job?", "after", "WORK", "end", "", ""),
    ("what did I do before we broke up", "before", "PARTNER_OF", "end", "", ""),
    ("since I met Sam, what changed?", "after", "PARTNER_OF", "start", "Sam", ""),
    ("When did I move to York?", "around", "LIVES_IN", "start", "York", ""),
    ("when did we adopt our kitten", "around", "HAS_PET", "start", "", "kitten"),
    ("when did I become a nurse?", "around", "WORKS_AS", "start", "nurse", ""),
])
def test_an_event_of_the_users_own_is_read_from_the_query(query: str, relation: str, predicate: str, edge: str,
                                                         obj: str, kind: str) -> None:
    a = anchor(query)
    assert a is not None and (a.relation, a.predicate, a.edge, a.obj, a.kind) == (relation, predicate, edge, obj, kind)
    assert a.phrase in query


@pytest.mark.parametrize("query", ["Where do I live?", "before the concert, what did I eat?",
                                   "when Sam moved to York", "I moved to York", "since yesterday", "",
                                   "when I was a kid I loved trains"])
def test_no_event_of_the_users_own_no_anchor(query: str) -> None:
    assert anchor(query) is None


def fact(predicate: str, label: str, start: datetime, end: datetime | None = None, detail: str = "") -> TypedFact:
    return TypedFact(label, predicate, label.lower(), label, detail, start, end, ())


FACTS = [fact("LIVES_IN", "Leeds", datetime(2020, 1, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)),
         fact("LIVES_IN", "York", datetime(2025, 3, 1, tzinfo=UTC)),
         fact("WORKS_AS", "nurse", datetime(2019, 5, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)),
         fact("HAS_PET", "Rex", datetime(2025, 4, 20, tzinfo=UTC), detail="dog")]


@pytest.mark.parametrize(("query", "start", "end"), [
    ("before I moved", datetime(1970, 1, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)),
    ("since I moved to York", datetime(2025, 3, 1, tzinfo=UTC), NOW + timedelta(days=1)),
    ("when I lived in Leeds", datetime(2020, 1, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)),
    ("after I quit my job", datetime(2025, 4, 1, tzinfo=UTC), NOW + timedelta(days=1)),
    ("when I got my dog", datetime(2025, 4, 13, tzinfo=UTC), datetime(2025, 5, 4, tzinfo=UTC)),
])
def test_the_event_is_found_among_the_facts(query: str, start: datetime, end: datetime) -> None:
    a = anchor(query)
    w = None if a is None else resolve(a, FACTS, NOW)
    assert w is not None and (w.start, w.end) == (start, end)


@pytest.mark.parametrize("query", ["after I moved to Paris", "since I got my cat", "before we broke up",
                                   "when I was a teacher"])
def test_an_event_we_never_heard_of_gives_no_window(query: str) -> None:
    a = anchor(query)
    assert a is not None and resolve(a, FACTS, NOW) is None


HISTORY = [
    (0, "I live in Leeds and I sing in a choir on Tuesdays.", "Lovely!"),
    (2, "The choir concert went really well.", "Congratulations!"),
    (6, "I moved to York!", "Exciting!"),
    (8, "I joined a climbing gym near the river.", "Have fun climbing."),
    (10, "I adopted a dog named Rex.", "Hi Rex!"),
    (12, "Rex sleeps all afternoon.", "Good dog."),
]


async def test_a_question_about_before_the_move_finds_that_time(memory: HierarchicalMemoryManager,
                                                                uid: Callable[[str], str]) -> None:
    user = uid("ravi")
    ids = await tell(memory, user, HISTORY)

    async def in_window(query: str) -> set[str]:
        ctx = await memory.get_conversation_context(user, query, max_tokens=800)
        assert ctx.profile is not None and ctx.profile.line("home") is not None  # the facts read once serve both
        return {r.exchange.id for r in ctx.relevant if "time" in r.sources}

    assert await in_window("what hobbies did I have before I moved?") == {ids[0], ids[1]}
    assert await in_window("what did I do when I lived in Leeds?") == {ids[0], ids[1]}
    assert await in_window("how are things since I got my dog?") == {ids[4], ids[5]}
    assert await in_window("what did I do after I moved to York?") == set(ids[2:])
    assert await in_window("what did I do before I retired?") == set()  # no such event: no window


async def test_a_question_about_when_finds_where_it_was_said(memory: HierarchicalMemoryManager,
                                                            uid: Callable[[str], str]) -> None:
    user = uid("mei")
    ids = await tell(memory, user, [(0, "I work as a nurse.", "OK."),
                                    (4, "We adopted a puppy named Bo two weeks ago.", "Hi Bo!"),
                                    (6, "I quit my job last week.", "Big step."),
                                    (8, "It rained all day.", "Stay dry.")])
    facts = await memory.typed_facts(user)
    for query, said in (("when did I get my dog?", ids[1]), ("When did I quit my job?", ids[2])):
        event = anchor(query)
        assert event is not None and stated_in(event, facts, datetime.now(UTC)) == (said,)
        ctx = await memory.get_conversation_context(user, query, max_tokens=800)
        # the dates the user named lie before the messages that said them; the messages still come first
        assert ctx.relevant[0].exchange.id == said
        assert "time" in next(r.sources for r in ctx.relevant if r.exchange.id == said)
