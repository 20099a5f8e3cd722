"""ChatLLM against a fake OpenAI-compatible server: answers, usage, tool calls, and every failure."""

from __future__ import annotations

import logging

import pytest

from bot.llm import ChatLLM, LLMUnavailable, Prompt, Turn, parse_fact_arguments
from memory.launcher import free_port
from memory.settings import LLMSettings
from tests.bot.fake_llm import FakeLLM

PROMPT = Prompt(system="be brief", turns=(Turn("user", "hi"), Turn("assistant", "hello")),
                user="how are you?")


def _settings(base_url: str, **kw: object) -> LLMSettings:
    return LLMSettings(base_url=base_url, model="fake-model", timeout_seconds=kw.pop("timeout", 5.0), **kw)


async def test_completion_returns_text_and_usage(fake_llm: FakeLLM) -> None:
    async with ChatLLM(_settings(fake_llm.base_url, max_tokens=77, temperature=0.2)) as llm:
        done = await llm.complete(PROMPT)
    assert done.text == "ECHO: how are you?"
    assert done.prompt_tokens > 0 and done.completion_tokens > 0
    sent = fake_llm.requests[0]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert (sent["model"], sent["max_tokens"], sent["temperature"]) == ("fake-model", 77, 0.2)
    assert "tools" not in sent


async def test_timeout_is_llm_unavailable(fake_llm: FakeLLM) -> None:
    fake_llm.reset("timeout")
    async with ChatLLM(_settings(fake_llm.base_url, timeout=0.3), max_retries=0) as llm:
        with pytest.raises(LLMUnavailable, match="timed out"):
            await llm.complete(PROMPT)


async def test_server_error_is_llm_unavailable(fake_llm: FakeLLM) -> None:
    fake_llm.reset("error")
    async with ChatLLM(_settings(fake_llm.base_url), max_retries=0) as llm:
        with pytest.raises(LLMUnavailable, match="HTTP 500"):
            await llm.complete(PROMPT)


async def test_unreachable_endpoint_is_llm_unavailable() -> None:
    async with ChatLLM(_settings(f"http://127.0.0.1:{free_port()}/v1"), max_retries=0) as llm:
        with pytest.raises(LLMUnavailable, match="cannot reach"):
            await llm.ping(request_timeout=2)


async def test_reply_without_choices_is_llm_unavailable(fake_llm: FakeLLM) -> None:
    fake_llm.reset("malformed")
    async with ChatLLM(_settings(fake_llm.base_url)) as llm:
        with pytest.raises(LLMUnavailable, match="no choices"):
            await llm.complete(PROMPT)


async def test_tool_call_returns_the_fact(fake_llm: FakeLLM) -> None:
    fake_llm.reset("tool")
    async with ChatLLM(_settings(fake_llm.base_url)) as llm:
        done = await llm.complete(PROMPT, tools=True)
    assert done.facts == ("my favourite tea is sencha",)
    assert done.text == ""
    assert fake_llm.requests[0]["tools"][0]["function"]["name"] == "remember_fact"


async def test_malformed_tool_call_is_ignored_with_a_log(fake_llm: FakeLLM,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    fake_llm.reset("tool", text="Sure thing.")
    fake_llm.tool_arguments = '{"fact": 42'
    async with ChatLLM(_settings(fake_llm.base_url)) as llm:
        with caplog.at_level(logging.WARNING, logger="bot.llm"):
            done = await llm.complete(PROMPT, tools=True)
    assert (done.text, done.facts) == ("Sure thing.", ())
    assert "malformed arguments" in caplog.text


async def test_malformed_tool_call_and_no_text_is_llm_unavailable(fake_llm: FakeLLM) -> None:
    fake_llm.reset("tool")
    fake_llm.tool_arguments = '{"other": "x"}'
    async with ChatLLM(_settings(fake_llm.base_url)) as llm:
        with pytest.raises(LLMUnavailable, match="no text"):
            await llm.complete(PROMPT, tools=True)


@pytest.mark.parametrize("raw, expected", [
    ('{"fact": "  I   like  tea "}', "I like tea"),
    ('{"fact": ""}', None),
    ('{"fact": ["a"]}', None),
    ('["fact"]', None),
    ("not json", None),
    (None, None),
    ('{"fact": "' + "x" * 501 + '"}', None),
])
def test_parse_fact_arguments(raw: object, expected: str | None) -> None:
    assert parse_fact_arguments(raw) == expected


def test_chat_llm_needs_a_base_url() -> None:
    with pytest.raises(ValueError, match="base_url"):
        ChatLLM(LLMSettings())
