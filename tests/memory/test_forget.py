"""Forget at manager level on real servers: by exchange, topic and last; other users; a racing worker.

The expected state after forgetting is not computed from the code under test:
a second user stores the same history without the forgotten exchanges, and
every tier must then hold for the first user exactly what it holds for the second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from memory import HierarchicalMemoryManager
from memory.launcher import Addresses
from memory.models import Exchange, Extraction, Scope
from tests.memory.conftest import ManagerFactory, settings_for

T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
HISTORY = [
    ("My sister Maria moved to Lisbon.", "Lisbon is lovely."),
    ("I adopted a beagle named Biscuit.", "Biscuit is a great name."),
    ("We are migrating billing to Rust at work.", "Rust should help."),
    ("Biscuit chewed my running shoes.", "Naughty Biscuit!"),
    ("I ran a half marathon in Porto.", "Well done!"),
]


async def _store(memory: HierarchicalMemoryManager, user: str, keep: Sequence[int],
                 guild: dict[int, str] | None = None) -> dict[int, str]:
    ids = {}
    for i in keep:
        u, b = HISTORY[i]
        ids[i] = await memory.store_conversation(user, u, b, guild_id=(guild or {}).get(i),
                                                 timestamp=T0 + timedelta(days=i))
    await memory.flush()
    return ids


async def _state(memory: HierarchicalMemoryManager, user: str, scopes: Sequence[str | None] = (None,)
                 ) -> dict[str, object]:
    """What the derived tiers hold for ``user``, with nothing that differs between users by name."""
    counts = await memory.counts(user)
    records = await memory.summaries.records(user)
    profile = {s: sorted((r.name, r.kind, r.count, r.first_seen, r.last_seen)
                         for r in await memory.profile(user, guild_id=s, limit=500)) for s in scopes}
    return {"archive": counts["archive"], "summaries": counts["summaries"], "graph": counts["graph"],
            "records": sorted((r.scope_key, r.timestamp, r.summary) for r in records), "profile": profile}


async def test_forget_one_exchange_leaves_what_never_storing_it_would(
        memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user, control = uid("forgets"), uid("control")
    ids = await _store(memory, user, range(5))
    await _store(memory, control, [0, 2, 3, 4])

    removed = await memory.forget(user, exchange_id=ids[1])

    assert (removed["archive"], removed["summaries"]) == (1, 1) and removed["graph"] >= 1
    assert await _state(memory, user) == await _state(memory, control)
    assert {r.exchange_id for r in await memory.summaries.records(user)} == set(ids.values()) - {ids[1]}
    assert await memory.graph.topic_exchanges(Scope(user), "biscuit") == [ids[3]]
    assert await memory.graph.topic_exchanges(Scope(user), "beagle") == []


async def test_forget_a_topic_in_every_scope(memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user, control = uid("topical"), uid("control")
    ids = await _store(memory, user, range(5), guild={3: "g1", 4: "g1"})
    await _store(memory, control, [0, 2, 4], guild={4: "g1"})
    assert await memory.graph.topic_exchanges(Scope(user, "g1"), "biscuit") == [ids[3]]

    removed = await memory.forget(user, topic="Biscuit")

    assert removed["archive"] == 2 and removed["summaries"] == 2  # one in the DMs, one in g1
    assert await _state(memory, user, (None, "g1")) == await _state(memory, control, (None, "g1"))
    for scope in (Scope(user), Scope(user, "g1")):
        assert await memory.graph.topic_exchanges(scope, "biscuit") == []
    assert "Biscuit" not in (await memory.get_conversation_context(user, "Biscuit beagle")).to_context_string()


async def test_forget_last_takes_the_newest_of_every_scope(memory: HierarchicalMemoryManager,
                                                           uid: Callable[[str], str]) -> None:
    user, control = uid("lastly"), uid("control")
    ids = await _store(memory, user, range(5), guild={4: "g2"})  # the newest is in g2
    await _store(memory, control, [0, 1, 2, 3])

    removed = await memory.forget(user, last=True)

    assert (removed["archive"], removed["summaries"]) == (1, 1)
    assert await _state(memory, user, (None, "g2")) == await _state(memory, control, (None, "g2"))
    assert ids[4] not in {e["id"] for e in (await memory.export(user))["exchanges"]}
    removed = await memory.forget(user, last=True, dm=True)  # now the newest DM exchange
    assert removed["archive"] == 1
    assert {e["id"] for e in (await memory.export(user))["exchanges"]} == {ids[0], ids[1], ids[2]}


async def test_another_users_exchange_id_removes_nothing(memory: HierarchicalMemoryManager,
                                                         uid: Callable[[str], str]) -> None:
    mallory, victim = uid("mallory"), uid("victim")
    await _store(memory, mallory, [0])
    victim_ids = await _store(memory, victim, range(5))
    before = (await _state(memory, mallory), await _state(memory, victim))

    removed = await memory.forget(mallory, exchange_id=victim_ids[1])

    assert removed == {"archive": 0, "cache": 0, "summaries": 0, "graph": 0, "facts": 0}
    assert (await _state(memory, mallory), await _state(memory, victim)) == before


class _GatedExtractor:
    """The real extractor, held at a gate: the worker has claimed its batch and waits there."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def extract(self, exchanges: Sequence[Exchange]) -> list[Extraction]:
        self.entered.set()
        await self.gate.wait()
        return await self.inner.extract(exchanges)  # type: ignore[attr-defined, no-any-return]


async def test_forget_while_the_worker_holds_a_batch_leaves_nothing(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    """The worker claimed the user's exchanges, then the user forgot them, then the worker wrote its
    summaries and graph entries: none of that may survive."""
    own = replace(bundled, postgres_dsn=own_postgres_dsn)
    memory = await make_manager(settings_for(own, tmp_path, worker={"in_process": False}))
    user = uid("racer")
    for u, b in HISTORY:
        await memory.store_conversation(user, u, b)
    gated = _GatedExtractor(memory.worker.extractor)
    memory.worker.extractor = gated  # type: ignore[assignment]
    batch = asyncio.create_task(memory.worker.run_once())
    await asyncio.wait_for(gated.entered.wait(), 60)

    removed = await memory.forget(user)
    assert removed["archive"] == len(HISTORY)
    gated.gate.set()
    await batch  # the worker finishes the batch it claimed before the forget

    assert await memory.pending() == 0
    assert await memory.counts(user) == {"archive": 0, "cache": 0, "summaries": 0, "graph": 0, "facts": 0}


async def test_a_batch_replayed_by_another_worker_after_the_lease_keeps_its_data(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    """The other side of the race above: a slow worker whose lease ran out finds its rows completed by
    another worker. The exchanges still exist, so nothing may be removed from the derived tiers."""
    from memory.worker import DerivedWorker

    own = replace(bundled, postgres_dsn=own_postgres_dsn)
    memory = await make_manager(settings_for(own, tmp_path, worker={"in_process": False, "lease_seconds": 1.0}))
    user = uid("slow")
    for i in range(4):
        await memory.store_conversation(user, f"Note {i}: my tortoise Sheldon ate a strawberry.", "Yum.")
    gated = _GatedExtractor(memory.worker.extractor)
    memory.worker.extractor = gated  # type: ignore[assignment]
    slow = asyncio.create_task(memory.worker.run_once())
    await asyncio.wait_for(gated.entered.wait(), 60)
    t = memory.t
    other = DerivedWorker(t.outbox, t.extractor, t.embedder, t.summaries, t.graph, t.cache, forgets=t.forgets,
                          lease_seconds=60.0)
    deadline = asyncio.get_running_loop().time() + 60
    while await other.run_once() == 0:  # the rows come free once the slow worker's lease ends
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)
    assert await memory.pending() == 0
    gated.gate.set()
    assert await slow == 4

    counts = await memory.counts(user)
    assert (counts["archive"], counts["summaries"]) == (4, 4)
    [sheldon] = [r for r in await memory.profile(user, limit=50) if r.name == "sheldon"]
    assert sheldon.count == 4
    assert await memory.t.forgets.pending(user) == 0
