"""Contract tests of the PostgreSQL archive, its outbox and the ledger.

Run against Debian's PostgreSQL 15 and the bundled embedded PostgreSQL 18.
Each server gets a fresh database for this module (so migrations run from
nothing); every test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from memory.errors import ArchiveUnavailable, TierUnavailable
from memory.launcher import free_port
from memory.models import MAX_MESSAGE_BYTES, Exchange, ForgetTarget, Scope, clean_text
from memory.tiers.archive import PostgresArchive, create_pool, migrate
from memory.tiers.ledger import PostgresLedger
from memory.tiers.outbox import PostgresOutbox
from tests import servers

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ALICE_G1 = Scope("alice", "g1")
ALICE_G2 = Scope("alice", "g2")
ALICE_DM = Scope("alice", None)
BOB_G1 = Scope("bob", "g1")


def ex(scope: Scope, n: int, user_message: str = "", bot_response: str = "") -> Exchange:
    return Exchange(id=f"{scope.user_id}-{scope.key.replace(':', '')}-{n}", user_id=scope.user_id,
                    guild_id=scope.guild_id, channel_id="c1", user_message=user_message or f"message {n}",
                    bot_response=bot_response or f"answer {n}", timestamp=T0 + timedelta(minutes=n),
                    metadata={"n": n, "tags": ["a", "b"], "nested": {"ok": True}})


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def _module_databases() -> AsyncIterator[dict[str, str]]:
    """server DSN -> DSN of this module's own database there; dropped at the end of the module."""
    made: dict[str, str] = {}
    yield made
    for server_dsn, dsn in made.items():
        conn = await asyncpg.connect(server_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(dsn).path[1:]}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest_asyncio.fixture
async def dsn(postgres_dsn: str, _module_databases: dict[str, str]) -> str:
    if postgres_dsn not in _module_databases:
        _module_databases[postgres_dsn] = await servers.create_database(postgres_dsn)
    return _module_databases[postgres_dsn]


@pytest_asyncio.fixture
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(dsn, max_size=8)
    await p.execute("TRUNCATE exchanges, outbox, facts, token_usage, profile_corrections CASCADE")
    yield p
    await p.close()


@pytest.fixture
def archive(pool: asyncpg.Pool) -> PostgresArchive:
    return PostgresArchive(pool)


@pytest.fixture
def outbox(pool: asyncpg.Pool) -> PostgresOutbox:
    return PostgresOutbox(pool)


@pytest.fixture
def ledger(pool: asyncpg.Pool) -> PostgresLedger:
    return PostgresLedger(pool)


async def _seed(archive: PostgresArchive, scopes: tuple[Scope, ...] = (ALICE_G1, ALICE_G2, ALICE_DM, BOB_G1),
                n: int = 3) -> None:
    for scope in scopes:
        for i in range(1, n + 1):
            assert await archive.insert(ex(scope, i))


# --- schema ---------------------------------------------------------------------------------------

async def test_migrations_are_idempotent_and_safe_concurrently(postgres_dsn: str) -> None:
    name = f"mnemo_migrate_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = _with_database(postgres_dsn, name)
        pools = await asyncio.gather(create_pool(dsn), create_pool(dsn), create_pool(dsn))
        try:
            assert await migrate(pools[0]) == []
            versions = await pools[0].fetch("SELECT version FROM schema_migrations")
            assert len(versions) == len({r["version"] for r in versions}) >= 1
            assert await PostgresArchive(pools[1]).insert(ex(ALICE_G1, 1))
        finally:
            for p in pools:
                await p.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_fresh_database_reports_applied_versions(postgres_dsn: str) -> None:
    name = f"mnemo_migrate_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        pool = await asyncpg.create_pool(_with_database(postgres_dsn, name), min_size=1, max_size=2)
        try:
            shipped = sorted(int(f.name.split("_", 1)[0]) for f in resources.files("memory.sql").iterdir()
                             if f.name.endswith(".sql"))
            assert shipped[:2] == [1, 2]
            assert await migrate(pool) == shipped
            assert await migrate(pool) == []
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# --- exchanges ------------------------------------------------------------------------------------

async def test_insert_then_read_back_faithfully(archive: PostgresArchive) -> None:
    e = ex(ALICE_G1, 1, "I adopted a cat named Miso", "Congratulations on Miso!")
    assert await archive.insert(e)
    assert await archive.get(ALICE_G1, [e.id]) == [e]
    assert await archive.find("alice", e.id) == e
    assert await archive.recent(ALICE_G1, 5) == [e]
    assert await archive.exchanges("alice") == [e]


async def test_insert_twice_is_refused_and_enqueued_once(archive: PostgresArchive,
                                                         outbox: PostgresOutbox) -> None:
    e = ex(ALICE_G1, 1)
    assert await archive.insert(e) is True
    changed = Exchange(e.id, e.user_id, e.guild_id, e.channel_id, "other text", "other", e.timestamp)
    assert await archive.insert(changed) is False
    assert await outbox.pending() == 1
    assert await archive.get(ALICE_G1, [e.id]) == [e]


async def test_reads_are_confined_to_user_and_scope(archive: PostgresArchive) -> None:
    await _seed(archive)
    ids = [ex(s, 1).id for s in (ALICE_G1, ALICE_G2, ALICE_DM, BOB_G1)]
    assert [e.id for e in await archive.get(ALICE_G1, ids)] == [ex(ALICE_G1, 1).id]
    assert await archive.get(ALICE_G1, [ex(BOB_G1, 2).id]) == []
    assert await archive.find("alice", ex(BOB_G1, 1).id) is None
    assert await archive.find("alice", ex(ALICE_DM, 2).id) == ex(ALICE_DM, 2)  # any of alice's scopes
    assert {(e.user_id, e.guild_id) for e in await archive.recent(ALICE_DM, 10)} == {("alice", None)}
    assert {e.guild_id for e in await archive.exchanges("alice", ALICE_G2)} == {"g2"}
    assert len(await archive.exchanges("alice")) == 9
    assert await archive.count("alice") == 9
    assert await archive.count("alice", ALICE_G1) == 3
    assert await archive.count("carol") == 0
    assert set(await archive.scopes("alice")) == {ALICE_G1, ALICE_G2, ALICE_DM}
    assert set(await archive.users()) == {"alice", "bob"}
    assert await archive.totals() == (12, 2)
    # existing() answers for ids, whoever owns them (used for idempotent imports)
    assert await archive.existing([*ids, "nope"]) == set(ids)


async def test_recent_is_newest_first_and_pages_with_before(archive: PostgresArchive) -> None:
    await _seed(archive, (ALICE_G1,), n=6)
    newest = await archive.recent(ALICE_G1, 3)
    assert [e.id for e in newest] == [ex(ALICE_G1, n).id for n in (6, 5, 4)]
    older = await archive.recent(ALICE_G1, 10, before=newest[-1].timestamp)
    assert [e.id for e in older] == [ex(ALICE_G1, n).id for n in (3, 2, 1)]
    oldest_first = await archive.exchanges("alice", ALICE_G1)
    assert [e.id for e in oldest_first] == [ex(ALICE_G1, n).id for n in range(1, 7)]


async def test_newest_ids_are_the_windows_newest_as_recent_gives_them(archive: PostgresArchive) -> None:
    """The read path's date window: the same ids, in the same order, as the exchanges
    ``recent(before=until)`` returns that fall on or after ``since``; only this scope's."""
    await _seed(archive, (ALICE_G1, ALICE_DM, BOB_G1), n=8)
    t = [ex(ALICE_G1, n).timestamp for n in range(1, 9)]
    for since, until, limit in ((t[2], t[6], 10), (t[2], t[6], 2), (t[0], t[7] + timedelta(days=1), 3),
                                (t[7] + timedelta(days=1), t[7] + timedelta(days=2), 5)):
        expected = [e.id for e in await archive.recent(ALICE_G1, limit, before=until) if e.timestamp >= since]
        assert await archive.newest_ids(ALICE_G1, limit, since, until) == expected
    assert await archive.newest_ids(ALICE_G1, 10, t[2], t[6]) == [ex(ALICE_G1, n).id for n in (6, 5, 4, 3)]
    assert await archive.newest_ids(ALICE_G1, 2, t[2], t[6]) == [ex(ALICE_G1, n).id for n in (6, 5)]


async def test_search_ranks_within_scope_only(archive: PostgresArchive) -> None:
    await archive.insert(ex(ALICE_G1, 1, "We hiked the Matterhorn trail near Zermatt", "Sounds lovely"))
    await archive.insert(ex(ALICE_G1, 2, "My favourite pasta is carbonara", "Classic choice"))
    await archive.insert(ex(ALICE_G1, 3, "Another hike, shorter this time", "Nice"))
    # better matches elsewhere must never surface
    await archive.insert(ex(BOB_G1, 1, "hiking hikes hiked the Matterhorn Zermatt trail", "Matterhorn!"))
    await archive.insert(ex(ALICE_G2, 1, "Matterhorn Zermatt hiking trail", "Matterhorn trail"))
    await archive.insert(ex(ALICE_DM, 1, "Matterhorn Zermatt hiking trail", "Matterhorn trail"))
    hits = await archive.search(ALICE_G1, "hiking the Matterhorn", 10)
    assert [h.exchange_id for h in hits] == [ex(ALICE_G1, 1).id, ex(ALICE_G1, 3).id]
    assert hits[0].score > hits[1].score > 0
    assert {h.source for h in hits} == {"fulltext"}
    assert len(await archive.search(ALICE_G1, "hiking the Matterhorn", 1)) == 1
    assert await archive.phrase_ids(ALICE_G1, "Matterhorn trail") == [ex(ALICE_G1, 1).id]


@pytest.mark.parametrize("query", ["", "   ", "the and of to is", "?!.,;:'\"()[]{}", "&|!<->:*", "***"])
async def test_search_with_nothing_searchable_returns_empty(archive: PostgresArchive, query: str) -> None:
    await _seed(archive, (ALICE_G1,))
    assert await archive.search(ALICE_G1, query, 10) == []


HOSTILE = [
    "it's \"quoted\" and `back-ticked` \\ back\\slash",
    "'); DROP TABLE exchanges; --",
    "MATCH (n) DETACH DELETE n RETURN count(n) // {name: 'x'}",
    "emoji party 🧠🔥👩‍👩‍👧 with a flag 🇫🇷",
    "שלום עולם, مرحبا بالعالم",
    "Ame\u0301lie went to Zu\u0308rich",
    "$1 $2 %s %(name)s {0} ${var}",
]


async def test_hostile_text_is_stored_faithfully_and_searchable(archive: PostgresArchive) -> None:
    exchanges = [ex(ALICE_G1, i, text, f"reply to {i}: {text}") for i, text in enumerate(HOSTILE)]
    big = ex(ALICE_G1, 99, ("lorem ipsum dolor sit amet " * 4000)[:100_000] + " zanzibar", "ok")
    for e in [*exchanges, big]:
        assert await archive.insert(e)
    assert await archive.count("alice") == len(HOSTILE) + 1
    got = {e.id: e for e in await archive.exchanges("alice")}
    for e in [*exchanges, big]:
        assert got[e.id] == e
    assert len(got[big.id].user_message) == 100_000 + len(" zanzibar")
    assert [h.exchange_id for h in await archive.search(ALICE_G1, "zanzibar", 5)] == [big.id]
    assert [h.exchange_id for h in await archive.search(ALICE_G1, "DROP TABLE", 5)] == [exchanges[1].id]
    assert [h.exchange_id for h in await archive.search(ALICE_G1, "DETACH DELETE", 5)] == [exchanges[2].id]
    assert [h.exchange_id for h in await archive.search(ALICE_G1, "עולם", 5)] == [exchanges[4].id]
    assert [h.exchange_id for h in await archive.search(ALICE_G1, "Ame\u0301lie", 5)] == [exchanges[5].id]
    for text in HOSTILE:  # hostile queries run as data, never as SQL
        await archive.search(ALICE_G1, text, 5)
    assert await archive.count("alice") == len(HOSTILE) + 1



def _unique_cjk_words(seed: int, chars: int) -> str:
    rnd = random.Random(seed)
    words = ("".join(chr(rnd.randint(0x4E00, 0x9FFF)) for _ in range(8)) for _ in range(chars))
    return " ".join(words)[:chars]


async def test_long_multibyte_exchange_within_input_limits_is_stored(archive: PostgresArchive) -> None:
    """Both sides just under 256 KiB of UTF-8 (MAX_MESSAGE_BYTES) of distinct CJK words.

    clean_text accepts this, so the archive must store it rather than report itself unavailable.
    """
    e = ex(ALICE_G1, 1, _unique_cjk_words(1, 94_000), _unique_cjk_words(2, 94_000))
    assert 250_000 < len(e.user_message.encode()) <= MAX_MESSAGE_BYTES
    assert clean_text(e.user_message, "user_message") == e.user_message
    assert await archive.insert(e)
    assert await archive.get(ALICE_G1, [e.id]) == [e]


async def test_hostile_ids_and_scopes_are_data(archive: PostgresArchive) -> None:
    await _seed(archive)
    evil = Scope("alice' OR '1'='1", "g1' OR '1'='1")
    assert await archive.recent(evil, 100) == []
    assert await archive.get(evil, [ex(ALICE_G1, 1).id]) == []
    assert await archive.forget(ForgetTarget("alice' OR '1'='1")) == 0
    assert await archive.count("alice") == 9


# --- forget ---------------------------------------------------------------------------------------

async def test_forget_exchanges_scope_and_user_cascades_outbox(archive: PostgresArchive,
                                                              outbox: PostgresOutbox) -> None:
    await _seed(archive)
    assert await outbox.pending() == 12
    # ids of another scope are not touched even when named
    target = ForgetTarget("alice", ALICE_G1, (ex(ALICE_G1, 1).id, ex(ALICE_G2, 1).id, ex(BOB_G1, 1).id))
    assert await archive.forget(target) == 1
    assert await archive.count("alice", ALICE_G1) == 2
    assert await archive.count("alice", ALICE_G2) == 3
    assert await outbox.pending() == 11
    assert await archive.forget(ForgetTarget("alice", ALICE_G2)) == 3
    assert await outbox.pending() == 8
    assert await archive.forget(ForgetTarget("alice")) == 5
    assert await archive.count("alice") == 0
    assert await outbox.pending() == 3
    assert await archive.count("bob") == 3
    claimed = await outbox.claim(10, 60)
    assert {e.user_id for e, _ in claimed} == {"bob"}


# --- outbox ---------------------------------------------------------------------------------------

async def test_claim_leases_rows_until_complete(archive: PostgresArchive, outbox: PostgresOutbox) -> None:
    await _seed(archive, (ALICE_G1,), n=5)
    await archive.insert(ex(BOB_G1, 1), cache_stale=True)
    first = await outbox.claim(4, lease_seconds=600)
    assert len(first) == 4
    assert all(isinstance(e, Exchange) for e, _ in first)
    second = await outbox.claim(10, lease_seconds=600)
    assert len(second) == 2
    assert not {e.id for e, _ in first} & {e.id for e, _ in second}
    assert await outbox.claim(10, 600) == []
    stale = {e.id: flag for e, flag in [*first, *second]}
    assert stale[ex(BOB_G1, 1).id] is True
    assert stale[ex(ALICE_G1, 1).id] is False
    assert await outbox.pending() == 6  # leased rows still count
    await outbox.complete([e.id for e, _ in first])
    assert await outbox.pending() == 2


async def test_expired_lease_is_claimable_again(archive: PostgresArchive, outbox: PostgresOutbox,
                                                pool: asyncpg.Pool) -> None:
    await archive.insert(ex(ALICE_G1, 1))
    assert len(await outbox.claim(10, lease_seconds=600)) == 1
    assert await outbox.claim(10, 600) == []
    # let the lease run out without sleeping: move it into the past
    await pool.execute("UPDATE outbox SET available_at = now() - interval '1 second'")
    again = await outbox.claim(10, 600)
    assert [e.id for e, _ in again] == [ex(ALICE_G1, 1).id]
    attempts = await pool.fetchval("SELECT attempts FROM outbox")
    assert attempts == 2


async def test_fail_records_error_and_retries_later(archive: PostgresArchive, outbox: PostgresOutbox,
                                                    pool: asyncpg.Pool) -> None:
    await archive.insert(ex(ALICE_G1, 1))
    await archive.insert(ex(ALICE_G1, 2))
    claimed = [e.id for e, _ in await outbox.claim(10, 600)]
    await outbox.fail(claimed[:1], "chroma down: ' ; DROP TABLE outbox", retry_in=0)
    await outbox.fail(claimed[1:], "graph down", retry_in=3600)
    assert await outbox.last_error() in {"chroma down: ' ; DROP TABLE outbox", "graph down"}
    assert [e.id for e, _ in await outbox.claim(10, 600)] == claimed[:1]
    assert await outbox.pending() == 2
    errors = {r["exchange_id"]: r["last_error"] for r in await pool.fetch("SELECT * FROM outbox")}
    assert errors == {claimed[0]: "chroma down: ' ; DROP TABLE outbox", claimed[1]: "graph down"}


async def test_concurrent_claimers_never_share_an_exchange(archive: PostgresArchive, dsn: str) -> None:
    await _seed(archive, (ALICE_G1, BOB_G1), n=30)
    pools = [await create_pool(dsn, max_size=2) for _ in range(4)]
    try:
        outboxes = [PostgresOutbox(p) for p in pools]

        async def drain(o: PostgresOutbox) -> list[str]:
            got: list[str] = []
            while batch := await o.claim(3, lease_seconds=600):
                got += [e.id for e, _ in batch]
            return got

        results = await asyncio.gather(*(drain(o) for o in outboxes))
    finally:
        for p in pools:
            await p.close()
    everything = [i for r in results for i in r]
    assert len(everything) == len(set(everything)) == 60


async def test_enqueue_all_requeues_with_stale_cache(archive: PostgresArchive,
                                                     outbox: PostgresOutbox) -> None:
    await _seed(archive, (ALICE_G1, BOB_G1), n=2)
    await outbox.complete([e.id for e, _ in await outbox.claim(10, 600)])
    assert await outbox.pending() == 0
    assert await outbox.enqueue_all("alice") == 2
    claimed = await outbox.claim(10, 600)
    assert {e.user_id for e, _ in claimed} == {"alice"}
    assert all(stale for _, stale in claimed)
    assert await outbox.enqueue_all() == 4  # leased rows are made available again too
    assert len(await outbox.claim(10, 600)) == 4


async def test_mark_cache_stale(archive: PostgresArchive, outbox: PostgresOutbox) -> None:
    await archive.insert(ex(ALICE_G1, 1))
    await archive.mark_cache_stale(ex(ALICE_G1, 1).id)
    assert [stale for _, stale in await outbox.claim(10, 600)] == [True]


# --- ledger ---------------------------------------------------------------------------------------

async def test_facts_add_list_remove_isolated(ledger: PostgresLedger) -> None:
    tea = await ledger.add_fact(ALICE_G1, "Prefers tea to coffee 🍵")
    dog = await ledger.add_fact(ALICE_G1, "'); DROP TABLE facts; --")
    await ledger.add_fact(ALICE_DM, "Secret DM fact")
    await ledger.add_fact(BOB_G1, "Bob's fact")
    assert [f.text for f in await ledger.facts(ALICE_G1)] == [tea.text, dog.text]
    assert [f.text for f in await ledger.facts(ALICE_DM)] == ["Secret DM fact"]
    assert {f.guild_id for f in await ledger.all_facts("alice")} == {"g1", None}
    assert await ledger.remove_fact(BOB_G1, tea.id) is False  # not bob's
    assert await ledger.remove_fact(ALICE_DM, tea.id) is False  # not this scope's
    assert await ledger.remove_fact(ALICE_G1, tea.id) is True
    assert await ledger.remove_fact(ALICE_G1, tea.id) is False
    assert [f.id for f in await ledger.facts(ALICE_G1)] == [dog.id]
    assert await ledger.count("alice") == 2
    assert await ledger.count("bob") == 1


async def test_curated_reads_the_scopes_facts_and_corrections_in_one_go(ledger: PostgresLedger) -> None:
    """``curated`` (the reply path's single statement) returns what ``facts`` and ``corrections``
    return, in the same order, for this user and scope only; forget empties it."""
    tea = await ledger.add_fact(ALICE_G1, "Prefers tea", "preference", 4)
    walks = await ledger.add_fact(ALICE_G1, "Walks to work", "work", 2)
    await ledger.add_fact(ALICE_DM, "DM fact")
    await ledger.add_fact(BOB_G1, "Bob's fact")
    await ledger.correct(ALICE_G1, "lives_in", "Lives in Paris", "Lives in Lyon")
    await ledger.correct(ALICE_G1, "pet", "Has a cat", None)
    await ledger.correct(BOB_G1, "pet", "Has a dog", None)
    curated = await ledger.curated(ALICE_G1)
    assert curated.facts == await ledger.facts(ALICE_G1) == [tea, walks]
    assert curated.corrections == await ledger.corrections(ALICE_G1) == {
        "lives_in": ("Lives in Paris", "Lives in Lyon"), "pet": ("Has a cat", None)}
    assert curated.hits == 2
    dm = await ledger.curated(ALICE_DM)
    assert ([f.text for f in dm.facts], dm.corrections) == (["DM fact"], {})
    await ledger.forget(ForgetTarget("alice", ALICE_G1))
    assert await ledger.curated(ALICE_G1) == type(curated)([], {})
    assert (await ledger.curated(BOB_G1)).corrections == {"pet": ("Has a dog", None)}


async def test_ledger_forget(ledger: PostgresLedger) -> None:
    for scope in (ALICE_G1, ALICE_DM, BOB_G1):
        await ledger.add_fact(scope, "fact")
        await ledger.record_usage(scope, 10, 5)
    assert await ledger.forget(ForgetTarget("alice", ALICE_G1, ("x",))) == 0
    assert await ledger.forget(ForgetTarget("alice", ALICE_G1)) == 1
    assert await ledger.count("alice") == 1
    assert await ledger.forget(ForgetTarget("alice")) == 1
    assert await ledger.count("alice") == 0
    assert await ledger.usage(user_id="alice") == []
    assert await ledger.count("bob") == 1
    assert len(await ledger.usage(user_id="bob")) == 1


async def test_usage_aggregates_per_user_and_scope(ledger: PostgresLedger) -> None:
    await ledger.record_usage(ALICE_G1, 100, 20)
    await ledger.record_usage(ALICE_G1, 50, 5)
    await ledger.record_usage(ALICE_DM, 7, 3)
    await ledger.record_usage(BOB_G1, 1000, 1)
    await ledger.record_usage(BOB_G1, -5, -5)  # negative counts are clamped, the request still counts
    rows = await ledger.usage()
    assert [(r.user_id, r.guild_id) for r in rows] == [("bob", "g1"), ("alice", "g1"), ("alice", None)]
    bob, alice_g1, alice_dm = rows
    assert (bob.prompt_tokens, bob.completion_tokens, bob.requests) == (1000, 1, 2)
    assert (alice_g1.prompt_tokens, alice_g1.completion_tokens, alice_g1.requests) == (150, 25, 2)
    assert alice_g1.total_tokens == 175
    assert alice_dm.total_tokens == 10
    assert [r.user_id for r in await ledger.usage(guild_id="g1")] == ["bob", "alice"]
    assert [(r.user_id, r.guild_id) for r in await ledger.usage(user_id="alice")] == [("alice", "g1"),
                                                                                       ("alice", None)]
    assert await ledger.usage(guild_id="g2") == []


# --- outages --------------------------------------------------------------------------------------

async def test_dead_dsn_raises_archive_unavailable() -> None:
    with pytest.raises(ArchiveUnavailable) as err:
        await create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    assert isinstance(err.value, TierUnavailable)
    assert err.value.tier == "archive"


async def test_methods_raise_archive_unavailable_on_a_closed_pool(dsn: str) -> None:
    pool = await create_pool(dsn, max_size=2)
    archive, outbox, ledger = PostgresArchive(pool), PostgresOutbox(pool), PostgresLedger(pool)
    await pool.close()
    with pytest.raises(ArchiveUnavailable):
        await archive.insert(ex(ALICE_G1, 1))
    with pytest.raises(ArchiveUnavailable):
        await archive.recent(ALICE_G1, 5)
    with pytest.raises(ArchiveUnavailable):
        await archive.ping()
    with pytest.raises(ArchiveUnavailable):
        await outbox.claim(5, 60)
    with pytest.raises(ArchiveUnavailable):
        await ledger.add_fact(ALICE_G1, "x")


async def test_search_weighs_rare_words_over_common_ones(archive: PostgresArchive) -> None:
    """Ranking is IDF-weighted: one rare shared word beats two common ones."""
    common = [ex(ALICE_G1, i, f"my friend and I went for dinner again, number {i}") for i in range(12)]
    rare = ex(ALICE_G1, 50, "Casimir called today")
    both_common = ex(ALICE_G1, 51, "friend dinner friend dinner")
    for e in [*common, rare, both_common]:
        assert await archive.insert(e)
    hits = await archive.search(ALICE_G1, "did my friend Casimir come to dinner?", 20)
    assert hits[0].exchange_id == rare.id
    assert {h.exchange_id for h in hits} == {e.id for e in [*common, rare, both_common]}
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


async def test_search_ignores_words_most_of_a_big_history_holds(
        archive: PostgresArchive, monkeypatch: pytest.MonkeyPatch) -> None:
    from memory.tiers import archive as archive_module

    monkeypatch.setattr(archive_module, "COMMON_WORD_ROWS", 5)  # as if the history were big
    chatter = [ex(ALICE_G1, i, f"lovely weather again today, number {i}") for i in range(8)]
    kayak = ex(ALICE_G1, 40, "I bought a kayak, the weather was lovely")
    for e in [*chatter, kayak]:
        assert await archive.insert(e)
    # "weather" and "lovely" are in 9 exchanges (> 5): only "kayak" still matches
    hits = await archive.search(ALICE_G1, "lovely weather for my kayak", 20)
    assert [h.exchange_id for h in hits] == [kayak.id]
    # a query of common words alone finds nothing in full text (the semantic tier still can)
    assert await archive.search(ALICE_G1, "lovely weather", 20) == []
    monkeypatch.setattr(archive_module, "COMMON_WORD_ROWS", 500)
    assert len(await archive.search(ALICE_G1, "lovely weather", 20)) == 9


async def test_refresh_statistics_runs_analyze_once_enough_rows_changed(archive: PostgresArchive,
                                                                         pool: asyncpg.Pool) -> None:
    await pool.execute("ANALYZE exchanges")
    await archive.insert(ex(ALICE_DM, 1, "the Matterhorn from Zermatt", "lovely"))
    assert not await archive.refresh_statistics(), "one row is below the floor"
    for n in range(2, 702):
        await archive.insert(ex(ALICE_DM, n, f"ordinary day number {n}", "ok"))

    async def refreshed() -> bool:  # the cumulative counters reach pg_stat within about a second
        for _ in range(60):
            if await archive.refresh_statistics():
                return True
            await asyncio.sleep(0.1)
        return False

    assert await refreshed()
    assert await pool.fetchval("SELECT reltuples FROM pg_class WHERE oid = 'exchanges'::regclass") >= 700
    assert not await archive.refresh_statistics(), "nothing changed since"
