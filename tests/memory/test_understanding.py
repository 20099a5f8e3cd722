"""The understanding layer end to end on the real servers: typed facts over weeks, the profile in
every context, corrections, forget and export; with the rule-based extractor and with an LLM
extractor on a fake OpenAI-compatible server (a real socket) answering scripted JSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from memory import HierarchicalMemoryManager, InvalidInput
from memory.launcher import Addresses
from memory.llm_sessions import INSTRUCTIONS as SESSION_INSTRUCTIONS
from tests.bot.fake_llm import FakeLLM
from tests.memory.conftest import ManagerFactory, settings_for

T0 = datetime(2025, 2, 3, 18, 0, tzinfo=UTC)
WEEKS = [
    (0, "Hi, I'm Ana! I live in Paris and work as a nurse.", "Nice to meet you, Ana."),
    (1, "My dog Rex chewed my shoes again.", "Oh no, Rex!"),
    (2, "Still in Paris, the metro was on strike today.", "That sounds tiring."),
    (5, "Big news: I moved to Berlin last weekend!", "Congratulations on the move to Berlin!"),
]


async def tell(memory: HierarchicalMemoryManager, user: str, history: list[tuple[int, str, str]],
               guild: str | None = None) -> list[str]:
    ids = []
    for weeks, u, b in history:
        ids.append(await memory.store_conversation(user, u, b, guild_id=guild, timestamp=T0 + timedelta(weeks=weeks)))
        await memory.flush()
    return ids


def current(facts: list[Any]) -> set[tuple[str, str]]:
    return {(f.predicate, f.label) for f in facts if f.current}


async def test_facts_change_over_weeks_and_the_profile_reaches_every_context(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("ana")
    ids = await tell(memory, user, WEEKS, guild="g1")
    facts = await memory.typed_facts(user, "g1")
    assert current(facts) == {("NAME", "Ana"), ("LIVES_IN", "Berlin"), ("WORKS_AS", "nurse"), ("HAS_PET", "Rex")}
    [paris] = [f for f in facts if f.label == "Paris"]
    # "I moved to Berlin last weekend", said on 10 March: the move is dated a week back, not the day it was said
    assert paris.valid_to == datetime(2025, 3, 3, tzinfo=UTC) and paris.support == (ids[0],)
    ctx = await memory.get_conversation_context(user, "any plans for the weekend?", guild_id="g1", max_tokens=600)
    text = ctx.to_context_string(600)
    assert text.startswith("User profile:\n- Name: Ana\n- Lives in Berlin (since 2025-03-03; "
                           "before: Paris)\n- Works as nurse\n- Pets: dog Rex")
    # another scope and another user see none of it
    other = await memory.get_conversation_context(user, "hello", max_tokens=600)
    assert other.profile is not None and other.profile.lines == ()
    stranger = await memory.get_conversation_context(uid("bo"), "hello", guild_id="g1", max_tokens=600)
    assert "Ana" not in stranger.to_context_string(600)


async def test_a_change_of_taste_replaces_the_old_line_and_pets_named_together_are_kept(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("dana")
    await tell(memory, user, [(0, "I keep two cats, Miso and Tofu. My favourite drink is black coffee.", "Cute!"),
                              (3, "Honestly I can't stand black coffee anymore; I love green tea now.", "Noted.")])
    text = (await memory.get_conversation_context(user, "what should I drink?", max_tokens=600)).to_context_string(600)
    profile = text.split("\n\n")[0].splitlines()
    assert profile[1] in ("- Pets: cat Miso, Tofu", "- Pets: cat Tofu, Miso")  # said in one message: either order
    assert profile[2:] == ["- Likes: green tea", "- Dislikes: black coffee"]


async def test_allergies_and_diet_reach_the_profile_and_go_with_a_forget(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("eli")
    await tell(memory, user, [(0, "I'm allergic to peanuts and shellfish, by the way.", "Noted."),
                              (2, "I've been vegetarian for years. I love curries.", "Great!"),
                              (4, "Also I'm allergic to latex.", "Thanks for telling me.")])
    text = (await memory.get_conversation_context(user, "any dinner ideas?", max_tokens=600)).to_context_string(600)
    profile = text.split("\n\n")[0].splitlines()
    # said in one message, peanuts and shellfish come in either order; latex, said later, comes last
    assert profile[1] in ("- Allergic to: peanuts, shellfish, latex", "- Allergic to: shellfish, peanuts, latex")
    assert profile[2:] == ["- Diet: vegetarian", "- Likes: curries"]
    await memory.forget(user, last=True)
    line = (await memory.user_profile(user)).line("allergies")
    assert line is not None and line.text in ("Allergic to: peanuts, shellfish", "Allergic to: shellfish, peanuts")


async def test_intolerances_stand_beside_the_allergies(memory: HierarchicalMemoryManager,
                                                       uid: Callable[[str], str]) -> None:
    user = uid("ivo")
    ids = await tell(memory, user, [(0, "I'm lactose intolerant, so no milk please", "Noted."),
                                    (1, "I'm allergic to peanuts. Oh and I have coeliac disease", "Got it.")])
    line = (await memory.user_profile(user)).line("allergies")
    assert line is not None and line.text == "Allergic to: peanuts; intolerant to lactose, gluten"
    await memory.forget(user, exchange_id=ids[1])
    line = (await memory.user_profile(user)).line("allergies")
    assert line is not None and line.text == "Intolerant to lactose"


async def test_health_conditions_reach_the_context_and_end_when_the_user_says_so(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user, other = uid("hana"), uid("no-condition")
    ids = await tell(memory, user, [(0, "I have type 1 diabetes and I suffer from migraines.", "Thanks."),
                                    (1, "I'm allergic to peanuts too", "Noted."),
                                    (2, "Good news, I no longer have migraines!", "That's great!")])
    await tell(memory, other, [(0, "I don't have diabetes, I just like sugar-free sweets", "Okay.")])
    # a dessert question shares no word with the message that told of the diabetes: the profile carries it
    text = (await memory.get_conversation_context(user, "any dessert ideas?", max_tokens=600)).to_context_string(600)
    assert text.split("\n\n")[0].splitlines()[1:3] == ["- Allergic to: peanuts", "- Health: type 1 diabetes"]
    # forgetting the good news brings the migraines back; a denial of one never told of keeps nothing
    await memory.forget(user, exchange_id=ids[2])
    line = (await memory.user_profile(user)).line("health")
    # said in one message, the two come in either order
    assert line is not None and line.text in ("Health: type 1 diabetes, migraines",
                                              "Health: migraines, type 1 diabetes")
    assert (await memory.user_profile(other)).line("health") is None
    assert not [f for f in await memory.typed_facts(other) if f.predicate == "HAS_CONDITION"]
    # forgetting the message that told of them takes both away, in the graph too
    await memory.forget(user, exchange_id=ids[0])
    assert (await memory.user_profile(user)).line("health") is None
    assert not [f for f in await memory.typed_facts(user) if f.predicate == "HAS_CONDITION"]


async def test_the_relationship_status_follows_the_user_and_a_break_up_ends_it(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("sam")
    ids = await tell(memory, user, [(0, "I'm in a relationship, it's going well", "Nice!"),
                                    (6, "Big news: we got engaged last month!", "Congratulations!")])
    line = (await memory.user_profile(user)).line("relationship")
    said = T0 + timedelta(weeks=6)
    month = datetime(said.year - (said.month == 1), (said.month - 2) % 12 + 1, 1)
    assert line is not None and line.text == f"Engaged (since {month:%b %Y})"
    ids += await tell(memory, user, [(8, "We broke up. I don't want to talk about it.", "I'm sorry.")])
    assert (await memory.user_profile(user)).line("relationship") is None
    # forgetting the break-up brings the engagement back; forgetting that, the relationship before it
    await memory.forget(user, exchange_id=ids[2])
    line = (await memory.user_profile(user)).line("relationship")
    assert line is not None and line.text.startswith("Engaged")
    await memory.forget(user, exchange_id=ids[1])
    line = (await memory.user_profile(user)).line("relationship")
    assert line is not None and line.text == "In a relationship"


async def test_a_diet_given_up_replaces_the_old_one(memory: HierarchicalMemoryManager,
                                                    uid: Callable[[str], str]) -> None:
    user = uid("fay")
    await tell(memory, user, [(0, "I'm vegan.", "Noted."), (5, "I'm not vegan anymore, I eat fish now.", "OK!")])
    line = (await memory.user_profile(user)).line("diet")
    assert line is not None and line.text == "Diet: no longer vegan"


async def test_facts_start_when_the_user_says_they_did(memory: HierarchicalMemoryManager,
                                                       uid: Callable[[str], str]) -> None:
    # T0 is 3 Feb 2025; found in the console, where "I moved to Manchester last month" showed the day it was said
    user = uid("priya")
    await tell(memory, user, [(0, "I've lived in Porto for about three years. I work as a nurse.", "Nice."),
                              (1, "I moved to Lisbon last month!", "Wow."),
                              (8, "I left nursing: since March I have been a paramedic.", "Big change!")])
    profile = await memory.user_profile(user)
    assert profile.line("home").text == "Lives in Lisbon (since Jan 2025; before: Porto)"  # type: ignore[union-attr]
    assert profile.line("work").text == (  # type: ignore[union-attr]
        "Works as paramedic (since Mar 2025); before: nurse")  # "until 2025-03-01" would repeat "since"
    facts = {f.label: f for f in await memory.typed_facts(user)}
    assert (facts["Porto"].valid_from, facts["Porto"].valid_to) == (datetime(2022, 1, 1, tzinfo=UTC),
                                                                    datetime(2025, 1, 1, tzinfo=UTC))
    # a repeat that names an earlier start moves the start back; one that names none leaves it
    await tell(memory, user, [(9, "I live in Lisbon, I moved there in December 2024.", "OK."),
                              (10, "I still live in Lisbon.", "OK.")])
    line = (await memory.user_profile(user)).line("home")
    assert line is not None and line.text == "Lives in Lisbon (since Dec 2024; before: Porto)"
    # the newest word wins: a move said later, dated before a home said in between, still replaces it
    other = uid("ravi")
    await tell(memory, other, [(0, "I live in Leeds.", "OK."), (2, "I moved to York two months ago.", "OK.")])
    assert current(await memory.typed_facts(other)) >= {("LIVES_IN", "York")}
    assert ("LIVES_IN", "Leeds") not in current(await memory.typed_facts(other))


async def test_endings_close_facts_and_a_forget_of_the_ending_reopens_them(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("noor")
    ids = await tell(memory, user, [
        (0, "I keep two cats, Miso and Tofu. My girlfriend Sara says hi. I work at Google as a data scientist.", "Hi!"),
        (3, "Sad news: my cat Miso passed away last week.", "I'm so sorry."),
        (4, "I broke up with my girlfriend Sara.", "That's a lot at once.")])
    profile = await memory.user_profile(user)
    assert profile.line("pets").text == "Pets: cat Tofu"  # type: ignore[union-attr]
    assert profile.line("people") is None
    # an ending that names no job ends the whole job, employer and role
    await tell(memory, user, [(5, "I was laid off.", "Oh no.")])
    work = (await memory.user_profile(user)).line("work")
    assert work is not None and work.text == "No job now (before: as data scientist at Google until 2025-03-10)"
    facts = await memory.typed_facts(user)
    [miso] = [f for f in facts if f.label == "Miso" and f.predicate == "HAS_PET"]
    assert miso.valid_to == datetime(2025, 2, 17, tzinfo=UTC)  # "last week", said on 24 February
    assert ("HAS_PET", "Miso") not in current(facts)
    # forgetting what ended a fact brings the fact back
    await memory.forget(user, exchange_id=ids[1])
    assert (await memory.user_profile(user)).line("pets").text in (  # type: ignore[union-attr]
        "Pets: cat Miso, Tofu", "Pets: cat Tofu, Miso")
    await memory.forget(user)
    assert await memory.typed_facts(user) == []


async def test_a_kind_of_pet_that_is_gone_ends_those_pets_only(memory: HierarchicalMemoryManager,
                                                                uid: Callable[[str], str]) -> None:
    # found in the console: after "i dont have a cat anymore" the profile still listed the cat
    user = uid("dana")
    ids = await tell(memory, user, [(0, "My cat is called Miso and my dog is called Pixel.", "Cute!"),
                                    (2, "i dont have a cat anymore :(", "I'm sorry.")])
    line = (await memory.user_profile(user)).line("pets")
    assert line is not None and line.text == "Pets: dog Pixel"
    await memory.forget(user, exchange_id=ids[1])
    line = (await memory.user_profile(user)).line("pets")
    assert line is not None and line.text in ("Pets: cat Miso; dog Pixel", "Pets: dog Pixel; cat Miso")


async def test_standing_instructions_reach_every_context_that_they_apply_to(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("lena")
    ids = await tell(memory, user, [
        (0, "Please never use emojis with me.", "Understood."),
        (1, "Always format dates as Month Day, Year when I ask about deadlines.", "Will do."),
        (2, "I adopted a cat named Pixel.", "Lovely!")])
    line = (await memory.user_profile(user)).line("instructions")
    assert line is not None and line.text == ("Instructions: Never use emojis with me; Always format dates as "
                                              "Month Day, Year when I ask about deadlines")

    async def told(query: str) -> str:
        text = (await memory.get_conversation_context(user, query, max_tokens=600)).to_context_string(600)
        return text.split("Instructions the user gave you:\n", 1)[1].split("\n\n", 1)[0] if (
            "Instructions the user gave you:" in text) else ""

    # weeks later, about something else: the one that always holds is there, the other is not
    assert await told("what should I cook tonight?") == "- Never use emojis with me"
    assert await told("when are my tax deadlines?") == (
        "- Never use emojis with me\n- Always format dates as Month Day, Year when I ask about deadlines")
    # another user and another scope have none of it
    other = await memory.get_conversation_context(uid("max"), "when are my deadlines?", max_tokens=600)
    assert "Instructions" not in other.to_context_string(600)
    guild = await memory.get_conversation_context(user, "when are my deadlines?", guild_id="g9", max_tokens=600)
    assert "Instructions" not in guild.to_context_string(600)
    # the user may rewrite the line or remove it; forgetting what said them forgets them
    await memory.correct_profile(user, "instructions", "Keep answers under three sentences")
    assert await told("what should I cook?") == "- Keep answers under three sentences"
    await memory.correct_profile(user, "instructions", None)
    assert await told("when are my tax deadlines?") == ""
    await memory.forget(user, exchange_id=ids[0])
    await memory.forget(user, exchange_id=ids[1])
    assert not [f for f in await memory.typed_facts(user) if f.predicate == "INSTRUCTS"]


async def test_an_instruction_taken_back_leaves_the_context_and_forgetting_that_brings_it_back(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("noa")
    ids = await tell(memory, user, [(0, "Please never use emojis. Always answer in Spanish.", "Entendido."),
                                    (1, "ok you can use emoji again!", "🎉")])
    line = (await memory.user_profile(user)).line("instructions")
    assert line is not None and line.items == ("Always answer in Spanish",)  # only the emojis one is over
    await memory.forget(user, exchange_id=ids[1])
    line = (await memory.user_profile(user)).line("instructions")
    assert line is not None and set(line.items) == {"Never use emojis", "Always answer in Spanish"}


async def test_forgetting_an_ending_reopens_the_old_job_only_until_the_next_one(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("ines")
    ids = await tell(memory, user, [(0, "I work as a nurse.", "OK."), (1, "I quit my job.", "Oh!"),
                                    (3, "I work as a teacher now.", "Nice.")])
    await memory.forget(user, exchange_id=ids[1])
    facts = await memory.typed_facts(user)
    assert current(facts) == {("WORKS_AS", "teacher")}  # not two jobs at once
    nurse, teacher = (next(f for f in facts if f.label == job) for job in ("nurse", "teacher"))
    assert nurse.valid_to == teacher.valid_from == T0 + timedelta(weeks=3)


async def test_a_home_we_first_hear_of_as_left_behind_is_the_one_before(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("omar")
    ids = await tell(memory, user, [(0, "I moved to London from Paris two years ago.", "Nice!"),
                                    (2, "I moved here from Paris, remember?", "I do.")])
    line = (await memory.user_profile(user)).line("home")
    assert line is not None and line.text == "Lives in London (since 2023; before: Paris)"
    [paris] = [f for f in await memory.typed_facts(user) if f.label == "Paris"]
    assert paris.valid_to == paris.valid_from == datetime(2023, 1, 1, tzinfo=UTC)  # when it began is unknown
    assert set(paris.support) == set(ids)  # said twice: one fact, two supports
    await memory.forget(user, exchange_id=ids[0])
    await memory.forget(user, exchange_id=ids[1])
    assert await memory.typed_facts(user) == []


async def test_a_birthday_reaches_the_profile(memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("bea")
    await tell(memory, user, [(0, "It's my birthday today! I'm vegetarian, by the way.", "Happy birthday!"),
                              (1, "I was born on February 3rd, 1994.", "Noted.")])
    profile = await memory.user_profile(user)
    # said on 3 February, and again with the year: one fact; the first spelling stays
    assert [ln.text for ln in profile.lines] == ["Diet: vegetarian", "Birthday: 3 February"]
    assert [f.obj for f in await memory.typed_facts(user) if f.predicate == "BIRTHDAY"] == ["02-03"]


async def test_the_age_said_last_is_the_profiles_with_the_day_it_was_said(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("cal")
    ids = await tell(memory, user, [(0, "I'm 29 and I work as a nurse.", "Cool."),
                                    (52, "I just turned 30!", "Happy birthday!")])
    profile = await memory.user_profile(user)
    said = T0 + timedelta(weeks=52)
    assert profile.line("age") is not None and profile.line("age").text == f"Age: 30 (as of {said:%Y-%m-%d})"  # type: ignore[union-attr]
    assert [f.label for f in await memory.typed_facts(user) if f.predicate == "AGE" and not f.current] == ["29"]
    await memory.forget(user, exchange_id=ids[1])  # what was said before comes back
    assert (await memory.user_profile(user)).line("age").text == f"Age: 29 (as of {T0:%Y-%m-%d})"  # type: ignore[union-attr]


async def test_hobbies_reach_the_profile_and_one_given_up_leaves_it(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("hobbyist")
    ids = await tell(memory, user, [(0, "My hobbies are knitting and hiking. I like to paint too.", "Lovely."),
                                    (1, "I started learning the cello last March.", "Brave!"),
                                    (2, "I stopped knitting, my hands hurt. I also quit smoking!", "Good for you.")])
    likes = (await memory.user_profile(user)).line("likes")
    # (facts said in one message come in no set order)
    assert likes is not None and sorted(likes.text.removeprefix("Likes: ").split(", ")) == [
        "hiking", "learning cello", "painting"]
    facts = await memory.typed_facts(user)
    assert [f.label for f in facts if f.predicate == "LIKES" and not f.current] == ["knitting"]
    assert not [f for f in facts if "smoking" in f.obj]  # a liking never heard of that is over: nothing kept
    await memory.forget(user, exchange_id=ids[2])  # the knitting is back
    likes = (await memory.user_profile(user)).line("likes")
    assert likes is not None and "knitting" in likes.text


async def test_plans_to_come_reach_the_profile_dated_and_leave_it_a_week_after(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("planner")
    # said on the last Wednesday (real time: the profile shows plans to come and those of the last week)
    now = datetime.now(UTC)
    wednesday = (now - timedelta(days=(now.weekday() - 2) % 7)).replace(hour=0, minute=1, second=0, microsecond=0)
    if wednesday > now - timedelta(hours=3):
        wednesday -= timedelta(days=7)  # Friday is then 5 days ago: still shown
    friday, saturday = wednesday + timedelta(days=2), wednesday + timedelta(days=3)
    long_ago = wednesday - timedelta(days=30)
    said = [(long_ago, "My exam is tomorrow, wish me luck"),
            (wednesday, "I have a job interview on Friday and I'm flying to Tokyo next month."),
            (wednesday + timedelta(hours=1), "I had an exam on Monday. I have a cat.")]
    ids = []
    for at, text in said:
        ids.append(await memory.store_conversation(user, text, "Good luck!", timestamp=at))
        await memory.flush()
    facts = {f.label: f for f in await memory.typed_facts(user) if f.predicate == "PLANS"}
    assert set(facts) == {"exam", "job interview", "trip to Tokyo"}
    assert facts["job interview"].valid_from == friday.replace(minute=0) and facts["trip to Tokyo"].from_unit == "month"
    line = (await memory.user_profile(user)).line("plans")
    month = datetime(wednesday.year + (wednesday.month == 12), wednesday.month % 12 + 1, 1)
    # the exam a month ago is over; the interview (this or last week) stays for a week after, to ask how it went
    assert line is not None and line.text == (f"Plans: job interview ({friday:%a} {friday.day} {friday:%b %Y}); "
                                              f"trip to Tokyo ({month:%b %Y})")
    # moved: the day said last wins
    await memory.store_conversation(user, "My interview is on Saturday now", "Ok!",
                                    timestamp=wednesday + timedelta(hours=2))
    await memory.flush()
    moved = {f.label: f for f in await memory.typed_facts(user) if f.predicate == "PLANS"}["job interview"]
    assert moved.valid_from == saturday.replace(minute=0)
    await memory.forget(user, exchange_id=ids[1])  # Tokyo was said there only
    assert "Tokyo" not in (await memory.user_profile(user)).line("plans").text  # type: ignore[union-attr]


async def test_a_plan_called_off_leaves_the_profile_and_one_put_off_moves(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("calls-off")
    now = datetime.now(UTC).replace(microsecond=0)
    said = [(now - timedelta(hours=5), "I have a job interview next week and a dentist appointment tomorrow."),
            (now - timedelta(hours=4), "Ugh, my interview got cancelled."),
            (now - timedelta(hours=3), "The party is off, by the way."),  # no party we knew of: nothing kept
            (now - timedelta(hours=2), "My dentist appointment was moved from tomorrow to next month.")]
    ids = []
    for at, text in said:
        ids.append(await memory.store_conversation(user, text, "Noted.", timestamp=at))
        await memory.flush()
    plans = {f.label: f for f in await memory.typed_facts(user) if f.predicate == "PLANS"}
    assert set(plans) == {"job interview", "dentist appointment"}  # no "party" plan made up from its ending
    assert not plans["job interview"].current
    dentist, moved_at = plans["dentist appointment"], now - timedelta(hours=2)
    next_month = (moved_at.year + (moved_at.month == 12), moved_at.month % 12 + 1)
    assert dentist.current and dentist.from_unit == "month"
    assert (dentist.valid_from.year, dentist.valid_from.month) == next_month
    line = (await memory.user_profile(user)).line("plans")
    assert line is not None and line.text == f"Plans: dentist appointment ({dentist.valid_from:%b %Y})"
    # forgetting the message that called it off brings the interview back
    await memory.forget(user, exchange_id=ids[1])
    line = (await memory.user_profile(user)).line("plans")
    assert line is not None and "job interview" in line.text


async def test_what_the_users_people_have_coming_reaches_the_profile_and_a_call_off_ends_it(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("their-plans")
    said_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    # the wedding's month three months on, so that "tomorrow" (at most a month's first day) never ties with it
    month = datetime(said_at.year + (said_at.month > 9), (said_at.month + 2) % 12 + 1, 1)
    first = await memory.store_conversation(
        user, f"My sister Anjali is getting married in {month:%B}, and my dad is having surgery tomorrow.",
        "That's a lot at once!", timestamp=said_at)
    await memory.flush()
    profile = await memory.user_profile(user)
    surgery = (said_at + timedelta(days=1)).replace(hour=0, minute=0, second=0)
    people = profile.line("people")
    assert people is not None and "sister Anjali" in people.text
    line = profile.line("plans")
    assert line is not None and line.text == (f"Plans: dad's surgery ({surgery:%a} {surgery.day} {surgery:%b %Y}); "
                                              f"sister Anjali's wedding ({month:%b %Y})")
    # "the wedding" is the only wedding told of: calling it off ends Anjali's, and the surgery stays
    await memory.store_conversation(user, "Oh no, the wedding got called off.", "I'm sorry.",
                                    timestamp=said_at + timedelta(hours=1))
    await memory.flush()
    line = (await memory.user_profile(user)).line("plans")
    assert line is not None and line.text == f"Plans: dad's surgery ({surgery:%a} {surgery.day} {surgery:%b %Y})"
    # forgetting what was first said leaves no plan of theirs behind
    await memory.forget(user, exchange_id=first)
    assert (await memory.user_profile(user)).line("plans") is None


async def test_languages_reach_the_profile_and_learning_one_becomes_speaking_it(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("piotr")
    await tell(memory, user, [(0, "I'm learning Japanese.", "Ganbatte!"), (1, "My native language is Polish.", "Cool."),
                              (2, "I speak English too.", "Great."), (3, "I speak Japanese now!", "Sugoi!")])
    line = (await memory.user_profile(user)).line("languages")
    assert line is not None and line.text == "Speaks: Japanese, Polish (native), English"
    # a later "I'm learning Polish" does not lower a native language
    await tell(memory, user, [(4, "I'm learning Polish too, for fun.", "Nice.")])
    line = (await memory.user_profile(user)).line("languages")
    assert line is not None and line.text == "Speaks: Japanese, Polish (native), English"


async def test_where_the_user_is_from_reaches_the_profile_beside_where_they_live(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("ines")
    ids = await tell(memory, user, [(0, "I'm originally from Brazil, but I live in Lisbon now.", "Olá!"),
                                    (1, "I was born in Recife and grew up in Ohio, long story", "Wow."),
                                    (2, "Yes I'm from Brazil!", "Right.")])
    profile = await memory.user_profile(user)
    assert profile.line("home") is not None and profile.line("home").text.startswith("Lives in Lisbon")
    line = profile.line("origin")
    assert line is not None and line.text == "From Brazil; born in Recife; grew up in Ohio"
    # not replaced by a later one: each is its own fact; forgetting what said it forgets it
    await memory.forget(user, exchange_id=ids[1])
    line = (await memory.user_profile(user)).line("origin")
    assert line is not None and line.text == "From Brazil"
    # and the line is the user's to correct, as every profile line is
    await memory.correct_profile(user, "origin", "From Brazil and Portugal")
    line = (await memory.user_profile(user)).line("origin")
    assert line is not None and (line.text, line.corrected) == ("From Brazil and Portugal", True)


async def test_pronouns_reach_the_profile_and_the_newest_one_holds(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("kai")
    ids = await tell(memory, user, [(0, "hey! pronouns: he/him", "Hi!"),
                                    (1, "oh and my pronouns are they/them now", "Thanks for telling me.")])
    profile = await memory.user_profile(user)
    assert [ln.text for ln in profile.lines] == ["Pronouns: they/them"]
    assert "Pronouns: they/them" in (await memory.get_conversation_context(user, "how are you?")).to_context_string()
    await memory.forget(user, exchange_id=ids[1])  # the older word is current again
    line = (await memory.user_profile(user)).line("pronouns")
    assert line is not None and line.text == "Pronouns: he/him"


async def test_what_the_user_used_to_do_is_a_past_fact(memory: HierarchicalMemoryManager,
                                                       uid: Callable[[str], str]) -> None:
    user = uid("uma")
    ids = await tell(memory, user, [(0, "I used to live in the UK but now I live in Spain", "¡Hola!"),
                                    (1, "I used to work as a nurse but since March I have been a paramedic.", "Wow."),
                                    (2, "I used to have a dog named Rex", "Aw.")])
    profile = await memory.user_profile(user)
    # the past home and job are what came before; when they ended is not known beyond that
    home, work = profile.line("home"), profile.line("work")
    assert home is not None and home.text == "Lives in Spain (as of 2025-02-03; before: UK)"
    assert work is not None and work.text == "Works as paramedic (since Mar 2024); before: nurse"
    assert profile.line("pets") is None  # Rex is no pet now
    await memory.forget(user, exchange_id=ids[2])
    assert [f for f in await memory.typed_facts(user) if f.label == "Rex"] == []


async def test_where_the_user_works_reaches_the_profile(memory: HierarchicalMemoryManager,
                                                        uid: Callable[[str], str]) -> None:
    # the console: "hi! I'm Mara, I work as a nurse in Leeds" gave "Works as nurse", and Leeds was lost
    user = uid("mara")
    await tell(memory, user, [(0, "hi! I'm Mara, I work as a nurse in Leeds", "Hi Mara!")])
    work = (await memory.user_profile(user)).line("work")
    assert work is not None and work.text == "Works as nurse in Leeds"
    await tell(memory, user, [(1, "I'm a teacher now", "Congrats!")])  # a new job: where is not known
    work = (await memory.user_profile(user)).line("work")
    assert work is not None and work.text.startswith("Works as teacher") and "Leeds" not in work.text


async def test_a_move_leaves_the_old_place_of_work_out_until_the_user_says_it_again(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    # the console: "I work as a nurse in London", then "we moved to Bristol last month" kept "in London"
    user = uid("priya")
    await tell(memory, user, [(0, "I work as a nurse in London", "Hard work!"),
                              (3, "we moved to Bristol last month", "How is it?")])
    profile = await memory.user_profile(user)
    work, home = profile.line("work"), profile.line("home")
    assert work is not None and work.text == "Works as nurse"
    assert home is not None and home.text.startswith("Lives in Bristol (since ")
    await tell(memory, user, [(4, "I work as a nurse in Bath now", "Nice commute?")])  # told again, it shows
    work = (await memory.user_profile(user)).line("work")
    assert work is not None and work.text == "Works as nurse in Bath"


async def test_the_wider_family_and_the_people_around_the_user_reach_the_profile(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("kai")
    ids = await tell(memory, user, [(0, "yo, name's Kai. my gf Jess and I have been together 2 years", "Nice!"),
                                    (1, "my grandma Rose turned 90 and my roommate Dev threw her a party", "Aw!")])
    profile = await memory.user_profile(user)
    name, people = profile.line("name"), profile.line("people")
    assert name is not None and name.text == "Name: Kai"
    # the partner first, then the family, then friends and the people around
    assert people is not None and people.text == (
        f"People: girlfriend Jess; grandma Rose (90 in {T0 + timedelta(weeks=1):%b %Y}); roommate Dev")
    assert {(f.predicate, f.label) for f in await memory.typed_facts(user) if f.current} >= {
        ("PARTNER_OF", "Jess"), ("RELATIVE_OF", "Rose"), ("FRIEND_OF", "Dev")}
    # "I broke up with my gf" ends her; forgetting the message that named grandma and Dev forgets them
    await tell(memory, user, [(2, "I broke up with my gf Jess", "I'm sorry.")])
    await memory.forget(user, exchange_id=ids[1])
    assert (await memory.user_profile(user)).line("people") is None


async def test_a_childs_age_follows_them_and_a_newer_one_replaces_it(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("priya2")
    ids = await tell(memory, user, [(0, "my daughter Kavya is 4 and my 7 year old son Arjun loves cricket", "Aw."),
                                    (40, "my daughter Kavya just turned 5!", "Happy birthday to her!")])
    people = (await memory.user_profile(user)).line("people")
    said = T0 + timedelta(weeks=0)
    # Kavya's newer age replaces the older one; Arjun's was told over half a year before now, so it says when
    # (both said in one message: in either order)
    assert people is not None and set(people.text.removeprefix("People: ").split("; ")) == {
        f"daughter Kavya (5 in {T0 + timedelta(weeks=40):%b %Y})", f"son Arjun (7 in {said:%b %Y})"}
    ages = {(f.obj, f.current) for f in await memory.typed_facts(user) if f.predicate == "AGE_OF"}
    assert ages == {("kavya 4", False), ("kavya 5", True), ("arjun 7", True)}
    # forgetting the birthday message brings the age before it back
    await memory.forget(user, exchange_id=ids[1])
    people = (await memory.user_profile(user)).line("people")
    assert people is not None
    assert f"daughter Kavya (4 in {said:%b %Y})" in people.text.removeprefix("People: ").split("; ")


async def test_someone_who_died_leaves_the_people_and_is_remembered_as_a_loss(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("elena")
    ids = await tell(memory, user, [(0, "My husband Marco is Italian and my mom Ana lives with us", "Lovely."),
                                    (1, "my grandma Rose died last month, it's been hard", "I'm so sorry."),
                                    (6, "my husband passed away in March", "I'm so sorry for your loss.")])
    profile = await memory.user_profile(user)
    people, loss = profile.line("people"), profile.line("loss")
    assert people is not None and people.text == "People: mom Ana"
    said = T0 + timedelta(weeks=1)
    month = datetime(said.year - (said.month == 1), (said.month - 2) % 12 + 1, 1)
    # the one the user said died unnamed is the husband told of; each with when it happened
    assert loss is not None and loss.text == f"Passed away: grandma Rose ({month:%b %Y}); husband Marco (Mar 2025)"
    # a question about the weekend shares no word with the message: the profile carries it, after the people
    text = (await memory.get_conversation_context(user, "any ideas for the weekend?", max_tokens=600)
            ).to_context_string(600)
    assert "- People: mom Ana\n- " + loss.text in text.split("\n\n")[0]
    # forgetting the message brings Marco back among the people, and the loss goes
    await memory.forget(user, exchange_id=ids[2])
    profile = await memory.user_profile(user)
    people, loss = profile.line("people"), profile.line("loss")
    assert people is not None and "husband Marco" in people.text
    assert loss is not None and loss.text == f"Passed away: grandma Rose ({month:%b %Y})"


async def test_what_the_user_does_not_eat_or_drink_reaches_the_context_and_ends_when_they_say_so(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user, other = uid("omar"), uid("no-rules")
    ids = await tell(memory, user, [(0, "I stopped eating meat in January and I don't drink", "Good for you."),
                                    (1, "I'm allergic to peanuts", "Noted."),
                                    (2, "I eat meat again, couldn't do it", "That's fine!")])
    await tell(memory, other, [(0, "I eat meat again, the diet failed", "Okay.")])
    line = (await memory.user_profile(user)).line("diet")
    assert line is not None and line.text == "Diet: avoids alcohol"
    # forgetting the message that ended it brings the rule back, dated as the user said it
    await memory.forget(user, exchange_id=ids[2])
    said = T0.year - (T0.month == 1)  # "in January", said on 3 February: this year's
    # a question about dinner shares no word with either message: the profile carries both
    text = (await memory.get_conversation_context(user, "what should I cook tonight?", max_tokens=600)
            ).to_context_string(600)
    assert text.split("\n\n")[0].splitlines()[1:3] == [
        "- Allergic to: peanuts", f"- Diet: avoids meat (since Jan {said}), alcohol"]
    # an ending of a rule never told of keeps nothing; forgetting the message takes both away, in the graph too
    assert (await memory.user_profile(other)).line("diet") is None
    assert not [f for f in await memory.typed_facts(other) if f.predicate == "AVOIDS"]
    await memory.forget(user, exchange_id=ids[0])
    assert (await memory.user_profile(user)).line("diet") is None
    assert not [f for f in await memory.typed_facts(user) if f.predicate == "AVOIDS"]


async def test_a_student_reads_as_one_and_a_first_job_replaces_it(memory: HierarchicalMemoryManager,
                                                                   uid: Callable[[str], str]) -> None:
    user = uid("dev")
    await tell(memory, user, [(0, "yo im Dev, im studying comp sci at the University of Leeds", "Nice!")])
    profile = await memory.user_profile(user)
    assert [ln.text for ln in profile.lines] == ["Name: Dev", "Comp sci student at University of Leeds"]
    ids = await tell(memory, user, [(1, "I just graduated!!", "Congrats!")])
    work = (await memory.user_profile(user)).line("work")  # the studies end, and the school with them
    assert work is not None and work.text.startswith("Former comp sci student at University of Leeds (until ")
    await tell(memory, user, [(2, "im a junior dev at Monzo now", "Nice!")])
    work = (await memory.user_profile(user)).line("work")
    assert work is not None and work.text.startswith("Works as junior dev at Monzo")
    await memory.forget(user, exchange_id=ids[0])  # the job stands without the graduation
    work = (await memory.user_profile(user)).line("work")
    assert work is not None and work.text.startswith("Works as junior dev at Monzo")


async def test_graduating_ends_only_a_students_studies(memory: HierarchicalMemoryManager,
                                                       uid: Callable[[str], str]) -> None:
    user = uid("nia")
    await tell(memory, user, [(0, "I work as a nurse at St Mary", "Hi!"),
                              (1, "I graduated in 2015 and have loved the job since", "Nice.")])
    work = (await memory.user_profile(user)).line("work")
    assert work is not None and work.text == "Works as nurse at St Mary"


async def test_the_profile_stays_within_its_small_budget(memory: HierarchicalMemoryManager,
                                                         uid: Callable[[str], str]) -> None:
    user = uid("cy")
    chatter = [(0, f"I love {hobby} and my friend {name} joins me.", "Nice.")
               for hobby, name in [("chess", "Mia"), ("climbing", "Noah"), ("baking", "Olga"), ("sailing", "Piet"),
                                   ("poetry", "Quinn"), ("karaoke", "Rosa"), ("fishing", "Sven")]]
    await tell(memory, user, chatter)
    ctx = await memory.get_conversation_context(user, "hi", max_tokens=1500)
    from memory.tokens import count_tokens
    head = ctx.to_context_string(1500).split("\n\n")[0]
    assert head.startswith("User profile:") and count_tokens(head) <= 80
    small = ctx.to_context_string(120)
    assert count_tokens(small) <= 120 and count_tokens(small.split("\n\n")[0]) <= 40


async def test_forget_of_the_last_exchange_brings_the_old_fact_back(memory: HierarchicalMemoryManager,
                                                                    uid: Callable[[str], str]) -> None:
    user = uid("di")
    await tell(memory, user, WEEKS)
    await memory.forget(user, last=True)
    assert ("LIVES_IN", "Paris") in current(await memory.typed_facts(user))
    assert (await memory.user_profile(user)).line("home").text.startswith("Lives in Paris")  # type: ignore[union-attr]
    await memory.forget(user)
    assert await memory.typed_facts(user) == []
    assert (await memory.user_profile(user)).lines == ()


async def test_the_user_corrects_a_wrong_line(memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("ed")
    await tell(memory, user, WEEKS[:2])
    profile = await memory.correct_profile(user, "work", "Works as a midwife")
    assert profile.line("work") is not None and profile.line("work").text == "Works as a midwife"  # type: ignore[union-attr]
    profile = await memory.correct_profile(user, "pets", None)
    assert profile.line("pets") is None
    ctx = await memory.get_conversation_context(user, "hi", max_tokens=600)
    assert "midwife" in ctx.to_context_string(600) and "Rex" not in ctx.to_context_string(600).split("\n\n")[0]
    with pytest.raises(InvalidInput):
        await memory.correct_profile(user, "shoe size", "42")
    # new facts behind a corrected line replace the correction
    await tell(memory, user, [(8, "I work as a paramedic now.", "Exciting!")])
    assert (await memory.user_profile(user)).line("work").text.startswith("Works as paramedic")  # type: ignore[union-attr]
    exported = await memory.export(user)
    assert exported["profile"]["dm"]["lines"][0]["key"] == "name"
    assert {f["object"] for f in exported["typed_facts"]["dm"]} >= {"Paris", "nurse", "paramedic"}
    # each fact says when the user told it: the paramedic job the message of week 8
    [paramedic] = [f for f in exported["typed_facts"]["dm"] if f["object"] == "paramedic"]
    assert paramedic["told"] == (T0 + timedelta(weeks=8)).isoformat()
    removed = await memory.forget(user)
    assert removed["facts"] >= 1  # the corrections went with the user
    assert (await memory.counts(user))["facts"] == 0


# ---- with an LLM extractor on a fake OpenAI-compatible server ------------------------------------

@pytest_asyncio.fixture
async def llm_memory(bundled: Addresses, own_postgres_dsn: str, llm_server: FakeLLM, tmp_path: Path,
                     make_manager: ManagerFactory) -> AsyncIterator[HierarchicalMemoryManager]:
    llm_server.reset("script")
    own = replace(bundled, postgres_dsn=own_postgres_dsn)
    settings = settings_for(own, tmp_path, llm={"base_url": llm_server.base_url, "extraction": True,
                                                "timeout_seconds": 2.0})
    manager = await make_manager(settings)
    # the worker's session job may summarise finished sessions while a test runs: its calls get
    # an answer of their own and leave the extraction script alone
    llm_server.scripted = {SESSION_INSTRUCTIONS[:40]: "The user talked about their week."}
    yield manager
    llm_server.reset("script")


def llm_answer(summary: str, relations: list[dict[str, str]], name: str | None = None) -> dict[str, Any]:
    return {"content": json.dumps({"exchanges": [{"id": "1", "summary": summary, "entities": [],
                                                  "relations": relations, "profile": {"name": name}}]})}


async def test_llm_extraction_over_weeks_with_bad_answers_in_between(
        llm_memory: HierarchicalMemoryManager, llm_server: FakeLLM, uid: Callable[[str], str]) -> None:
    user = uid("fy")
    llm_server.script = [
        llm_answer("Fy, a nurse, lives in Paris.", [{"predicate": "LIVES_IN", "object": "Paris"},
                                                    {"predicate": "WORKS_AS", "object": "nurse"}], name="Fy"),
        {"content": '{"exchanges": [{"id": "1", "summary": "Rex'},  # truncated
        {"content": "Sorry, here you go: not json"},                # the repair fails too: rules take over
        {"refusal": "I won't."},                                    # refused, then a valid repair
        llm_answer("Fy's friend Mel visited.", [{"predicate": "FRIEND_OF", "object": "Mel", "detail": "friend"}]),
        {"timeout": True},                                          # timeout: rules take over
        llm_answer("Fy moved to Berlin; friend Melanie helped.",
                   [{"predicate": "LIVES_IN", "object": "Berlin"},
                    {"predicate": "FRIEND_OF", "object": "Melanie", "detail": "friend"}]),
    ]
    history = [(0, "I'm a nurse in Paris, by the way my name is Fy.", "Hello Fy."),
               (1, "My dog Rex is sick.", "Poor Rex."),
               (2, "Mel came over for dinner.", "Nice."),
               (3, "I work as a nurse, long shifts this week.", "Take care."),
               (6, "Melanie helped me move to Berlin!", "Good friend.")]
    ids = await tell(llm_memory, user, history)
    facts = await llm_memory.typed_facts(user)
    assert current(facts) == {("NAME", "Fy"), ("LIVES_IN", "Berlin"), ("WORKS_AS", "nurse"),
                              ("HAS_PET", "Rex"), ("FRIEND_OF", "Melanie")}
    by_label = {f.label: f for f in facts}
    assert by_label["Paris"].valid_to == T0 + timedelta(weeks=6)
    assert by_label["Melanie"].support == tuple(sorted((ids[2], ids[4]))) and by_label["Melanie"].aliases == ("mel",)
    assert by_label["Rex"].support == (ids[1],)  # from the rules, after two bad answers
    assert by_label["nurse"].support == tuple(sorted((ids[0], ids[3])))  # from the rules, after the timeout
    stats = llm_memory.extraction_stats()
    assert (stats["fallbacks"], stats["repairs"], stats["llm_exchanges"]) == (2, 2, 3)
    records = {r.exchange_id: r.summary for r in await llm_memory.summaries.records(user)}
    assert records[ids[0]] == "Fy, a nurse, lives in Paris."
    assert records[ids[1]].startswith("User: My dog Rex is sick.")
    profile = await llm_memory.user_profile(user)
    assert [ln.key for ln in profile.lines] == ["name", "home", "work", "people", "pets"]


async def test_rolling_summaries_are_exported_and_go_with_forgotten_exchanges(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user = uid("gil")
    await tell(memory, user, WEEKS[:2], guild="g1")
    await memory.set_rolling_summary(user, "g1", "c1", "Gil's dog Rex chewed shoes")
    await memory.set_rolling_summary(user, None, "dm", "a DM summary")
    exported = await memory.export(user)
    assert exported["rolling_summaries"] == {"g:g1 c1": "Gil's dog Rex chewed shoes", "dm dm": "a DM summary"}
    await memory.forget(user, topic="Rex")
    assert await memory.rolling_summary(user, "g1", "c1") is None  # it had folded the forgotten text in
    assert await memory.rolling_summary(user, None, "dm") == "a DM summary"  # another scope: untouched
    assert "HAS_PET" not in {f.predicate for f in await memory.typed_facts(user, "g1")}
