"""The Prometheus endpoint, scraped over HTTP after messages went through the chat handler,
and the request id that follows one message from the handler to the stored exchange."""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from bot.chat import ChatHandler, IncomingMessage
from bot.llm import ChatLLM
from bot.logs import RequestIdFilter, new_request
from memory.errors import ConfigurationError
from memory.launcher import Addresses, free_port
from memory.manager import HierarchicalMemoryManager
from memory.metrics import Metrics, MetricsServer, serve_metrics
from memory.settings import LLMSettings, MetricsSettings
from tests import servers
from tests.bot.conftest import bot_settings, memory_settings_for
from tests.bot.fake_llm import FakeLLM

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest_asyncio.fixture(scope="module")
async def metered(bundled: Addresses, tmp_path_factory: pytest.TempPathFactory,
                  ) -> AsyncIterator[tuple[HierarchicalMemoryManager, Metrics, MetricsServer]]:
    """A manager on a database of its own, with a fresh registry served on a free port."""
    dsn = await servers.create_database(bundled.postgres_dsn)
    metrics = Metrics()
    settings = memory_settings_for(bundled, tmp_path_factory.mktemp("metered"), dsn)
    async with HierarchicalMemoryManager.from_env(settings, metrics) as manager:
        server = serve_metrics(MetricsSettings(port=free_port()), metrics, manager.stats)
        assert server is not None
        yield manager, metrics, server
        await server.aclose()


async def _scrape(port: int) -> Samples:
    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
            return response.read().decode()

    text = await asyncio.to_thread(get)  # the endpoint reads stats on this loop: never block it
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_scrape_counts_what_the_chat_handler_did(
        metered: tuple[HierarchicalMemoryManager, Metrics, MetricsServer], fake_llm: FakeLLM,
        tmp_path: Path, uid: str) -> None:
    manager, metrics, server = metered
    async with ChatLLM(LLMSettings(base_url=fake_llm.base_url, model="fake-model", timeout_seconds=2.0),
                       max_retries=0, metrics=metrics) as llm:
        handler = ChatHandler(manager, llm, bot_settings(fake_llm, tmp_path, rate_limit_per_user=2))
        replies = [await handler.handle(IncomingMessage(uid, "I collect vintage typewriters", channel_id="c"))]
        fake_llm.reset("error")
        for _ in range(3):
            replies.append(await handler.handle(IncomingMessage(uid, "which ones do I have?", channel_id="c")))
    assert [r.kind if r else None for r in replies] == ["answer", "llm_error", "rate_limited", None]
    await manager.flush()
    [usage] = await manager.usage()  # the ledger in PostgreSQL: what the LLM said it used

    samples = await _scrape(server.port)
    assert _value(samples, "mnemo_messages_total") == 4
    assert _value(samples, "mnemo_replies_total", kind="answer") == 1
    assert _value(samples, "mnemo_replies_total", kind="llm_error") == 1
    assert _value(samples, "mnemo_replies_total", kind="rate_limited") == 1
    assert _value(samples, "mnemo_rate_limited_messages_total", scope="user") == 2  # the notice and the silence
    assert _value(samples, "mnemo_errors_total", kind="llm_unavailable") == 1
    assert _value(samples, "mnemo_llm_calls_total", outcome="ok") == 1
    assert _value(samples, "mnemo_llm_calls_total", outcome="error") == 1
    assert _value(samples, "mnemo_llm_latency_seconds_count") == 2
    assert _value(samples, "mnemo_llm_tokens_total", type="prompt") == usage.prompt_tokens > 0
    assert _value(samples, "mnemo_llm_tokens_total", type="completion") == usage.completion_tokens > 0
    assert _value(samples, "mnemo_exchanges_stored_total") == 1  # the failed reply stored nothing
    assert _value(samples, "mnemo_worker_exchanges_total") == 1
    reads = {tier: sum(v for (name, labels), v in samples.items()
                       if name == "mnemo_tier_reads_total" and ("tier", tier) in labels)
             for tier in ("cache", "summaries", "graph", "facts", "embedding")}
    embedded = samples.get(("mnemo_tier_reads_total", (("status", "ok"), ("tier", "embedding"))), 0)
    # two contexts were built; Chroma is asked only when the query was embedded in time; each context
    # also reads the typed facts (graph) for the profile, and one statement gives its saved facts
    # and profile corrections (facts)
    assert reads == {"cache": 2, "graph": 4, "facts": 2, "embedding": 2, "summaries": embedded}
    for tier, calls in reads.items():
        assert _value(samples, "mnemo_tier_latency_seconds_count", tier=tier) == calls
    # read from the stores at scrape time
    assert _value(samples, "mnemo_stats_up") == 1
    for tier in ("cache", "archive", "summaries", "graph"):
        assert _value(samples, "mnemo_tier_up", tier=tier) == 1
    assert _value(samples, "mnemo_archived_exchanges") == 1
    assert _value(samples, "mnemo_worker_queue_depth") == 0
    assert _value(samples, "mnemo_forget_queue_depth") == 0
    assert _value(samples, "mnemo_active_conversations") == 1  # this user in channel c, the only one here


async def test_request_id_follows_a_message_to_its_stored_exchange(
        metered: tuple[HierarchicalMemoryManager, Metrics, MetricsServer], fake_llm: FakeLLM,
        tmp_path: Path, uid: str, caplog: pytest.LogCaptureFixture) -> None:
    manager, _, _ = metered
    caplog.handler.addFilter(RequestIdFilter())
    handler = ChatHandler(manager, None, bot_settings(None, tmp_path))
    ids = []
    with caplog.at_level(logging.INFO, logger="bot.chat"):
        for text in ("first message", "second message"):
            ids.append(new_request())
            reply = await handler.handle(IncomingMessage(uid, text, channel_id="c"))
            assert reply is not None and reply.exchange_id
    exported = await manager.export(uid)
    stored = {e["user_message"]: e["metadata"]["request_id"] for e in exported["exchanges"]}
    assert stored == {"first message": ids[0], "second message": ids[1]} and ids[0] != ids[1]
    logged = {r.exchange_id: r.request_id for r in caplog.records if r.getMessage().startswith("stored exchange")}
    assert sorted(logged.values()) == sorted(ids)
    assert {e["id"]: e["metadata"]["request_id"] for e in exported["exchanges"]} == logged


async def test_endpoint_is_off_unless_a_port_is_set_and_a_taken_port_is_a_configuration_error(
        metered: tuple[HierarchicalMemoryManager, Metrics, MetricsServer]) -> None:
    manager, _, server = metered
    assert serve_metrics(MetricsSettings(), Metrics(), manager.stats) is None
    with pytest.raises(ConfigurationError, match=r"metrics\.port: cannot serve metrics on 127\.0\.0\.1"):
        serve_metrics(MetricsSettings(port=server.port), Metrics(), manager.stats)
