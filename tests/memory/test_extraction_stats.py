"""``python -m memory stats`` reports what LLM extraction cost, summed over every process: the worker
of one manager extracts through a fake OpenAI-compatible server (a real socket), and a CLI process of
its own, with no LLM configured, reads the calls and tokens per exchange from Redis."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from memory.launcher import Addresses
from memory.llm_extraction import INSTRUCTIONS
from memory.llm_sessions import INSTRUCTIONS as SESSION_INSTRUCTIONS
from tests.bot.fake_llm import FakeLLM
from tests.memory.conftest import ManagerFactory, settings_for
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
        addresses = Addresses(**{**bundled.__dict__, "postgres_dsn": own_postgres_dsn, "redis_url": own_redis_url})
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
