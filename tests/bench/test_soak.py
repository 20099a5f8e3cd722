"""The soak's pieces on real servers: its chat endpoint, the simulated users, and the audit.

A whole soak run starts four servers and waits out three restarts (minutes on
this machine), so it is run by hand (``python -m bench.soak``), not here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from bench import soak
from bench.fake_chat import FakeChatServer
from bot.chat import ChatHandler
from bot.llm import ChatLLM, Prompt
from bot.settings import BotSettings
from memory.launcher import Addresses
from memory.manager import HierarchicalMemoryManager
from memory.models import ForgetTarget, Scope
from tests import servers


@pytest_asyncio.fixture
async def memory(bundled: Addresses, tmp_path: Path) -> AsyncIterator[HierarchicalMemoryManager]:
    user, password = bundled.neo4j_auth or ("neo4j", "")
    settings = BotSettings(_env_file=None, data_dir=tmp_path,
                           redis={"url": bundled.redis_url},
                           postgres={"dsn": await servers.create_database(bundled.postgres_dsn)},
                           neo4j={"uri": bundled.neo4j_uri, "user": user, "password": password,
                                  "database": bundled.neo4j_database})
    async with HierarchicalMemoryManager.from_env(settings) as manager:
        yield manager


async def test_the_fake_chat_endpoint_answers_an_openai_client() -> None:
    async with FakeChatServer() as server:
        settings = BotSettings(_env_file=None, llm={"base_url": server.base_url})
        async with ChatLLM(settings.llm) as llm:
            done = await llm.complete(Prompt(system="be brief", turns=(), user="  my cat  is called Miso "))
    assert done.text == "Noted: my cat is called Miso"
    assert server.requests == 1 and done.prompt_tokens > 0 and done.completion_tokens > 0


async def test_users_talk_through_the_handler_and_the_audit_finds_every_exchange(
        memory: HierarchicalMemoryManager, tmp_path: Path) -> None:
    args = soak.parse_args(["--users", "2", "--min-messages", "3", "--max-messages", "3", "--think-ms", "1"])
    tally = soak.Tally()
    done = asyncio.Event()
    done.set()  # no chaos: each user sends exactly --min-messages
    async with FakeChatServer() as server:
        settings = soak.soak_settings(tmp_path, "http://127.0.0.1:1", server.base_url, args)
        async with ChatLLM(settings.llm) as llm:
            handler = ChatHandler(memory, llm, settings)
            await asyncio.gather(*(soak.user_loop(i, handler, args, done, time.monotonic() + 60, tally)
                                   for i in range(2)))
    users = [soak.user_id(0), soak.user_id(1)]
    assert (tally.messages, tally.replies, len(tally.acknowledged), dict(tally.failed)) == (6, 6, 6, {})
    await memory.flush(timeout=60)
    result = await soak.audit(memory, tally, users)
    assert result == {"archived": 6, "lost": 0, "duplicated": 0, "stored_but_not_acknowledged": 0,
                      "missing_after_recovery": {"summaries": 0, "graph": 0}}

    # the audit notices each kind of damage
    tally.acknowledged["never-stored"] = users[0]
    first, second = sorted(x for x, u in tally.acknowledged.items() if u == users[1])[:2]
    scope = Scope(users[1], "soak-g1")  # odd users talk in a guild
    assert await memory.summaries.forget(ForgetTarget(users[1], scope, (first,))) == 1
    assert await memory.graph.forget(ForgetTarget(users[1], scope, (second,))) >= 1
    [text] = [e["user_message"] for e in (await memory.export(users[1]))["exchanges"] if e["id"] == first]
    await memory.store_conversation(users[1], text, "again", guild_id="soak-g1")
    await memory.flush(timeout=60)
    result = await soak.audit(memory, tally, users)
    assert result == {"archived": 7, "lost": 1, "duplicated": 1, "stored_but_not_acknowledged": 1,
                      "missing_after_recovery": {"summaries": 1, "graph": 1}}
