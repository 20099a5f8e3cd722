"""The chat flow through ChatHandler against real memory tiers and the fake LLM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.chat import APOLOGY, CONTEXT_BEGIN, NO_LLM_NOTICE, ChatHandler, IncomingMessage, RollingSummary
from bot.llm import ChatLLM
from memory.manager import HierarchicalMemoryManager
from tests.bot.conftest import bot_settings
from tests.bot.fake_llm import FakeLLM


def _msg(uid: str, text: str, guild: str | None = "g1", channel: str = "c1") -> IncomingMessage:
    return IncomingMessage(user_id=uid, text=text, guild_id=guild, channel_id=channel, user_name="Ada")


async def test_answer_is_stored_with_usage(memory: HierarchicalMemoryManager, chat_llm: ChatLLM,
                                           fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    reply = await handler.handle(_msg(uid, "I just adopted a cat named Miso"))
    assert reply is not None and reply.kind == "answer"
    assert reply.text == "ECHO: I just adopted a cat named Miso"
    counts = await memory.counts(uid, guild_id="g1")
    assert counts["archive"] == 1
    assert await memory.counts(uid, dm=True) == {k: 0 for k in counts}
    rows = [r for r in await memory.usage(guild_id="g1") if r.user_id == uid]
    assert len(rows) == 1 and rows[0].requests == 1 and rows[0].prompt_tokens > 0


async def test_memory_reaches_the_prompt_in_the_same_scope_only(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str,
        tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    await handler.handle(_msg(uid, "My sister Ingrid lives in Tromsø", channel="c-a"))
    await memory.flush()
    fake_llm.reset("prompt")
    await handler.handle(_msg(uid, "Where does my sister live?", channel="c-b"))
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert "Ada: My sister Ingrid lives in Tromsø" in system  # the display name, stored with the exchange
    # the memories are dated, so the model is told today's date (either side of a midnight during the test)
    days = {f"Today is {datetime.now(UTC) - timedelta(minutes=m):%A %-d %B %Y} (UTC)." for m in (0, 5)}
    assert any(day in system for day in days)
    assert "You are talking with Ada" in system
    fake_llm.reset("prompt")
    await handler.handle(_msg(uid, "Where does my sister live?", guild=None, channel="dm"))
    assert "Ingrid" not in fake_llm.requests[-1]["messages"][0]["content"]  # DMs are another scope


async def test_turns_sent_verbatim_are_not_repeated_in_the_notes(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str,
        tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    await handler.handle(_msg(uid, "My sister Ingrid lives in Tromsø", channel="c-a"))
    await handler.handle(_msg(uid, "I bake sourdough bread every Sunday", channel="c-b"))
    await memory.flush()
    fake_llm.reset("prompt")
    await handler.handle(_msg(uid, "What do I bake on Sundays, and where does Ingrid live?", channel="c-b"))
    messages = fake_llm.requests[-1]["messages"]
    system, turns = messages[0]["content"], messages[1:-1]
    assert any("sourdough" in m["content"] for m in turns)  # this channel's last exchange, as a turn
    assert "sourdough" not in system  # ... so not again in the notes
    assert "Ingrid lives in Tromsø" in system  # the other channel's exchange is still remembered


async def test_llm_error_apologises_and_stores_nothing(memory: HierarchicalMemoryManager, chat_llm: ChatLLM,
                                                       fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    for mode in ("error", "timeout", "malformed"):
        fake_llm.reset(mode)
        reply = await handler.handle(_msg(uid, "hello?"))
        assert reply is not None and (reply.kind, reply.text) == ("llm_error", APOLOGY)
    assert (await memory.counts(uid))["archive"] == 0
    assert not [r for r in await memory.usage() if r.user_id == uid]


async def test_rate_limit_notice_once_per_window(memory: HierarchicalMemoryManager, chat_llm: ChatLLM,
                                                 fake_llm: FakeLLM, uid: str, tmp_path: Path,
                                                 frozen_rate_clock: float) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path, rate_limit_per_user=2,
                                                         rate_limit_window_seconds=600))
    replies = [await handler.handle(_msg(uid, f"message {i}")) for i in range(5)]
    kinds = [r.kind if r else None for r in replies]
    assert kinds == ["answer", "answer", "rate_limited", None, None]
    notice = replies[2]
    assert notice is not None
    # fixed windows: 499.6 s are left of the frozen 600 s window, said as 8 minutes
    assert notice.text == ("Sorry, you're sending messages faster than I can keep up. "
                           "Please try again in 8 minutes.")
    assert (await memory.counts(uid, guild_id="g1"))["archive"] == 2


async def test_tool_call_saves_a_fact(memory: HierarchicalMemoryManager, chat_llm: ChatLLM,
                                      fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    fake_llm.reset("tool")
    reply = await handler.handle(_msg(uid, "Please remember that my favourite tea is sencha"))
    assert reply is not None and reply.facts_saved == ("my favourite tea is sencha",)
    assert "sencha" in reply.text
    assert [f.text for f in await memory.facts(uid, guild_id="g1")] == ["my favourite tea is sencha"]
    assert await memory.facts(uid) == []  # saved in the guild scope only
    fake_llm.reset("prompt")
    await handler.handle(_msg(uid, "what tea should I buy?", channel="other"))
    assert "my favourite tea is sencha" in fake_llm.requests[-1]["messages"][0]["content"]


async def test_malformed_tool_call_with_text_still_answers(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str,
        tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    fake_llm.reset("tool", text="Noted!")
    fake_llm.tool_arguments = "{not json"
    reply = await handler.handle(_msg(uid, "remember I like jazz"))
    assert reply is not None and (reply.kind, reply.text, reply.facts_saved) == ("answer", "Noted!", ())
    assert await memory.facts(uid, guild_id="g1") == []
    assert (await memory.counts(uid, guild_id="g1"))["archive"] == 1


SUMMARY_PROMPT = "You maintain a running summary"


async def test_a_reply_to_an_older_answer_shows_the_model_that_answer(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str,
        tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path, history_exchanges=1))
    first = await handler.handle(_msg(uid, "suggest a name for my new kitten", channel="r"))
    last = await handler.handle(_msg(uid, "and what should I feed her?", channel="r"))
    assert first is not None and last is not None
    fake_llm.reset("prompt")
    liked = await handler.handle(IncomingMessage(uid, "I like that one!", "g1", "r", "Ada", replying_to=first.text))
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert f"The user's message replies to this earlier message of yours:\n{first.text}" in system
    # a reply to the answer already sent as a turn is not quoted again
    assert liked is not None
    await handler.handle(IncomingMessage(uid, "thanks", "g1", "r", "Ada", replying_to=liked.text))
    assert any(m["content"] == liked.text for m in fake_llm.requests[-1]["messages"][1:-1])
    assert "replies to this earlier message" not in fake_llm.requests[-1]["messages"][0]["content"]


async def test_old_exchanges_fold_into_the_rolling_summary(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str,
        tmp_path: Path) -> None:
    """The LLM's own summary (scripted, not an echo of its input) is what is stored and sent."""
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path, history_exchanges=1))
    fake_llm.reset("prompt")
    first_summary = "S1: owns a green folding bike."
    fake_llm.scripted = {SUMMARY_PROMPT: first_summary}
    for text in ("first: my bike is a green Brompton", "second: I ride it to work",
                 "third: it has a squeaky chain"):
        await handler.handle(_msg(uid, text, channel="roll"))
    last = fake_llm.requests[-1]["messages"]
    # the window holds one earlier exchange verbatim; the one before it was folded by the LLM
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user"]
    assert last[1]["content"] == "second: I ride it to work"
    summary_requests = [r for r in fake_llm.requests if r["messages"][0]["content"].startswith(SUMMARY_PROMPT)]
    assert len(summary_requests) == 1
    assert summary_requests[0]["messages"][1]["content"].startswith("Summary so far:\n(empty)\n\nNew exchanges:\n"
                                                                    "User: first: my bike is a green Brompton")
    state = RollingSummary.load(await memory.rolling_summary(uid, "g1", "roll"))
    assert state.text == first_summary and state.through is not None
    assert f"Earlier in this conversation (summary):\n{first_summary}" in last[0]["content"]
    assert await memory.rolling_summary(uid, "g1", "elsewhere") is None

    # the next fold gets the stored summary as its start, and its answer replaces it
    fake_llm.scripted = {SUMMARY_PROMPT: "S2: green folding bike, rides it to work."}
    await handler.handle(_msg(uid, "fourth: I oiled the chain", channel="roll"))
    fold = [r for r in fake_llm.requests if r["messages"][0]["content"].startswith(SUMMARY_PROMPT)][-1]
    assert fold["messages"][1]["content"].startswith(f"Summary so far:\n{first_summary}\n\nNew exchanges:\n"
                                                     "User: second: I ride it to work")
    state = RollingSummary.load(await memory.rolling_summary(uid, "g1", "roll"))
    assert state.text == "S2: green folding bike, rides it to work."
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert "Earlier in this conversation (summary):\nS2: green folding bike, rides it to work." in system
    assert first_summary not in system


async def test_without_llm_the_context_is_shown_and_the_notice_given_once(
        memory: HierarchicalMemoryManager, uid: str, tmp_path: Path) -> None:
    handler = ChatHandler(memory, None, bot_settings(None, tmp_path, history_exchanges=1))
    texts = ["my dog is called Pixel", "I live in Ghent", "I play the oboe"]
    replies = [await handler.handle(_msg(uid, t, guild=None, channel="dm")) for t in texts]
    assert all(r is not None and r.kind == "context" and CONTEXT_BEGIN in r.text for r in replies)
    assert [NO_LLM_NOTICE in r.text for r in replies if r] == [True, False, False]
    assert replies[2] is not None and "my dog is called Pixel" in replies[2].text
    # folded deterministically once it left the one-exchange window
    state = RollingSummary.load(await memory.rolling_summary(uid, None, "dm"))
    assert "my dog is called Pixel" in state.text
    assert (await memory.counts(uid, dm=True))["archive"] == 3
    # the stored stand-in reply names nothing: the user's entities are what the user said
    await memory.flush()
    labels = {r.label for r in await memory.profile(uid, limit=50)}
    assert {"Pixel", "Ghent", "oboe"} <= labels
    assert not {label.lower() for label in labels} & {"llm", "language", "context", "memory", "answer"}


async def test_invalid_message_is_refused_without_storing(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str,
        tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    reply = await handler.handle(_msg(uid, "bad\x00byte"))
    assert reply is not None and reply.kind == "invalid" and "NUL" in reply.text
    assert fake_llm.requests == []
    assert (await memory.counts(uid))["archive"] == 0


async def test_the_model_is_told_the_users_time_and_older_turns_fold_in_it(
        memory: HierarchicalMemoryManager, tmp_path: Path, uid: str) -> None:
    # no LLM: the reply is the prompt, and overflowing turns fold into lines the rules write
    handler = ChatHandler(memory, None, bot_settings(None, tmp_path, history_exchanges=1))
    await memory.set_time_zone(uid, "Asia/Kolkata")  # UTC+05:30
    first = datetime.now(UTC) - timedelta(minutes=5)
    await memory.store_conversation(uid, "my flight lands at noon", "Safe travels!", channel_id="c",
                                    timestamp=first)
    await memory.store_conversation(uid, "the hotel is near the station", "Handy.", channel_id="c")
    reply = await handler.handle(IncomingMessage(uid, "what did I say about the flight?", channel_id="c"))
    assert reply is not None
    local = first.astimezone(ZoneInfo("Asia/Kolkata"))
    assert f"- {local:%Y-%m-%d %H:%M} user: my flight lands at noon | you: Safe travels!" in reply.text
    assert f"It is {datetime.now(ZoneInfo('Asia/Kolkata')):%A %-d %B %Y}, " in reply.text
    assert "where the user is (Asia/Kolkata)" in reply.text
