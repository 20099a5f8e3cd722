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
    assert [t["function"]["name"] for t in first["tools"]] == ["remember_fact", "retrieve_user_info",
                                                                  "forget_memories", "set_time_zone"]
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


async def test_forget_memories_only_proposes_and_the_user_confirms(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    # the model used to answer "done, forgotten" to "forget my address" while every tier kept it
    await memory.store_conversation(uid, "my address is 12 Elm Street", "Noted.", guild_id="g1")
    await memory.store_conversation(uid, "I play the cello", "Lovely.", guild_id="g1")
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    fake_llm.reset("script")
    fake_llm.script = [{"tool_calls": [("forget_memories", json.dumps({"what": "topic", "topic": "Elm Street"}))]},
                       {"content": "Press the button below and I'll forget your address."}]
    reply = await handler.handle(_msg(uid, "please forget my address at Elm Street"))
    assert reply is not None and reply.forget is not None
    assert reply.forget.kwargs == {"guild_id": "g1", "topic": "Elm Street"}
    question = "Forget our exchanges about “Elm Street” in this server (1 exchange so far)?"
    assert reply.forget.question == question and question in _tool_results(fake_llm.requests[1])[0]
    assert "You cannot erase memories yourself" in fake_llm.requests[0]["messages"][0]["content"]
    said = [e["user_message"] for e in (await memory.export(uid))["exchanges"]]
    assert "my address is 12 Elm Street" in said  # nothing erased by the model itself


async def test_a_forget_proposal_the_model_gets_wrong_is_refused_back_to_it(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    fake_llm.reset("script")
    fake_llm.script = [{"tool_calls": [("forget_memories", json.dumps({"what": "topic"})),
                                       ("forget_memories", json.dumps({"what": "other users"})),
                                       ("forget_memories", "{not json")]},
                       {"content": "What should I forget?"}]
    reply = await handler.handle(_msg(uid, "forget it"))
    assert reply is not None and reply.forget is None and reply.text == "What should I forget?"
    results = _tool_results(fake_llm.requests[1])
    assert results[0] == "not proposed (name the topic to forget); ask the user what to forget"
    assert results[1] == results[2] and results[1].startswith("error: the arguments must be JSON")


async def test_without_tools_the_model_is_told_to_point_at_the_command(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path, remember_tool=False))
    fake_llm.reset("fixed", text="Use /memory forget for that.")
    reply = await handler.handle(_msg(uid, "forget everything about me"))
    assert reply is not None and reply.forget is None
    assert "tools" not in fake_llm.requests[0]
    assert "tell them to use /memory forget" in fake_llm.requests[0]["messages"][0]["content"]


async def test_forget_what_i_just_said_names_the_exchange_before_the_request(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    # "last" pressed after the request is stored would forget the request itself
    from bot.reports import forget_now

    await memory.store_conversation(uid, "I cheated on my exam", "Hmm.", guild_id="g1", channel_id="tools")
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    fake_llm.reset("script")
    fake_llm.script = [{"tool_calls": [("forget_memories", json.dumps({"what": "last"}))]},
                       {"content": "Press the button and it's gone."}]
    reply = await handler.handle(_msg(uid, "forget what I just said"))
    assert reply is not None and reply.forget is not None
    assert reply.forget.question == "Forget our last exchange in this server?"
    assert "Forgotten." in await forget_now(memory, uid, reply.forget)
    assert [e["user_message"] for e in (await memory.export(uid))["exchanges"]] == ["forget what I just said"]


async def test_a_forget_of_a_topic_nothing_mentions_goes_back_to_the_model(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    # "forget my address" said as "I live at 12 Elm Street": a button for "address" would forget nothing
    await memory.store_conversation(uid, "I live at 12 Elm Street", "Noted.", guild_id="g1")
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    fake_llm.reset("script")
    fake_llm.script = [{"tool_calls": [("forget_memories", json.dumps({"what": "topic", "topic": "address"}))]},
                       {"tool_calls": [("forget_memories", json.dumps({"what": "topic", "topic": "Elm Street"}))]},
                       {"content": "Press the button to forget where you live."}]
    reply = await handler.handle(_msg(uid, "forget my address"))
    assert reply is not None and reply.forget is not None
    assert reply.forget.kwargs == {"guild_id": "g1", "topic": "Elm Street"}
    first, second = _tool_results(fake_llm.requests[2])
    assert first.startswith("not proposed: nothing remembered here mentions 'address'")
    assert second.startswith("the user will be asked: Forget our exchanges about “Elm Street” in this server "
                             "(1 exchange so far)?")


async def test_telling_the_bot_where_you_live_sets_your_time_zone(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path))
    fake_llm.reset("script")
    fake_llm.script = [{"tool_calls": [("set_time_zone", json.dumps({"zone": "Lisboa"}))]},
                       {"tool_calls": [("set_time_zone", json.dumps({"zone": "lisbon"}))]},
                       {"content": "Got it: Lisbon time from now on."}]
    reply = await handler.handle(_msg(uid, "I live in Lisbon, please use my local time"))
    assert reply is not None and reply.text == "Got it: Lisbon time from now on."
    refused, done = _tool_results(fake_llm.requests[2])
    assert refused == ("not set: 'Lisboa' is not a time zone. Use a zone you know covers where the user lives "
                       "(Europe/Lisbon for Porto), or ask them for a big city near them that shares their time")
    assert done.startswith("set: Europe/Lisbon; it is ")
    assert await memory.time_zone(uid) == "Europe/Lisbon"  # the user's own, the same in every server
    fake_llm.reset("prompt")  # the next message's prompt is in their time
    reply = await handler.handle(_msg(uid, "what time is it for me?", guild=None))
    assert reply is not None and "where the user is (Europe/Lisbon)" in reply.text



async def test_a_search_gets_only_the_room_the_models_window_has_left(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, uid: str, tmp_path: Path) -> None:
    from memory.settings import LLMSettings
    from memory.tokens import count_tokens

    for i in range(30):
        await memory.store_conversation(uid, f"trip {i}: we hiked the ridge above the lake " + "and more " * 20,
                                        "Sounds great!", guild_id="g1")
    await memory.flush()
    search = [{"tool_calls": [("retrieve_user_info", json.dumps({"query": "hiking trips"}))]},
              {"content": "You hiked a lot."}]
    results = []
    for window in (8192, 2600, 1300):
        settings = bot_settings(fake_llm, tmp_path)
        settings.llm = LLMSettings(base_url=fake_llm.base_url, model="fake-model", timeout_seconds=2.0,
                                   context_tokens=window, max_tokens=300)
        fake_llm.reset("script")
        fake_llm.script = list(search)
        reply = await ChatHandler(memory, chat_llm, settings).handle(_msg(uid, "where did I hike?"))
        assert reply is not None and reply.text == "You hiked a lot."
        [result] = _tool_results(fake_llm.requests[1])
        results.append(result)
        second = fake_llm.requests[1]
        sent = sum(count_tokens(m["content"] or "") + 4 for m in second["messages"])
        assert sent + count_tokens(json.dumps(second["tools"])) <= window - 300
    big, _, small = results  # the middle one: whatever fits, checked above with the rest of the request
    assert "hiked the ridge" in big and count_tokens(big) <= 400
    assert small == "no room left in this reply for more memories; answer with what you have"
