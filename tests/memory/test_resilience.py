"""Crash safety of the derived-tier worker and degradation when tiers go down, on real servers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from memory import TierUnavailable
from memory.launcher import Addresses
from memory.models import Scope
from tests import servers
from tests.memory.conftest import ManagerFactory, settings_for
from tests.servers import OwnBolt

ROOT = Path(__file__).resolve().parents[2]


def _worker_env(settings_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS__", "POSTGRES__", "NEO4J__"))}
    env.update(settings_env, PYTHONPATH=str(ROOT))
    return env


async def test_killed_worker_loses_nothing_and_duplicates_nothing(
        bundled: Addresses, own_postgres_dsn: str, chroma_http_url: str, make_manager: ManagerFactory,
        tmp_path: Path, uid: Callable[[str], str]) -> None:
    """A worker process SIGKILLed mid-batch: after a restart every exchange reaches every tier once."""
    addresses = replace(bundled, chroma_url=chroma_http_url, chroma_path=None, postgres_dsn=own_postgres_dsn)
    settings = settings_for(addresses, tmp_path, worker={"in_process": False, "lease_seconds": 2.0,
                                                         "batch_size": 40})
    memory = await make_manager(settings)
    user = uid("crash")
    total = 400
    for i in range(total):
        await memory.store_conversation(user, f"Message {i}: my cat Whiskers chased a laser today.",
                                        f"Reply {i}: Whiskers sounds fun.")
    assert await memory.pending() >= total

    auth = addresses.neo4j_auth or ("", "")
    env = _worker_env({
        "REDIS__URL": addresses.redis_url, "POSTGRES__DSN": addresses.postgres_dsn,
        "CHROMA__URL": chroma_http_url, "NEO4J__URI": addresses.neo4j_uri, "NEO4J__USER": auth[0],
        "NEO4J__PASSWORD": auth[1], "NEO4J__DATABASE": addresses.neo4j_database or "",
        "MEMORY_DATA_DIR": str(tmp_path), "WORKER__BATCH_SIZE": "40", "WORKER__LEASE_SECONDS": "2",
    })
    proc = subprocess.Popen([sys.executable, "-m", "memory", "worker"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while await memory.pending() > total - 80 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # polling another process's progress through the archive
        left_at_kill = await memory.pending()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert 0 < left_at_kill < total, "the worker should have been killed part-way through"

    restarted = subprocess.Popen([sys.executable, "-m", "memory", "worker"], env=env, cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await memory.flush(timeout=120)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(30)

    counts = await memory.counts(user)
    assert counts["archive"] == total
    assert counts["summaries"] == total  # one chunk per short exchange, upserted by id
    [cat] = [r for r in await memory.profile(user, limit=50) if r.name == "whiskers"]
    assert cat.count == total  # each exchange counted exactly once despite the replayed batch
    await memory.forget(user)


async def test_each_derived_tier_down_still_answers_and_names_it(
        own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path, uid: Callable[[str], str],
        own_bolt: OwnBolt) -> None:
    """Stop Redis, then Chroma, then the Bolt server mid-test: context comes back, the tier is named."""
    if not servers.have_system_redis():
        pytest.skip("redis-server is not installed (.ci/run installs Debian's redis-server)")
    redis_url, stop_redis = servers.start_system_redis()
    chroma_url, stop_chroma = servers.start_chroma_server()
    stopped: list[Callable[[], None]] = []
    try:
        addresses = Addresses(redis_url=redis_url, postgres_dsn=own_postgres_dsn, chroma_url=chroma_url,
                              chroma_path=None, **own_bolt.addresses)
        memory = await make_manager(settings_for(addresses, tmp_path))
        user = uid("degrade")
        await memory.store_conversation(user, "My favourite band is Khruangbin.", "Great band!")
        await memory.store_conversation(user, "I play bass guitar on weekends.", "Nice!")
        await memory.flush()
        ctx = await memory.get_conversation_context(user, "which band do I like?")
        assert ctx.degraded == [] and "Khruangbin" in ctx.to_context_string()

        stop_redis()
        stopped.append(stop_redis)
        ctx = await memory.get_conversation_context(user, "which band do I like?")
        assert ctx.tiers["cache"].status in ("failed", "timeout") and "cache" in ctx.degraded
        assert "Khruangbin" in ctx.to_context_string()  # recent exchanges come from the archive instead
        xid = await memory.store_conversation(user, "Also I collect vinyl records.", "Cool.")
        assert xid in {e["id"] for e in (await memory.export(user))["exchanges"]}

        stop_chroma()
        stopped.append(stop_chroma)
        ctx = await memory.get_conversation_context(user, "which band do I like?")
        assert {"cache", "summaries"} <= set(ctx.degraded)
        assert "Khruangbin" in ctx.to_context_string()

        await own_bolt.stop()
        ctx = await memory.get_conversation_context(user, "which band do I like?")
        assert {"cache", "summaries", "graph"} <= set(ctx.degraded)
        assert ctx.tiers["archive"].status == "ok"
        assert "Khruangbin" in ctx.to_context_string()
        # (with only Redis down the worker completed the earlier exchange; this one waits for Chroma and the graph)
        await memory.store_conversation(user, "My turntable is a Technics.", "Classic.")
        with pytest.raises(TierUnavailable):
            await memory.flush(timeout=2)  # derived work waits for the tiers to return, in the outbox
        assert await memory.pending() >= 1
        assert Scope.of(user).key == "dm"
    finally:
        for stop in (stop_redis, stop_chroma):
            if stop not in stopped:
                stop()


async def test_forget_while_the_graph_is_down_is_queued_and_completed_when_it_is_back(
        own_postgres_dsn: str, bundled: Addresses, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str], own_bolt: OwnBolt) -> None:
    """Forget must really forget: a tier that is down is cleared later from a durable queue."""
    from memory import ForgetPending

    addresses = replace(bundled, postgres_dsn=own_postgres_dsn, **own_bolt.addresses)
    memory = await make_manager(settings_for(addresses, tmp_path))
    user = uid("private")
    await memory.store_conversation(user, "My therapist is Dr. Okafor in Leeds.", "Thanks for sharing.")
    await memory.flush()
    assert (await memory.counts(user))["graph"] > 0

    await own_bolt.stop()
    with pytest.raises(ForgetPending) as pending:
        await memory.forget(user)
    assert pending.value.pending == ["graph"] and pending.value.removed["archive"] == 1
    counts = await memory.counts(user)
    assert counts["archive"] == counts["summaries"] == counts["cache"] == 0 and counts["graph"] == -1
    assert await memory.retry_forgets() == 0  # still down: the request stays queued
    assert (await memory.stats()).pending_forgets == 1

    await own_bolt.start()  # same data directory, same port: the old nodes are still there
    deadline = time.monotonic() + 60
    while (await memory.counts(user))["graph"] != 0 and time.monotonic() < deadline:
        await memory.retry_forgets()
        await asyncio.sleep(0.5)  # the driver reconnects on its own schedule
    assert (await memory.counts(user))["graph"] == 0
    assert await memory.t.forgets.pending(user) == 0
