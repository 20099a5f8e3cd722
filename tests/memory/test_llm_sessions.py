"""Session summaries written by the LLM (memory.llm_sessions) through the real manager and servers,
against a fake OpenAI-compatible server on a real socket: good, empty, malformed, refused and cut-off
answers, a timeout (which ends the run), and a guild over its daily token budget; what the session
table then holds."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from memory import HierarchicalMemoryManager, sessions
from memory.launcher import Addresses
from memory.sessions import build
from tests.bot.fake_llm import FakeLLM
from tests.memory.conftest import ManagerFactory, settings_for

DAY = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=10)
TALKS = [  # one session a day (two turns, ten minutes apart)
    [("I adopted a greyhound called Pepper on 3 May.", "Congratulations on Pepper!"),
     ("Pepper sleeps on the sofa all day.", "Greyhounds love sofas.")],
    [("My violin recital is on Friday in Lisbon.", "Good luck in Lisbon!"),
     ("The piece is by Sibelius, 31 minutes long.", "A beautiful concerto.")],
    [("I repaired my bicycle chain.", "Nice work."), ("Next I'll true the rear wheel.", "Good plan.")],
    [("My sister Maria visits in June.", "Lovely."), ("We'll go to Porto together.", "Have fun.")],
]
GOOD = ["The user adopted a greyhound, Pepper, on 3 May; Pepper sleeps on the sofa.",
        "The user plays a 31-minute Sibelius piece at a violin recital in Lisbon on Friday."]


@pytest_asyncio.fixture
async def open_memory(bundled: Addresses, own_postgres_dsn: str, llm_server: FakeLLM, tmp_path: Path,
                      make_manager: ManagerFactory) -> AsyncIterator[Callable[..., Any]]:
    """A manager with LLM extraction on the fake server and no worker running, so the only calls made
    are the session summaries the test asks for."""
    llm_server.reset("script")
    own = replace(bundled, postgres_dsn=own_postgres_dsn)

    async def make(**llm_settings: Any) -> HierarchicalMemoryManager:
        values = {"base_url": llm_server.base_url, "extraction": True, "timeout_seconds": 1.0, **llm_settings}
        return await make_manager(settings_for(own, tmp_path, llm=values, worker={"in_process": False}))

    yield make
    llm_server.reset("script")  # release a request still held by a scripted timeout


async def tell(memory: HierarchicalMemoryManager, user: str, guild: str, days: int) -> list[list[str]]:
    """The first ``days`` sessions of TALKS, one a day; the ids of each session's exchanges."""
    ids = []
    for day, turns in enumerate(TALKS[:days]):
        ids.append([await memory.store_conversation(user, u, b, guild_id=guild,
                                                    timestamp=DAY + timedelta(days=day, minutes=10 * i))
                    for i, (u, b) in enumerate(turns)])
    return ids


def heading(day: int) -> str:
    start = DAY + timedelta(days=day)
    return f"{start:%Y-%m-%d} 09:00\u201309:10, 2 exchanges"


async def rules_text(memory: HierarchicalMemoryManager, user: str, ids: list[str]) -> str:
    """What the rule-based path writes for the session of ``ids``."""
    return build([e for e in await memory.t.archive.exchanges(user) if e.id in ids]).text


async def test_the_llm_writes_each_session_body_and_our_code_keeps_the_dates(
        open_memory: Callable[..., Any], llm_server: FakeLLM) -> None:
    memory = await open_memory()
    user, guild = f"ls-{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}"
    ids = await tell(memory, user, guild, 3)
    long = "The user fixed a bicycle chain and plans to true the rear wheel next; " * 8
    llm_server.script = [{"content": GOOD[0]}, {"content": f"Summary: {GOOD[1]}\n"}, {"content": long}]
    assert await memory.summarise_sessions(force=True) == 3
    assert len(llm_server.requests) == 3  # one call per session
    assert all("response_format" not in r and r["max_tokens"] <= 200 for r in llm_server.requests)
    prompts = [r["messages"][1]["content"] for r in llm_server.requests]
    assert ["Pepper" in p for p in prompts] == [True, False, False]
    assert ["Lisbon" in p for p in prompts] == [False, True, False]

    stored = await memory.t.sessions.all(user)
    assert [s.exchange_ids for s in stored] == [tuple(i) for i in ids]
    assert [s.text for s in stored[:2]] == [f"{heading(0)}: {GOOD[0]}", f"{heading(1)}: {GOOD[1]}"]
    third = stored[2].text
    assert third.startswith(f"{heading(2)}: The user fixed a bicycle chain") and third.endswith("…")
    assert len(third) <= sessions.MAX_CHARS

    x = memory.extraction_stats()
    assert (x["session_summaries"], x["session_calls"], x["session_llm"], x["session_fallbacks"]) == (3, 3, 3, 0)
    assert x["calls"] == 3 and x["prompt_tokens"] > 0 and x["completion_tokens"] > 0
    assert await memory.summarise_sessions(force=True) == 0 and len(llm_server.requests) == 3  # nothing new: no call

    exported = await memory.export(user)
    assert [s["text"] for s in exported["session_summaries"]] == [s.text for s in stored]
    context = await memory.get_conversation_context(user, "What did we talk about recently?", guild_id=guild)
    assert f"{heading(1)}: {GOOD[1]}" in context.to_context_string(1500)
    await memory.forget(user, guild_id=guild, exchange_id=ids[0][1])
    assert [s.text for s in await memory.t.sessions.all(user)] == [s.text for s in stored[1:]]


async def test_unusable_answers_fall_back_to_the_rules_and_are_counted(
        open_memory: Callable[..., Any], llm_server: FakeLLM) -> None:
    memory = await open_memory()
    user, guild = f"lb-{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}"
    ids = await tell(memory, user, guild, 4)
    llm_server.script = [{"content": "   "},                                                 # empty
                  {"content": json.dumps({"summary": "a JSON object, not text"})},     # not plain text
                  {"refusal": "I can't summarise that."},                              # refused
                  {"content": "The user repaired a bicycle chain and then", "finish": "length"}]  # cut off
    assert await memory.summarise_sessions(force=True) == 4
    stored = await memory.t.sessions.all(user)
    assert [s.text for s in stored] == [await rules_text(memory, user, i) for i in ids]
    assert stored[0].text.startswith(heading(0)) and "Pepper" in stored[0].text
    x = memory.extraction_stats()
    assert (x["session_calls"], x["session_llm"], x["session_fallbacks"]) == (4, 0, 4)


async def test_a_timeout_falls_back_and_the_other_sessions_wait_for_the_next_run(
        open_memory: Callable[..., Any], llm_server: FakeLLM) -> None:
    memory = await open_memory(timeout_seconds=0.5)
    user, guild = f"lt-{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}"
    ids = await tell(memory, user, guild, 2)
    llm_server.script = [{"timeout": True}, {"content": GOOD[1]}]
    assert await memory.summarise_sessions(force=True) == 1  # no answer: the run stops there
    assert len(llm_server.requests) == 1
    assert await memory.summarise_sessions(force=True) == 1
    stored = await memory.t.sessions.all(user)
    assert [s.text for s in stored] == [await rules_text(memory, user, ids[0]), f"{heading(1)}: {GOOD[1]}"]
    x = memory.extraction_stats()
    assert (x["session_summaries"], x["session_calls"], x["session_llm"], x["session_fallbacks"]) == (2, 1, 1, 1)


async def test_a_guild_over_its_daily_budget_gets_rule_based_summaries_without_a_call(
        open_memory: Callable[..., Any], llm_server: FakeLLM) -> None:
    memory = await open_memory(extraction_daily_tokens=50)
    user, guild = f"lg-{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}"
    ids = await tell(memory, user, guild, 2)
    other = await memory.store_conversation(user, "I'm learning Finnish in DMs.", "Hyvä!", timestamp=DAY)
    # sessions go by user, scope and time: the DM scope comes first
    llm_server.script = [{"content": "I am the DM session, summarised by the LLM."}, {"content": GOOD[0]}]
    assert await memory.summarise_sessions(force=True) == 3
    # the guild's first session spends more than its 50 tokens; its second gets no call; the user's
    # DMs have a budget of their own
    assert len(llm_server.requests) == 2
    stored = {s.exchange_ids: s.text for s in await memory.t.sessions.all(user)}
    assert stored[tuple(ids[0])] == f"{heading(0)}: {GOOD[0]}"
    assert stored[tuple(ids[1])] == await rules_text(memory, user, ids[1])
    assert stored[(other,)].endswith(": I am the DM session, summarised by the LLM.")
    x = memory.extraction_stats()
    assert (x["session_calls"], x["session_llm"], x["session_over_budget"]) == (2, 2, 1)
    writer = memory.t.session_writer
    assert writer is not None and writer.budget is not None  # type: ignore[attr-defined]
    spent = await writer.budget.spent([f"g:{guild}", f"dm:{user}"])  # type: ignore[attr-defined]
    assert spent[f"g:{guild}"] > 50 and spent[f"dm:{user}"] > 0
    assert sum(spent.values()) == x["prompt_tokens"] + x["completion_tokens"]  # every token charged


async def test_llm_sessions_are_written_a_bounded_number_per_run(
        open_memory: Callable[..., Any], llm_server: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "WRITTEN_PER_RUN", 1)
    memory = await open_memory()
    user, guild = f"lr-{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}"
    ids = await tell(memory, user, guild, 2)
    llm_server.script = [{"content": GOOD[0]}, {"content": GOOD[1]}]
    assert await memory.summarise_sessions(force=True) == 1
    assert [s.exchange_ids for s in await memory.t.sessions.all(user)] == [tuple(ids[0])]
    assert await memory.summarise_sessions(force=True) == 1  # the next run takes the one left
    assert [s.text for s in await memory.t.sessions.all(user)] == [f"{heading(0)}: {GOOD[0]}",
                                                                   f"{heading(1)}: {GOOD[1]}"]
