"""``python -m bot console`` end to end: a subprocess fed through stdin, run twice, remembers."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.chat import CONTEXT_BEGIN, NO_LLM_NOTICE
from memory.launcher import Addresses
from tests.bot.fake_llm import FakeLLM

ROOT = Path(__file__).resolve().parents[2]


def _env(bundled: Addresses, data_dir: Path, llm_url: str | None) -> dict[str, str]:
    ours = ("LLM__", "REDIS__", "POSTGRES__", "NEO4J__", "CHROMA__", "BOT__", "DISCORD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update({"MEMORY_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT),
                "REDIS__URL": bundled.redis_url, "POSTGRES__DSN": bundled.postgres_dsn,
                "NEO4J__URI": bundled.neo4j_uri, "RETRIEVAL__GRAPH_TIMEOUT_MS": "5000",
                "RETRIEVAL__SUMMARIES_TIMEOUT_MS": "5000", "RETRIEVAL__ARCHIVE_TIMEOUT_MS": "5000"})
    if bundled.neo4j_auth:
        env["NEO4J__USER"], env["NEO4J__PASSWORD"] = bundled.neo4j_auth
    if bundled.neo4j_database:
        env["NEO4J__DATABASE"] = bundled.neo4j_database
    if llm_url:
        env["LLM__BASE_URL"] = llm_url
    return env


async def _run(env: dict[str, str], cwd: Path, stdin: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console", *args, cwd=cwd, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 90)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_console_without_llm_remembers_across_runs(bundled: Addresses, tmp_path: Path) -> None:
    env = _env(bundled, tmp_path / "data", None)
    first = await _run(env, tmp_path, "My favourite colour is teal.\n/quit\nnot read after quit\n")
    assert NO_LLM_NOTICE not in first  # the console says it once, in its own words, at start
    assert first.count("No LLM is configured") == 1
    assert "not read after quit" not in first
    second = await _run(env, tmp_path, "What is my favourite colour?\n")  # ends with EOF, no /quit
    assert CONTEXT_BEGIN in second
    context = second.split(CONTEXT_BEGIN, 1)[1]
    assert "My favourite colour is teal." in context
    assert "What is my favourite colour?" in context


async def test_console_with_llm_sends_the_memory(bundled: Addresses, tmp_path: Path,
                                                 fake_llm: FakeLLM) -> None:
    env = _env(bundled, tmp_path / "data", fake_llm.base_url)
    user = f"console-{tmp_path.name[-12:].replace('_', '-')}"
    first = await _run(env, tmp_path, "I keep bees on my roof\n/remember my bees are Buckfast bees\n",
                       "--user", user)
    assert "ECHO: I keep bees on my roof" in first
    assert "Saved fact" in first
    fake_llm.reset("prompt")
    second = await _run(env, tmp_path, "what do I keep on my roof?\n/quit\n", "--user", user)
    messages = fake_llm.requests[-1]["messages"]
    system, turns = messages[0]["content"], [m["content"] for m in messages[1:-1]]
    assert "my bees are Buckfast bees" in system
    # the last exchange of this channel comes back as a chat turn (and so not again in the notes)
    assert "I keep bees on my roof" in turns and "I keep bees on my roof" not in system
    assert "my bees are Buckfast bees" in second  # the fake LLM echoed the prompt back to the terminal
