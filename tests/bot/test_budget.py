"""The whole prompt under LLM__CONTEXT_TOKENS: what is trimmed first, counted with the real tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

from bot.budget import NOTES_FLOOR, plan_prompt
from bot.chat import ChatHandler, IncomingMessage
from bot.llm import ChatLLM, Turn
from memory.manager import HierarchicalMemoryManager
from memory.settings import LLMSettings
from memory.tokens import count_tokens
from tests.bot.conftest import bot_settings
from tests.bot.fake_llm import FakeLLM

TURNS = tuple(t for i in range(6) for t in (Turn("user", f"question {i} " + "word " * 50),
                                            Turn("assistant", f"answer {i} " + "word " * 50)))
SUMMARY = "\n".join(f"- line {i}: " + "talk " * 20 for i in range(10))


def test_everything_fits_a_large_budget() -> None:
    plan = plan_prompt(100_000, "persona", "hello", TURNS, SUMMARY, 1000)
    assert (plan.turns, plan.summary, plan.notes_tokens, plan.message) == (TURNS, SUMMARY, 1000, "hello")


def test_notes_shrink_first_then_the_oldest_turns_then_the_summary() -> None:
    full = sum(count_tokens(t.content) + 4 for t in TURNS) + count_tokens(SUMMARY) + 8
    base = count_tokens("persona") + 8 + count_tokens("hello")
    plan = plan_prompt(base + full + 300, "persona", "hello", TURNS, SUMMARY, 1000)
    assert plan.turns == TURNS and plan.summary == SUMMARY and plan.notes_tokens == 300
    plan = plan_prompt(base + full + 100, "persona", "hello", TURNS, SUMMARY, 1000)
    assert plan.turns == TURNS[2:]  # the oldest exchange (two turns) went, notes keep their floor
    assert plan.notes_tokens >= NOTES_FLOOR and plan.summary == SUMMARY
    plan = plan_prompt(base + 400, "persona", "hello", TURNS, SUMMARY, 1000)
    assert plan.turns == () and SUMMARY.endswith(plan.summary) and plan.summary.startswith("- line ")
    assert "line 0" not in plan.summary and "line 9" in plan.summary  # the newest lines stay
    assert plan.notes_tokens >= NOTES_FLOOR


def test_a_huge_message_is_cut_to_leave_room() -> None:
    plan = plan_prompt(1000, "persona", "blah " * 5000, (), "", 500)
    assert count_tokens(plan.message) <= 500 and plan.notes_tokens > 0


async def test_the_handler_keeps_the_prompt_within_the_context_window(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    for i in range(4):
        await memory.store_conversation(uid, f"long story {i} " + "detail " * 300, "ok " * 100,
                                        guild_id="g1", channel_id="c1")
    await memory.flush()
    settings = bot_settings(fake_llm, tmp_path, history_exchanges=4)
    settings.llm = LLMSettings(base_url=fake_llm.base_url, model="fake-model", timeout_seconds=2.0,
                               context_tokens=2000, max_tokens=300)
    fake_llm.reset("echo")
    reply = await ChatHandler(memory, chat_llm, settings).handle(
        IncomingMessage(uid, "what was the last story about?", "g1", "c1"))
    assert reply is not None and reply.kind == "answer"
    sent = fake_llm.requests[-1]["messages"]
    tools = fake_llm.requests[-1].get("tools")
    assert tools  # the model's tools go with the prompt and take their share of the window
    assert sum(count_tokens(m["content"]) + 4 for m in sent) + count_tokens(json.dumps(tools)) <= 2000 - 300
    assert sent[-1]["content"] == "what was the last story about?"
    assert 0 < len(sent) - 2 < 8  # some verbatim turns, not all four exchanges


async def test_a_message_cut_for_the_model_is_remembered_whole(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    # a long paste (a log read from message.txt) fits the archive but not a small model's window
    settings = bot_settings(fake_llm, tmp_path)
    settings.llm = LLMSettings(base_url=fake_llm.base_url, model="fake-model", timeout_seconds=2.0,
                               context_tokens=1500, max_tokens=300)
    fake_llm.reset("prompt")
    paste = "why does the build fail?\n" + "".join(f"step {i}: ok\n" for i in range(2000)) + "step 2000: FAILED"
    reply = await ChatHandler(memory, chat_llm, settings).handle(IncomingMessage(uid, paste, "g1", "c1"))
    assert reply is not None and reply.kind == "answer"
    sent = fake_llm.requests[-1]["messages"][-1]["content"]
    assert sent.startswith("why does the build fail?") and "FAILED" not in sent
    [stored] = (await memory.export(uid))["exchanges"]
    assert stored["user_message"] == paste
