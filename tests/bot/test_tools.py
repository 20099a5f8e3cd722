"""The model's memory tools through the chat handler, against the fake OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path

from bot.chat import ChatHandler, IncomingMessage
from bot.llm import ChatLLM
from memory.manager import HierarchicalMemoryManager
from tests.bot.conftest import bot_settings
from tests.bot.fake_llm import FakeLLM


def _msg(uid: str, text: str, guild: str | None = "g1") -> IncomingMessage:
    return IncomingMessage(user_id=uid, text=text, guild_id=guild, channel_id="tools")


def _tool_results(request: dict) -> list[str]:  # type: ignore[type-arg]
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


async def test_retrieve_user_info_searches_only_the_asking_users_scope(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    await memory.store_conversation(uid, "My dog is called Biscuit", "Cute name!", guild_id="g1")
    await memory.store_conversation(uid, "My dog in DMs is called Secret", "Ok", guild_id=None)
    await memory.store_conversation(uid + "x", "My dog is called Other", "Ok", guild_id="g1")
    await memory.flush()
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    fake_llm.reset("script")
    fake_llm.script = [{"tool_calls": [("retrieve_user_info", json.dumps({"query": "dog name"}))]},
                       {"content": "Your dog is Biscuit."}]
    reply = await handler.handle(_msg(uid, "what's my dog called again?"))
    assert reply is not None and reply.text == "Your dog is Biscuit."
    first, second = fake_llm.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["remember_fact", "retrieve_user_info"]
    [result] = _tool_results(second)
    assert "Biscuit" in result and "Secret" not in result and "Other" not in result


async def test_remember_fact_result_goes_back_to_the_model(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    fake_llm.reset("script")
    fake_llm.script = [{"tool_calls": [("remember_fact", json.dumps({"fact": "My birthday is 3 May",
                                                                     "category": "identity", "importance": 4}))]},
                       {"content": "Saved: your birthday is 3 May."}]
    reply = await handler.handle(_msg(uid, "remember that my birthday is 3 May"))
    assert reply is not None and reply.text == "Saved: your birthday is 3 May."
    assert reply.facts_saved == ("My birthday is 3 May",)
    assert _tool_results(fake_llm.requests[1]) == ["saved: My birthday is 3 May"]
    assert [(f.text, f.category, f.importance) for f in await memory.facts(uid, guild_id="g1")] == [
        ("My birthday is 3 May", "identity", 4)]


async def test_at_most_two_tool_rounds_then_an_answer_without_tools(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    fake_llm.reset("script")
    search = {"tool_calls": [("retrieve_user_info", json.dumps({"query": "anything"}))]}
    fake_llm.script = [search, search, {"content": "I could not find it."}]
    reply = await handler.handle(_msg(uid, "do you know my shoe size?"))
    assert reply is not None and reply.text == "I could not find it."
    assert ["tools" in r for r in fake_llm.requests] == [True, True, False]
    assert _tool_results(fake_llm.requests[2]) == ["nothing in memory matches that"] * 2
