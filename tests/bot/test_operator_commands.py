"""Operator-only commands through their callbacks (mocked Interaction, real tiers).

``/memory migrate``: only the bot's owners (application owner or team admins and
developers, or ``BOT__OWNER_IDS``), only sources on ``MIGRATION__ALLOWED_SOURCES``
picked by name, nothing written to a legacy store, no connection to anything off
the list, and fixed error texts. ``/memory stats``: a guild admin sees their
guild's figures only; owners also see the whole bot's.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest
import pytest_asyncio

from bot.client import MnemoBot
from bot.cogs.memory import MemoryCog
from bot.settings import BotSettings, ChatSettings
from memory.launcher import Addresses
from memory.manager import HierarchicalMemoryManager
from memory.settings import MigrationSettings
from tests import servers
from tests.bot.conftest import application, memory_settings_for
from tests.bot.test_cogs import _interaction, _sent
from tests.memory import legacy_stores as legacy
from tests.memory.test_worker_isolation import PoisonedExtractor

APP_OWNER = 4242
LISTED_OWNER = 5151          # in BOT__OWNER_IDS, not the application's owner
MARKER = "remote-secret-7f3a"
OWNERS_ONLY = "Only the bot's owners can migrate."
NOT_LISTED = "That is not one of the sources the operator allowed; pick one from the list."
UNREADABLE = "Migration stopped: the legacy store could not be read. Details are in the bot's log."
NO_STORE = ("Migration stopped: the source holds no Chroma store, or no collection of that name. "
            "Details are in the bot's log.")


class Recorder:
    """A loopback HTTP server that counts connections and answers every request with a 200 whose
    JSON body holds ``MARKER``: a host the bot must not reach, or must not quote."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> Recorder:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        body = json.dumps({"error": MARKER, "collections": [MARKER], "nanosecond heartbeat": 1}).encode()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
            if length:
                await reader.readexactly(int(length[1]))
            # one answer per connection: chromadb leaves its HTTP pool open when its client's
            # constructor fails on an odd answer, so the connection must not outlive the response
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                         b"content-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def aclose(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest_asyncio.fixture
async def recorder() -> AsyncIterator[Recorder]:
    server = await Recorder().start()
    yield server
    await server.aclose()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cog_for(memory: HierarchicalMemoryManager, tmp_path: Path, allowed: dict[str, str], *,
            app: MagicMock | None = None, owner_ids: frozenset[int] = frozenset({LISTED_OWNER})) -> MemoryCog:
    settings = BotSettings(data_dir=tmp_path / "bot-data", bot=ChatSettings(owner_ids=owner_ids),
                           migration=MigrationSettings(allowed_sources=allowed))
    bot = MnemoBot(memory, None, settings)
    bot.application_info = AsyncMock(  # type: ignore[method-assign]
        return_value=app if app is not None else application(owner_id=APP_OWNER))
    return MemoryCog(bot)


async def migrate(cog: MemoryCog, user: int, source: str, **options: object) -> tuple[MagicMock, MagicMock]:
    """Run /memory migrate as ``user`` (a Manage Server admin of a guild); (interaction, status message)."""
    it = _interaction(user, admin=True)
    status = MagicMock()
    status.edit = AsyncMock()
    it.followup.send = AsyncMock(return_value=status)
    await MemoryCog.migrate.callback(cog, it, source, **options)  # type: ignore[arg-type]
    return it, status


def refused(it: MagicMock) -> str:
    """The refusal sent, after checking that nothing started."""
    text, kwargs = _sent(it.response.send_message)
    assert kwargs["ephemeral"] is True
    it.response.defer.assert_not_awaited()
    it.followup.send.assert_not_awaited()
    return text


def final(status: MagicMock) -> str:
    return str(status.edit.call_args.kwargs["content"])


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, str, int]:
    """(legacy store folder, the legacy user, exchanges in it)."""
    user = f"legacy-{uuid.uuid4().hex[:10]}"
    records, _ = legacy.exchange_store(f"op{user}", [user], per_user=4)
    legacy.write_collection(tmp_path / "stores" / "legacy", "user_memories", records)
    return tmp_path / "stores" / "legacy", user, 4


async def test_a_guild_admin_who_is_not_an_owner_cannot_migrate(
        memory: HierarchicalMemoryManager, tmp_path: Path, recorder: Recorder,
        store: tuple[Path, str, int]) -> None:
    path, legacy_user, _ = store
    cog = cog_for(memory, tmp_path, {"old": str(path), "remote": recorder.url})
    before = legacy.file_tree(tmp_path / "stores")
    for source in ("old", "remote", str(path), recorder.url):
        it, _ = await migrate(cog, 777, source)
        assert refused(it) == OWNERS_ONLY
    assert await cog.source_choices(_interaction(777, admin=True), "") == []   # not even the names
    assert recorder.connections == 0
    assert legacy.file_tree(tmp_path / "stores") == before
    assert (await memory.counts(legacy_user))["archive"] == 0


async def test_owners_pick_sources_from_the_allow_list_only(
        memory: HierarchicalMemoryManager, tmp_path: Path, recorder: Recorder,
        store: tuple[Path, str, int]) -> None:
    path, legacy_user, _ = store
    other = tmp_path / "stores" / "other"
    legacy.write_collection(other, "user_memories", legacy.exchange_store("x", [legacy_user], per_user=2)[0])
    cog = cog_for(memory, tmp_path, {"old": str(path)})
    before = legacy.file_tree(tmp_path / "stores")
    for typed in (recorder.url, f"{recorder.url}/api/v2", str(other), str(path), "old ", "OLD", "../old"):
        it, _ = await migrate(cog, APP_OWNER, typed)
        assert refused(it) == NOT_LISTED
    assert recorder.connections == 0
    assert legacy.file_tree(tmp_path / "stores") == before
    assert (await memory.counts(legacy_user))["archive"] == 0

    choices = await cog.source_choices(_interaction(APP_OWNER), "")
    assert [(c.name, c.value) for c in choices] == [("old", "old")]       # names, never the path

    off = cog_for(memory, tmp_path, {})
    it, _ = await migrate(off, APP_OWNER, "old")
    assert refused(it) == "Migration is off: the operator has allowed no source (MIGRATION__ALLOWED_SOURCES)."


async def test_owner_dry_run_writes_nothing_and_the_real_run_reads_only(
        memory: HierarchicalMemoryManager, tmp_path: Path, store: tuple[Path, str, int]) -> None:
    path, legacy_user, n = store
    cog = cog_for(memory, tmp_path, {"old": str(path)})
    before = legacy.file_tree(tmp_path / "stores")

    it, status = await migrate(cog, APP_OWNER, "old", dry_run=True)
    it.response.defer.assert_awaited_once()
    assert _sent(it.followup.send)[0] == "Migrating from `old`…"
    assert final(status).startswith("Migration dry run done in ")
    assert f"would create {n} exchanges for 1 users" in final(status)
    assert legacy.file_tree(tmp_path / "stores") == before
    assert all(count == 0 for count in (await memory.counts(legacy_user)).values())

    it, status = await migrate(cog, LISTED_OWNER, "old")
    assert f"created {n} exchanges for 1 users, 0 already there, 0 unmappable" in final(status)
    counts = await memory.counts(legacy_user)
    assert counts["archive"] == n and counts["summaries"] == n and counts["graph"] > 0
    assert legacy.file_tree(tmp_path / "stores") == before
    await memory.forget(legacy_user)


async def test_owners_are_the_application_owner_its_team_and_bot_owner_ids(
        memory: HierarchicalMemoryManager, tmp_path: Path, store: tuple[Path, str, int]) -> None:
    path, _, n = store
    allowed = {"old": str(path)}
    solo = cog_for(memory, tmp_path, allowed)
    team = cog_for(memory, tmp_path, allowed, app=application(team=[
        (11, discord.TeamMemberRole.admin), (12, discord.TeamMemberRole.developer),
        (13, discord.TeamMemberRole.read_only)]))
    cases = [(solo, APP_OWNER, True), (solo, LISTED_OWNER, True), (solo, 11, False),
             (team, 11, True), (team, 12, True), (team, 13, False), (team, APP_OWNER, False),
             (team, LISTED_OWNER, True)]
    for cog, user, allowed_to in cases:
        it, status = await migrate(cog, user, "old", dry_run=True)
        if allowed_to:
            assert f"would create {n} exchanges" in final(status), (user, allowed_to)
        else:
            assert refused(it) == OWNERS_ONLY, (user, allowed_to)

    # Discord cannot be asked: BOT__OWNER_IDS still count, nobody else does
    unreachable = cog_for(memory, tmp_path, allowed)
    unreachable.bot.application_info = AsyncMock(  # type: ignore[method-assign]
        side_effect=discord.HTTPException(MagicMock(status=503, reason="unavailable"), "down"))
    assert await unreachable.bot.is_operator(_interaction(APP_OWNER).user) is False
    assert await unreachable.bot.is_operator(_interaction(LISTED_OWNER).user) is True


async def test_failures_are_fixed_texts_that_quote_nothing(
        memory: HierarchicalMemoryManager, tmp_path: Path, recorder: Recorder,
        store: tuple[Path, str, int]) -> None:
    path, _, _ = store
    empty = tmp_path / "stores" / "empty"
    empty.mkdir()
    cog = cog_for(memory, tmp_path, {"answers": recorder.url, "closed": f"http://127.0.0.1:{closed_port()}",
                                     "empty": str(empty), "store": str(path)})

    _, answered = await migrate(cog, APP_OWNER, "answers", dry_run=True)
    assert recorder.connections >= 1                 # allow-listed: the bot did ask that server
    _, closed = await migrate(cog, APP_OWNER, "closed", dry_run=True)
    assert final(answered) == final(closed) == UNREADABLE          # an open port looks like a closed one
    assert MARKER not in final(answered)

    _, no_store = await migrate(cog, APP_OWNER, "empty", dry_run=True)
    _, no_collection = await migrate(cog, APP_OWNER, "store", collection="not_there", dry_run=True)
    assert final(no_store) == final(no_collection) == NO_STORE      # no path, no collection names
    assert list(empty.iterdir()) == []                               # nothing created in the folder


async def test_a_guild_admin_sees_their_guild_and_owners_the_whole_bot(
        bundled: Addresses, tmp_path: Path) -> None:
    guild_a, guild_b = 880001, 880002
    dsn = await servers.create_database(bundled.postgres_dsn)       # exact totals: a database of its own
    async with HierarchicalMemoryManager.from_env(memory_settings_for(bundled, tmp_path / "data", dsn)) as memory:
        for user, guild, n in (("501", guild_a, 2), ("502", guild_a, 1), ("503", guild_b, 2), ("501", None, 1)):
            for i in range(n):
                await memory.store_conversation(user, f"message {i} of {user}", "reply",
                                                guild_id=None if guild is None else str(guild))
        await memory.record_usage("501", str(guild_a), 100, 20)
        await memory.record_usage("503", str(guild_b), 50, 5)
        cog = cog_for(memory, tmp_path, {})

        async def stats(user: int, guild: int | None, admin: bool) -> dict[str, str]:
            it = _interaction(user, guild, admin=admin)
            await MemoryCog.stats.callback(cog, it)  # type: ignore[arg-type]
            return {f.name: str(f.value) for f in _sent(it.followup.send)[1]["embed"].fields}

        admin_a = await stats(9001, guild_a, True)
        # no bot-wide figures, no tier health
        assert list(admin_a) == ["This server", "Active conversations here (last 30 min)"]
        assert admin_a["This server"] == ("2 users · 3 exchanges · 1 messages answered · 120 tokens\n"
                                          "<@501>: 1 msgs, 100+20 tokens")
        admin_b = await stats(9002, guild_b, True)
        assert admin_b["This server"] == ("1 users · 2 exchanges · 1 messages answered · 55 tokens\n"
                                          "<@503>: 1 msgs, 50+5 tokens")

        owner_a = await stats(APP_OWNER, guild_a, False)            # an owner need not be a guild admin
        assert owner_a["This server"] == admin_a["This server"]
        assert owner_a["Bot-wide (owners only)"].startswith("3 users · 6 exchanges · ")
        assert owner_a["Bot-wide (owners only)"].endswith("tokens: 150 prompt + 25 completion")
        assert "archive" in owner_a["Tiers"]
        owner_dm = await stats(LISTED_OWNER, None, False)
        assert list(owner_dm) == ["Bot-wide (owners only)", "Tiers", "Worker"]
        assert owner_dm["Worker"] == ("0 dead letters (`python -m memory dead-letters`) · "
                                      "restarts of bundled servers: none")

        for member, guild in ((9003, guild_a), (9004, None)):        # a member, and anyone in DMs
            it = _interaction(member, guild, admin=False)
            await MemoryCog.stats.callback(cog, it)  # type: ignore[arg-type]
            assert refused(it) == "Only server admins (Manage Server) can see this server's stats."


async def test_owners_see_dead_letters_in_stats_and_admins_do_not(bundled: Addresses, tmp_path: Path) -> None:
    dsn = await servers.create_database(bundled.postgres_dsn)
    settings = memory_settings_for(bundled, tmp_path / "data", dsn)
    settings.worker.in_process = False
    settings.worker.max_attempts = 1
    async with HierarchicalMemoryManager.from_env(settings) as memory:
        memory.worker.extractor = PoisonedExtractor(memory.extractor)
        await memory.store_conversation("601", "POISON one", "ok", guild_id="880010")
        await memory.store_conversation("602", "POISON two", "ok", guild_id="880010")
        await memory.store_conversation("603", "a healthy message about Oslo", "ok", guild_id="880010")
        for _ in range(3):
            await memory.worker.run_once()
        assert await memory.pending() == 0
        cog = cog_for(memory, tmp_path, {})

        async def fields(user: int, admin: bool) -> dict[str, str]:
            it = _interaction(user, 880010, admin=admin)
            await MemoryCog.stats.callback(cog, it)  # type: ignore[arg-type]
            return {f.name: str(f.value) for f in _sent(it.followup.send)[1]["embed"].fields}

        assert (await fields(APP_OWNER, False))["Worker"].startswith("2 dead letters ")
        assert "Worker" not in await fields(9010, True)
