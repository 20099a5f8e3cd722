"""Issue 9, items 2b and 4: no single record, and no Redis outage, stops the derived-tier worker.

Real servers throughout. The only stand-in is the extractor (the LLM's role) wrapped
so that one message makes it raise, as a malformed record or a buggy model would.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import redis.asyncio as aioredis
from rich.console import Console

from memory import HierarchicalMemoryManager, TierUnavailable, cli
from memory.cli import build_parser, cmd_dead_letters, cmd_stats
from memory.errors import ArchiveUnavailable
from memory.launcher import Addresses
from memory.models import Exchange, Extraction, Scope
from memory.protocols import Embedder, Extractor
from tests.memory.conftest import ManagerFactory, settings_for
from tests.memory.own_redis import RestartableRedis


class PoisonedExtractor:
    """The real extractor, except that a batch holding a message with POISON in it raises ValueError."""

    def __init__(self, real: Extractor) -> None:
        self.real = real

    async def extract(self, exchanges: Sequence[Exchange]) -> list[Extraction]:
        if any("POISON" in e.user_message for e in exchanges):
            raise ValueError("cannot extract this exchange")
        return await self.real.extract(exchanges)


class WorkerCrash(BaseException):
    """Escapes the worker loop, which survives every Exception: stands for whatever might kill its task."""


class CrashingExtractor:
    async def extract(self, exchanges: Sequence[Exchange]) -> list[Extraction]:
        raise WorkerCrash("the worker task dies here")


def _addresses(bundled: Addresses, dsn: str, **changes: object) -> Addresses:
    return replace(bundled, postgres_dsn=dsn, **changes)


async def _until(check: Callable[[], object], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not await check():  # type: ignore[misc]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


async def test_a_poison_record_is_dead_lettered_while_everyone_else_goes_on(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    memory = await make_manager(settings_for(_addresses(bundled, own_postgres_dsn), tmp_path,
                                             worker={"in_process": False, "max_attempts": 3,
                                                     "retry_seconds": 0.1}))
    memory.worker.extractor = PoisonedExtractor(memory.extractor)
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    good_a = await memory.store_conversation(alice, "My cat Whiskers loves tuna.", "Whiskers has taste.")
    bad_b = await memory.store_conversation(bob, "POISON in a message about Lisbon", "Noted.")
    good_b = await memory.store_conversation(bob, "I spent the spring in Porto.", "Porto is lovely.")
    bad_c = await memory.store_conversation(carol, "POISON again", "Noted.")

    # one batch: it fails as a whole, then exchange by exchange; the good ones finish at once
    assert await memory.worker.run_once() == 2
    assert await memory.pending() == 2
    assert good_a in await memory.graph.topic_exchanges(Scope(alice), "whiskers")
    assert good_b in await memory.graph.topic_exchanges(Scope(bob), "porto")
    assert (await memory.counts(alice))["summaries"] == 1 and (await memory.counts(bob))["summaries"] == 1

    async def drained() -> bool:
        await memory.worker.run_once()
        return await memory.pending() == 0

    await _until(drained)
    letters = {d.exchange_id: d for d in await memory.dead_letter_list()}
    assert set(letters) == {bad_b, bad_c}
    assert letters[bad_b].attempts == 3 and letters[bad_b].user_id == bob
    assert letters[bad_b].error == "ValueError: cannot extract this exchange"
    assert (await memory.stats()).dead_letters == 2
    shown = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=shown, width=250))
    assert await cmd_stats(build_parser().parse_args(["stats"]), memory) == 0
    assert "dead letters 2 (python -m memory dead-letters)" in shown.getvalue()
    assert (await memory.counts(bob))["archive"] == 2  # the archive keeps it: nothing is lost
    exported = (await memory.export(bob))["dead_letters"]
    assert [(d["exchange_id"], d["attempts"]) for d in exported] == [(bad_b, 3)]

    await memory.forget(carol)  # forget reaches the dead letters too
    assert [d.exchange_id for d in await memory.dead_letter_list()] == [bad_b]
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=250))
    assert await cmd_dead_letters(build_parser().parse_args(["dead-letters"]), memory) == 0
    listed = out.getvalue()
    assert "dead letters (1)" in listed and bad_b in listed and "ValueError: cannot extract" in listed

    # the operator fixes the cause and retries from the CLI
    memory.worker.extractor = memory.extractor
    memory.settings.worker.in_process = True  # as the CLI runs: its flush drives the worker
    args = build_parser().parse_args(["dead-letters", "--retry", bad_b])
    assert await cmd_dead_letters(args, memory) == 0
    assert await memory.dead_letter_list() == [] and (await memory.stats()).dead_letters == 0
    assert (await memory.counts(bob))["summaries"] == 2
    assert bad_b in await memory.graph.topic_exchanges(Scope(bob), "lisbon")
    missing = build_parser().parse_args(["dead-letters", "--retry", "no-such-id"])
    assert await cmd_dead_letters(missing, memory) == 1


async def test_flush_names_the_real_last_error(bundled: Addresses, own_postgres_dsn: str,
                                               make_manager: ManagerFactory, tmp_path: Path,
                                               uid: Callable[[str], str]) -> None:
    memory = await make_manager(settings_for(_addresses(bundled, own_postgres_dsn), tmp_path,
                                             worker={"max_attempts": 100, "retry_seconds": 0.1}))
    memory.worker.extractor = PoisonedExtractor(memory.extractor)
    await memory.store_conversation(uid("dora"), "POISON", "ok")
    with pytest.raises(TierUnavailable) as caught:
        await memory.flush(timeout=3)
    assert "last error: ValueError: cannot extract this exchange" in str(caught.value)
    assert memory._task is not None and not memory._task.done()


async def test_a_year_one_record_already_stored_harms_no_one(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    """The issue's record: stored before timestamps were checked, PostgreSQL holds it as -infinity."""
    memory = await make_manager(settings_for(_addresses(bundled, own_postgres_dsn), tmp_path,
                                             worker={"retry_seconds": 0.1}))
    old, other = uid("legacy"), uid("other")
    legacy = Exchange(uuid.uuid4().hex, old, None, None, "An imported note about Lisbon trams.", "Noted.",
                      datetime(1, 1, 1, tzinfo=UTC))
    assert await memory.t.archive.insert(legacy)  # straight into the archive, as the old code did
    await memory.store_conversation(old, "Today I rode the Lisbon trams again.", "Fun!")
    kept = await memory.store_conversation(other, "My cat Whiskers loves tuna.", "Nice.")
    await memory.flush(timeout=90)
    assert memory._task is not None and not memory._task.done()  # the worker is alive
    assert kept in await memory.graph.topic_exchanges(Scope(other), "whiskers")
    # read back as an aware datetime, the old record itself goes through every tier
    assert await memory.dead_letter_list() == [] and (await memory.counts(old))["summaries"] == 2

    for _ in range(2):  # the user's every later message still gets a context (cache cold, then warm)
        ctx = await memory.get_conversation_context(old, "Lisbon trams")
        text = ctx.to_context_string()
        assert "Today I rode the Lisbon trams again." in text
    assert await memory.pending() == 0


async def test_a_redis_outage_holds_back_no_derived_work(
        own_postgres_dsn: str, bundled: Addresses, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str], restartable_redis: RestartableRedis) -> None:
    redis = restartable_redis
    memory = await make_manager(settings_for(_addresses(bundled, own_postgres_dsn, redis_url=redis.url),
                                             tmp_path))
    user = uid("outage")
    scope = Scope(user)
    await memory.store_conversation(user, "I keep bees on my roof.", "Bees are great.")
    await memory.flush()
    await memory.get_conversation_context(user, "bees")  # warms the cached list from the archive
    assert (await memory.counts(user))["cache"] == 1

    redis.stop()
    late = [await memory.store_conversation(user, f"Honey harvest number {i} with Beatrix.", "Sweet.")
            for i in range(3)]  # the cache misses these: the worker must drop the list later
    await memory.flush(timeout=60)  # the queue drains although Redis is down
    assert await memory.pending() == 0
    counts = await memory.counts(user)
    assert counts["summaries"] == 4 and counts["cache"] == -1
    assert set(late) <= set(await memory.graph.topic_exchanges(scope, "beatrix"))
    assert await memory.worker.stale_caches.due() == [scope]  # type: ignore[union-attr]

    redis.start()  # same port and data: the old list, without the three, is back
    client = aioredis.Redis.from_url(redis.url)
    try:
        key = f"mnemo:recent:{user}:dm"
        assert await client.llen(key) == 1  # stale
        await _until(memory.worker.retry_stale_caches)  # the worker does this every 10 s
        assert await client.exists(key) == 0
    finally:
        await client.aclose()
    assert await memory.worker.stale_caches.due() == []  # type: ignore[union-attr]
    ctx = await memory.get_conversation_context(user, "honey")
    assert {e.id for e in ctx.recent} >= set(late)


async def test_aclose_after_the_worker_task_died_still_stops_the_bundled_servers(
        bundled: Addresses, own_postgres_dsn: str, tmp_path: Path, uid: Callable[[str], str]) -> None:
    settings = settings_for(_addresses(bundled, own_postgres_dsn), tmp_path, redis={"url": None})
    memory = await HierarchicalMemoryManager.create(settings)  # a bundled redis-server of its own
    socket_path = memory.t.addresses.redis_url.removeprefix("unix://")
    memory.worker.extractor = CrashingExtractor()
    await memory.store_conversation(uid("crash"), "hello", "hi")
    task = memory._task
    assert task is not None
    await asyncio.wait({task}, timeout=60)
    assert isinstance(task.exception(), WorkerCrash)

    with pytest.raises(WorkerCrash):
        await memory.aclose()  # closes everything first, then reports what killed the task
    with socket.socket(socket.AF_UNIX) as probe, pytest.raises(OSError):
        probe.connect(socket_path)  # the redis-server is gone
    assert memory.t.archive.pool.is_closing()


async def test_an_edited_dead_letter_goes_back_to_the_queue(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    memory = await make_manager(settings_for(_addresses(bundled, own_postgres_dsn), tmp_path,
                                             worker={"in_process": False, "max_attempts": 1}))
    memory.worker.extractor = PoisonedExtractor(memory.extractor)
    user = uid("editor")
    xid = await memory.store_conversation(user, "POISON typo about Lisbon", "Noted.")
    assert await memory.worker.run_once() == 0
    assert [d.exchange_id for d in await memory.dead_letter_list()] == [xid] and await memory.pending() == 0

    await memory.update_exchange(user, xid, user_message="A fixed note about Lisbon")
    assert await memory.dead_letter_list() == [] and await memory.pending() == 1
    assert await memory.worker.run_once() == 1
    assert xid in await memory.graph.topic_exchanges(Scope(user), "lisbon")


class EndpointEmbedder:
    """The local model behind a stand-in for a remote embedding endpoint (which cannot be pinged):
    it rejects any text with POISON in it, and everything while ``down``."""

    def __init__(self, real: Embedder) -> None:
        self.real = real
        self.model_id, self.dim = real.model_id, real.dim
        self.down = False

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        if self.down or any("POISON" in t for t in texts):
            raise TierUnavailable("embedding", "HTTPStatusError")
        return await self.real.embed(texts, query=query)


async def test_an_endpoint_that_fails_for_one_text_is_not_taken_for_an_outage(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    memory = await make_manager(settings_for(_addresses(bundled, own_postgres_dsn), tmp_path,
                                             worker={"in_process": False, "max_attempts": 2,
                                                     "retry_seconds": 0.1}))
    endpoint = EndpointEmbedder(memory.embedder)
    memory.worker.embedder = endpoint
    user = uid("endpoint")
    first = await memory.store_conversation(user, "Breakfast in Lisbon.", "Yum.")
    bad = await memory.store_conversation(user, "POISON for the endpoint", "Hm.")
    last = await memory.store_conversation(user, "Dinner in Porto.", "Nice.")
    assert await memory.worker.run_once() == 2  # the others got through: the endpoint is up
    assert set(await memory.graph.topic_exchanges(Scope(user), "lisbon")) == {first}
    assert last in await memory.graph.topic_exchanges(Scope(user), "porto")

    # alone in a batch it cannot be told from an outage; beside an exchange that gets through, it can
    await memory.store_conversation(user, "Coffee in Braga.", "Strong.")
    await memory.t.outbox._execute("UPDATE outbox SET available_at = now()")  # skip the backoff
    assert await memory.worker.run_once() == 1
    [letter] = await memory.dead_letter_list()
    assert letter.exchange_id == bad and letter.error.startswith("TierUnavailable: embedding tier unavailable")
    assert await memory.pending() == 0

    endpoint.down = True  # now nothing gets through: an outage, which counts against no record
    queued = await memory.store_conversation(user, "Lunch in Faro.", "Sunny.")
    for _ in range(3):
        with pytest.raises(TierUnavailable):
            await memory.worker.run_once()
        await memory.t.outbox._execute("UPDATE outbox SET available_at = now()")  # skip the backoff
    assert await memory.pending() == 1 and len(await memory.dead_letter_list()) == 1
    endpoint.down = False
    assert await memory.worker.run_once() == 1
    assert queued in await memory.graph.topic_exchanges(Scope(user), "faro")


async def test_the_worker_keeps_the_planner_statistics_current_and_a_failure_there_loses_no_work(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    memory = await make_manager(settings_for(_addresses(bundled, own_postgres_dsn), tmp_path,
                                             worker={"in_process": False}))
    worker, archive = memory.worker, memory.t.archive
    ran: list[bool] = []

    async def refresh() -> bool:  # the real one (tests/memory/tiers/test_archive.py), counted
        ran.append(await archive.refresh_statistics())
        return ran[-1]

    worker.statistics, worker.statistics_every = refresh, 2
    user = uid("erin")
    for n in range(3):
        await memory.store_conversation(user, f"Day {n} in Lisbon", "ok")
    assert await worker.run_once() == 3
    assert len(ran) == 1  # after the batch that took the count past statistics_every

    async def down() -> bool:
        raise TierUnavailable("archive down while refreshing statistics")

    worker.statistics = down
    for n in range(2):
        await memory.store_conversation(user, f"Evening {n} in Porto", "ok")
    assert await worker.run_once() == 2  # the batch is done and stays done
    assert await memory.pending() == 0 and (await memory.counts(user))["summaries"] == 5


async def test_a_time_zone_that_cannot_be_read_holds_back_the_batch_and_loses_nothing(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    # one counted failure would dead-letter a record: none may be counted for the archive's fault
    memory = await make_manager(settings_for(_addresses(bundled, own_postgres_dsn), tmp_path,
                                             worker={"in_process": False, "max_attempts": 1, "retry_seconds": 0.1}))
    user = uid("tokyo")
    await memory.set_time_zone(user, "Asia/Tokyo")
    said = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)  # 08:30 on Thursday 3 December in Tokyo
    await memory.store_conversation(user, "I have a job interview tomorrow.", "Good luck!", timestamp=said)
    cat = await memory.store_conversation(user, "My cat Miso is asleep on my desk.", "Cute.", timestamp=said)
    zones = memory.worker.zones

    async def lost(users: object) -> dict[str, object]:
        raise ArchiveUnavailable("connection lost while reading the time zones")

    memory.worker.zones = lost  # type: ignore[assignment]
    with pytest.raises(ArchiveUnavailable):  # nothing got through: an outage, which counts against no record
        await memory.worker.run_once()
    assert await memory.pending() == 2 and await memory.dead_letter_list() == []

    memory.worker.zones = zones  # the archive answers again: the batch, held back ~2 s, goes through

    async def drained() -> bool:
        await memory.worker.run_once()
        return await memory.pending() == 0

    await _until(drained)
    assert await memory.dead_letter_list() == []
    plans = [(f.label, f.valid_from) for f in await memory.typed_facts(user) if f.predicate == "PLANS"]
    assert plans == [("job interview", datetime(2026, 12, 4, tzinfo=ZoneInfo("Asia/Tokyo")))]  # Tokyo's tomorrow
    assert cat in await memory.graph.topic_exchanges(Scope(user), "miso")
