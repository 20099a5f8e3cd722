"""Fixtures for the bot: a fake OpenAI-compatible server and (later) a real memory manager."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.bot.fake_llm import FakeLLM


@pytest_asyncio.fixture(scope="session")
async def fake_llm_server() -> AsyncIterator[FakeLLM]:
    server = await FakeLLM().start()
    yield server
    await server.aclose()


@pytest_asyncio.fixture
async def fake_llm(fake_llm_server: FakeLLM) -> FakeLLM:
    """The session's fake LLM, reset to echo mode with no recorded requests."""
    fake_llm_server.reset()
    return fake_llm_server
