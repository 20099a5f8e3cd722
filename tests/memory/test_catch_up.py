"""Catch-up after an outage: the derived tiers go down, come back, and the queue drains.

Redis, Chroma and the Bolt server of the test's own are stopped while
exchanges are stored (the archive keeps them and their outbox rows), the
worker's batches fail and are retried with a count of attempts, then the
servers come back on the same ports and data, and every exchange reaches every
tier exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from memory import HierarchicalMemoryManager, TierUnavailable
from memory.launcher import Addresses, free_port
from tests import servers
from tests.memory.conftest import ManagerFactory, settings_for
from tests.servers import OwnBolt


async def _outbox(dsn: str) -> list[tuple[int, str | None]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT attempts, last_error FROM outbox ORDER BY exchange_id")
    finally:
        await conn.close()
    return [(r["attempts"], r["last_error"]) for r in rows]


async def _due(dsn: str) -> None:
    """Wait until the worker's backoff has passed for every queued row."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 60
        while await conn.fetchval("SELECT count(*) FROM outbox WHERE available_at > now()") > 0:
            assert time.monotonic() < deadline, "the backoff never ended"
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def _drain(memory: HierarchicalMemoryManager, timeout: float = 180.0) -> None:
    """Run the worker until the queue is empty; outages on the way are retried, as the loop does."""
    deadline = time.monotonic() + timeout
    while await memory.pending() > 0:
        assert time.monotonic() < deadline, f"{await memory.pending()} still pending"
        with contextlib.suppress(TierUnavailable):
            if await memory.worker.run_once():
                continue
        await asyncio.sleep(0.2)


async def test_queue_drains_after_the_derived_tiers_come_back(
        own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path, uid: Callable[[str], str],
        own_bolt: OwnBolt) -> None:
    if not servers.have_system_redis():
        pytest.skip("needs a redis-server of the test's own to stop (Debian's redis-server)")
    redis_port, chroma_port = free_port(), free_port()
    _, stop_redis = servers.start_system_redis(redis_port)
    _, stop_chroma = servers.start_chroma_server(chroma_port, tmp_path / "chroma")
    running = {"redis": stop_redis, "chroma": stop_chroma}
    try:
        addresses = Addresses(redis_url=f"redis://127.0.0.1:{redis_port}/0", postgres_dsn=own_postgres_dsn,
                              chroma_url=f"http://127.0.0.1:{chroma_port}", chroma_path=None,
                              **own_bolt.addresses)
        memory = await make_manager(settings_for(addresses, tmp_path, worker={"in_process": False}))
        user = uid("outage")
        for i in range(2):
            await memory.store_conversation(user, f"Before {i}: my parrot Kiwi learned a word.", "Clever Kiwi!")
        await _drain(memory)
        assert (await memory.counts(user))["summaries"] == 2

        for name in ("redis", "chroma"):
            running.pop(name)()
        await own_bolt.stop()
        during = [await memory.store_conversation(user, f"During {i}: Kiwi chewed the curtains again.",
                                                  "Oh, Kiwi.") for i in range(6)]
        for attempt in (1, 2):  # two failed batches: each claim counts an attempt
            await _due(own_postgres_dsn)
            with pytest.raises(TierUnavailable):
                await memory.worker.run_once()
            rows = await _outbox(own_postgres_dsn)
            assert [a for a, _ in rows] == [attempt] * 6
            assert all(error and "unavailable" in error for _, error in rows)
        assert await memory.pending() == 6

        _, running["redis"] = servers.start_system_redis(redis_port)
        _, running["chroma"] = servers.start_chroma_server(chroma_port, tmp_path / "chroma")
        await own_bolt.start()  # same directory and port: the graph's data is still there
        await _drain(memory)

        assert await memory.pending() == 0
        counts = await memory.counts(user)
        assert (counts["archive"], counts["summaries"]) == (8, 8)
        [kiwi] = [r for r in await memory.profile(user, limit=100) if r.name == "kiwi"]
        assert kiwi.count == 8  # the replayed batch was counted once
        ctx = await memory.get_conversation_context(user, "what did Kiwi chew?", max_tokens=2000)
        assert ctx.degraded == []
        assert set(during) <= set(ctx.exchange_ids)
        assert ctx.tiers["summaries"].hits >= 6 and ctx.tiers["graph"].hits >= 6
    finally:
        for stop in running.values():
            stop()
