"""``python -m memory stats`` reports what LLM extraction cost, summed over every process: the worker
of one manager extracts through a fake OpenAI-compatible server (a real socket), and a CLI process of
its own, with no LLM configured, reads the calls and tokens per exchange from Redis; counts made while
Redis is down are shared once it is back."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import openai

from memory.extraction import DeterministicExtractor
from memory.launcher import Addresses
from memory.llm_extraction import INSTRUCTIONS, LLMExtractor
from memory.llm_sessions import INSTRUCTIONS as SESSION_INSTRUCTIONS
from memory.models import Exchange
from memory.settings import LLMSettings
from memory.tiers.budget import RedisExtractionCounters
from memory.tiers.cache import create_redis
from tests.bot.fake_llm import FakeLLM
from tests.memory.conftest import ManagerFactory, settings_for
from tests.memory.own_redis import RestartableRedis
from tests.memory.test_cli_activity import run_cli

ANSWER = json.dumps({"exchanges": [{"id": "1", "summary": "The user talks about their dog Rex.",
                                    "entities": ["Rex"], "relations": [{"predicate": "HAS_PET", "object": "Rex"}]}]})


async def test_memory_stats_reports_llm_calls_and_tokens_per_exchange_from_every_process(
        bundled: Addresses, own_postgres_dsn: str, own_redis_url: str, make_manager: ManagerFactory,
        tmp_path: Path) -> None:
    fake = await FakeLLM().start()
    try:
        fake.reset("error")  # anything but the two scripted prompts is a failure
        fake.scripted = {INSTRUCTIONS[:40]: ANSWER, SESSION_INSTRUCTIONS[:40]: "unused"}
        addresses = replace(bundled, postgres_dsn=own_postgres_dsn, redis_url=own_redis_url)
        memory = await make_manager(settings_for(addresses, tmp_path / "lib",
                                                 llm={"base_url": fake.base_url, "extraction": True}))
        user = f"st-{uuid.uuid4().hex[:8]}"
        for text in ("My dog Rex is three.", "Rex chased a cat.", "Rex sleeps a lot."):
            await memory.store_conversation(user, text, "Nice.", guild_id="g-stats")
            await memory.flush()  # one extraction call per exchange
        here = memory.extraction_stats()
        assert (here["calls"], here["exchanges"], here["llm_exchanges"], here["fallbacks"]) == (3, 3, 3, 0)
        tokens = here["prompt_tokens"] + here["completion_tokens"]  # type: ignore[operator]
        assert tokens == sum(len(r["messages"][0]["content"] + r["messages"][1]["content"]) // 4 + 1
                             + len(json.dumps({"role": "assistant", "content": ANSWER})) // 4 + 1
                             for r in fake.requests)  # what the fake server said each call used

        out = await run_cli(addresses, tmp_path, "stats")
        rows = {cells[0]: cells[1:] for line in out.split("LLM extraction", 1)[1].splitlines()
                if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 3}
        # all processes (the manager's worker, through Redis) | this CLI process (no LLM configured)
        assert rows["mode"] == ["json_schema", "deterministic"]
        assert rows["calls"] == rows["exchanges"] == rows["llm_exchanges"] == ["3", "-"]
        assert rows["fallbacks"] == ["0", "-"]
        assert rows["calls_per_exchange"] == ["1.0", "-"]
        assert rows["tokens_per_exchange"] == [str(round(tokens / 3, 1)), "-"]  # type: ignore[operator]
    finally:
        await fake.aclose()


async def test_counts_made_while_redis_is_down_are_shared_once_it_is_back(restartable_redis: RestartableRedis) -> None:
    redis_server = restartable_redis
    fake = await FakeLLM().start()
    redis = await create_redis(redis_server.url)
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="x", timeout=5, max_retries=0)
    try:
        fake.reset("error")
        fake.scripted = {INSTRUCTIONS[:40]: ANSWER}
        counters = RedisExtractionCounters(redis)
        x = LLMExtractor(client, LLMSettings(base_url=fake.base_url, extraction=True), DeterministicExtractor(),
                         counters=counters)
        said = [Exchange(f"x{i}", "u", None, None, "My dog Rex is three.", "Nice.", datetime.now(UTC))
                for i in range(2)]
        redis_server.stop()
        [out] = await x.extract(said[:1])  # the counters cannot be written: the extraction goes on
        assert [s.obj for s in out.statements] == ["rex"] and x.stats.calls == 1
        redis_server.start()
        await x.extract(said[1:])
        totals = await counters.totals()
        assert (totals["calls"], totals["exchanges"], totals["llm_exchanges"]) == (2, 2, 2)
        assert totals["prompt_tokens"] == x.stats.prompt_tokens and totals["mode"] == "json_schema"
        await x.publish()  # nothing new: nothing added twice
        assert (await counters.totals())["calls"] == 2
    finally:
        await client.close()
        await redis.aclose()
        await fake.aclose()
