"""Issue 9, item 6: forget(topic=...) answers at once, whatever the queue holds and whatever is down.

It used to flush() first (up to 300 s), which never finished with Redis down. Real servers;
Redis is one the test stops and restarts with its data, so a stale cached copy is really there.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from memory import ForgetPending
from memory.launcher import Addresses
from memory.models import Scope
from tests.memory.conftest import ManagerFactory, settings_for
from tests.memory.own_redis import RestartableRedis
from tests.servers import OwnBolt


async def test_forget_topic_with_redis_down_returns_pending_and_completes_when_it_is_back(
        own_postgres_dsn: str, bundled: Addresses, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str], restartable_redis: RestartableRedis) -> None:
    redis = restartable_redis
    addresses = replace(bundled, postgres_dsn=own_postgres_dsn, redis_url=redis.url)
    # no worker runs: anything left in the queue stays there, as behind a stalled worker
    memory = await make_manager(settings_for(addresses, tmp_path, worker={"in_process": False}))
    user = uid("topic")
    scope = Scope(user)
    await memory.store_conversation(user, "My sister moved to Lisbon in May.", "Lisbon suits her.")
    await memory.store_conversation(user, "The trams in Lisbon are so steep!", "Hold on tight.")
    kept = await memory.store_conversation(user, "I adopted a beagle called Biscuit.", "Cute!")
    while await memory.worker.run_once():
        pass
    await memory.get_conversation_context(user, "Lisbon")  # caches the recent list
    queued = await memory.store_conversation(user, "Lisbon again: we found a flat.", "Congrats!")
    assert await memory.pending() == 1  # never reached summaries or graph
    assert len(await memory.graph.topic_exchanges(scope, "lisbon")) == 2

    redis.stop()
    async with asyncio.timeout(30):  # it used to wait for the queue: 300 s, then fail
        with pytest.raises(ForgetPending) as caught:
            await memory.forget(user, topic="Lisbon")
    assert caught.value.pending == ["cache"]
    assert caught.value.removed["archive"] == 3 and caught.value.removed["summaries"] == 2
    assert [e["id"] for e in (await memory.export(user))["exchanges"]] == [kept]
    assert await memory.pending() == 0  # the queued exchange went with its archive row
    assert {r.exchange_id for r in await memory.summaries.records(user)} == {kept}
    assert await memory.graph.topic_exchanges(scope, "lisbon") == []
    assert await memory.t.forgets.pending(user) == 1
    assert queued not in await memory.existing_exchange_ids([queued])

    redis.start()  # with its data: the cached list still holds the Lisbon exchanges
    client = aioredis.Redis.from_url(redis.url)
    key = f"mnemo:recent:{user}:dm"
    try:
        cached = [json.loads(x)["user_message"] for x in await client.lrange(key, 0, -1)]
        assert sum("Lisbon" in m for m in cached) == 3
        deadline = time.monotonic() + 60
        while await memory.retry_forgets() == 0:  # the worker does this every 10 s
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        assert await memory.t.forgets.pending(user) == 0
        assert [json.loads(x)["id"] for x in await client.lrange(key, 0, -1)] == [kept]
    finally:
        await client.aclose()


async def test_forget_topic_finds_queued_exchanges_the_full_text_index_cannot_see(
        own_postgres_dsn: str, bundled: Addresses, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    """A queued exchange is judged as the worker will judge it, not only by the indexed words:
    the full-text vector stops at 110,000 characters, the extractor reads everything."""
    addresses = replace(bundled, postgres_dsn=own_postgres_dsn)
    memory = await make_manager(settings_for(addresses, tmp_path, worker={"in_process": False}))
    user = uid("queued")
    scope = Scope(user)
    long_message = "plain filler words " * 7000 + "Then I moved to Lisbon."
    queued = await memory.store_conversation(user, long_message, "Noted.")
    kept = await memory.store_conversation(user, "I adopted a beagle called Biscuit.", "Cute!")
    assert await memory.t.archive.phrase_ids(scope, "Lisbon") == []  # past the indexed part
    removed = await memory.forget(user, topic="Lisbon")
    assert removed["archive"] == 1
    assert await memory.existing_exchange_ids([queued, kept]) == {kept}
    assert await memory.pending() == 1  # only the kept exchange is still queued


async def test_forget_topic_with_the_graph_down_answers_and_queues_the_graph(
        own_postgres_dsn: str, bundled: Addresses, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str], own_bolt: OwnBolt) -> None:
    """The graph cannot say which exchanges it linked to the topic: the archive is read instead
    (full text, then the extractor over the scope), and the graph is cleared when it is back."""
    addresses = replace(bundled, postgres_dsn=own_postgres_dsn, **own_bolt.addresses)
    memory = await make_manager(settings_for(addresses, tmp_path))
    user = uid("graphdown")
    scope = Scope(user)
    gone = await memory.store_conversation(user, "Dr. Okafor moved my appointment.", "Noted.")
    kept = await memory.store_conversation(user, "My bike has a flat tyre.", "Bad luck.")
    await memory.flush()
    assert await memory.graph.topic_exchanges(scope, "okafor") == [gone]

    await own_bolt.stop()
    async with asyncio.timeout(60):
        with pytest.raises(ForgetPending) as caught:
            await memory.forget(user, topic="Okafor")
    assert caught.value.pending == ["graph"] and caught.value.removed["archive"] == 1
    assert await memory.existing_exchange_ids([gone, kept]) == {kept}
    assert {r.exchange_id for r in await memory.summaries.records(user)} == {kept}

    await own_bolt.start()  # same data: the Okafor exchange is still in the graph
    deadline = time.monotonic() + 60
    while await memory.t.forgets.pending(user):
        assert time.monotonic() < deadline
        await memory.retry_forgets()
        await asyncio.sleep(0.5)  # the driver reconnects on its own schedule
    assert await memory.graph.topic_exchanges(scope, "okafor") == []
