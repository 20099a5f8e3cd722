"""Slash commands, called through their callbacks with a mocked Interaction, on real memory tiers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest
from discord import app_commands

from bot.client import MnemoBot
from bot.cogs.facts import FactsCog
from bot.cogs.memory import ConfirmView, MemoryCog
from memory.manager import HierarchicalMemoryManager
from tests.bot.conftest import application, bot_settings

GUILD = 7001


def _interaction(user_id: int, guild_id: int | None = GUILD, *, admin: bool = False) -> MagicMock:
    it = MagicMock(spec=discord.Interaction)
    it.user = MagicMock(spec=discord.Member)
    it.user.id = user_id
    it.guild_id = guild_id
    it.permissions = discord.Permissions(manage_guild=admin)
    it.response = MagicMock()
    it.response.send_message = AsyncMock()
    it.response.defer = AsyncMock()
    it.response.edit_message = AsyncMock()
    it.followup = MagicMock()
    it.followup.send = AsyncMock()
    it.edit_original_response = AsyncMock()
    return it


def _sent(mock: AsyncMock) -> tuple[str, dict]:  # type: ignore[type-arg]
    """(content, kwargs) of the only call of a send-like mock."""
    mock.assert_awaited_once()
    args, kwargs = mock.call_args
    return (args[0] if args else kwargs.get("content", "")), kwargs


@pytest.fixture
def user() -> int:
    return uuid.uuid4().int % 10**17


@pytest.fixture
def cogs(memory: HierarchicalMemoryManager, tmp_path: Path) -> tuple[MemoryCog, FactsCog]:
    bot = MnemoBot(memory, None, bot_settings(None, tmp_path))
    bot.application_info = AsyncMock(return_value=application(owner_id=1))  # type: ignore[method-assign]
    return MemoryCog(bot), FactsCog(bot)


async def _store(memory: HierarchicalMemoryManager, user: int) -> None:
    await memory.store_conversation(str(user), "I am planning a trip to Kyoto", "Kyoto is lovely in autumn",
                                    guild_id=str(GUILD), channel_id="c")
    await memory.store_conversation(str(user), "my cat is called Biscuit", "What a nice name",
                                    guild_id=None, channel_id="dm")
    await memory.flush()


async def test_remember_show_and_forget_fact(cogs: tuple[MemoryCog, FactsCog], user: int,
                                             memory: HierarchicalMemoryManager) -> None:
    memory_cog, facts_cog = cogs
    it = _interaction(user)
    await FactsCog.remember.callback(facts_cog, it, "I am allergic to peanuts")
    text, kwargs = _sent(it.response.send_message)
    assert "allergic to peanuts" in text and kwargs["ephemeral"] is True

    it = _interaction(user)
    await MemoryCog.show.callback(memory_cog, it)
    _, kwargs = _sent(it.followup.send)
    fields = {f.name: f.value for f in kwargs["embed"].fields}
    assert "I am allergic to peanuts" in fields["Facts (/remember)"]
    assert "facts 1" in fields["Stored per tier (-1: tier down)"]

    choices = await facts_cog._fact_choices(_interaction(user), "peanut")
    assert [c.name for c in choices] == ["I am allergic to peanuts"]
    assert await facts_cog._fact_choices(_interaction(user, None), "peanut") == []  # another scope

    it = _interaction(user)
    await FactsCog.forget_fact.callback(facts_cog, it, choices[0].value)
    assert _sent(it.response.send_message)[0] == "Forgotten."
    assert await memory.facts(str(user), guild_id=str(GUILD)) == []

    it = _interaction(user)
    await FactsCog.forget_fact.callback(facts_cog, it, choices[0].value)
    assert "I have no fact" in _sent(it.response.send_message)[0]


async def test_forget_everything_after_confirmation(cogs: tuple[MemoryCog, FactsCog], user: int,
                                                    memory: HierarchicalMemoryManager) -> None:
    memory_cog, _ = cogs
    await _store(memory, user)
    await memory.remember_fact(str(user), "I like chess", guild_id=str(GUILD))
    before = await memory.counts(str(user))
    assert before["archive"] == 2 and before["facts"] == 1

    it = _interaction(user)
    await MemoryCog.forget.callback(memory_cog, it, app_commands.Choice(name="all", value="all"))
    question, kwargs = _sent(it.followup.send)
    assert "everything" in question and kwargs["ephemeral"] is True
    view = kwargs["view"]
    assert isinstance(view, ConfirmView)

    stranger = _interaction(user + 1)
    assert await view.interaction_check(stranger) is False
    assert await memory.counts(str(user)) == before

    press = _interaction(user)
    await view.confirm.callback(press)
    report = press.edit_original_response.call_args.kwargs["content"]
    assert "archive 2" in report and "facts 1" in report
    assert await memory.counts(str(user)) == {k: 0 for k in before}


async def test_forget_here_keeps_other_scopes_and_cancel_keeps_all(
        cogs: tuple[MemoryCog, FactsCog], user: int, memory: HierarchicalMemoryManager) -> None:
    memory_cog, _ = cogs
    await _store(memory, user)
    it = _interaction(user)
    await MemoryCog.forget.callback(memory_cog, it, app_commands.Choice(name="here", value="here"))
    view = it.followup.send.call_args.kwargs["view"]
    press = _interaction(user)
    await view.cancel.callback(press)
    assert "nothing was forgotten" in press.response.edit_message.call_args.kwargs["content"]
    assert (await memory.counts(str(user)))["archive"] == 2

    it = _interaction(user)
    await MemoryCog.forget.callback(memory_cog, it, app_commands.Choice(name="here", value="here"))
    view = it.followup.send.call_args.kwargs["view"]
    await view.confirm.callback(_interaction(user))
    assert (await memory.counts(str(user), guild_id=str(GUILD)))["archive"] == 0
    assert (await memory.counts(str(user), dm=True))["archive"] == 1


async def test_forget_topic_says_what_it_takes_and_asks_nothing_for_nothing(
        cogs: tuple[MemoryCog, FactsCog], user: int, memory: HierarchicalMemoryManager) -> None:
    memory_cog, _ = cogs
    await _store(memory, user)  # "I am planning a trip to Kyoto" in the guild
    topic = app_commands.Choice(name="topic", value="topic")
    it = _interaction(user)
    await MemoryCog.forget.callback(memory_cog, it, topic, "Kyoto")
    question, kwargs = _sent(it.followup.send)
    assert question == "Forget our exchanges about “Kyoto” in this server (1 exchange so far)?"
    assert isinstance(kwargs["view"], ConfirmView)
    it = _interaction(user)
    await MemoryCog.forget.callback(memory_cog, it, topic, "Lisbon")  # said nowhere: no button to press
    text, kwargs = _sent(it.followup.send)
    assert text == "Nothing I remember in this server mentions “Lisbon”, so there is nothing to forget."
    assert "view" not in kwargs
    assert (await memory.counts(str(user)))["archive"] == 2


async def test_forget_topic_needs_a_topic(cogs: tuple[MemoryCog, FactsCog], user: int) -> None:
    it = _interaction(user)
    await MemoryCog.forget.callback(cogs[0], it, app_commands.Choice(name="topic", value="topic"), None)
    text, kwargs = _sent(it.response.send_message)
    assert "topic" in text and "view" not in kwargs


async def test_export_attaches_everything_as_json(cogs: tuple[MemoryCog, FactsCog], user: int,
                                                  memory: HierarchicalMemoryManager) -> None:
    await _store(memory, user)
    it = _interaction(user)
    await MemoryCog.export.callback(cogs[0], it)
    _, kwargs = _sent(it.followup.send)
    assert kwargs["ephemeral"] is True
    file: discord.File = kwargs["file"]
    data = json.loads(file.fp.read().decode("utf-8"))
    assert sorted(e["user_message"] for e in data["exchanges"]) == ["I am planning a trip to Kyoto",
                                                                    "my cat is called Biscuit"]


async def test_search_shows_what_would_be_used(cogs: tuple[MemoryCog, FactsCog], user: int,
                                               memory: HierarchicalMemoryManager) -> None:
    await _store(memory, user)
    it = _interaction(user)
    await MemoryCog.search.callback(cogs[0], it, "Kyoto trip")
    embed = _sent(it.followup.send)[1]["embed"]
    assert "I am planning a trip to Kyoto" in embed.description
    assert "Biscuit" not in embed.description  # the DM exchange is not in this guild's context


async def test_profile_command_shows_removes_and_replaces_lines(cogs: tuple[MemoryCog, FactsCog], user: int,
                                                                memory: HierarchicalMemoryManager) -> None:
    memory_cog, _ = cogs
    await memory.store_conversation(str(user), "Hi, I'm Lena. I live in Graz and my cat Mochi says hi.",
                                    "Hello Lena and Mochi!", guild_id=str(GUILD), channel_id="c")
    await memory.flush()
    it = _interaction(user)
    await MemoryCog.profile.callback(memory_cog, it, None, None, None)
    text, kwargs = _sent(it.response.send_message)
    assert kwargs["ephemeral"] is True
    assert "`name` Name: Lena" in text and "`pets` Pets: cat Mochi" in text and "`home` Lives in Graz" in text

    it = _interaction(user)
    await MemoryCog.profile.callback(memory_cog, it, app_commands.Choice(name="r", value="replace"), "home",
                                     "Lives in Vienna")
    text, _ = _sent(it.response.send_message)
    assert "`home` Lives in Vienna (your correction)" in text
    it = _interaction(user)
    await MemoryCog.profile.callback(memory_cog, it, app_commands.Choice(name="r", value="remove"), "pets", None)
    text, _ = _sent(it.response.send_message)
    assert text.startswith("Line `pets` removed.") and "Mochi" not in text
    assert [ln.key for ln in (await memory.user_profile(str(user), str(GUILD))).lines] == ["name", "home"]
    # the DM profile is another scope: untouched and empty
    assert (await memory.user_profile(str(user))).lines == ()

    it = _interaction(user)
    await MemoryCog.profile.callback(memory_cog, it, app_commands.Choice(name="r", value="remove"), "shoes", None)
    text, _ = _sent(it.response.send_message)
    assert text.startswith("I can't do that: your profile has no line 'shoes'")

    it = _interaction(user)
    await MemoryCog.show.callback(memory_cog, it)
    _, kwargs = _sent(it.followup.send)
    fields = {f.name: f.value for f in kwargs["embed"].fields}
    assert "`home` Lives in Vienna (your correction)" in fields["Profile (/memory profile to correct it)"]


async def test_the_profile_line_option_offers_the_askers_own_lines(cogs: tuple[MemoryCog, FactsCog], user: int,
                                                                  memory: HierarchicalMemoryManager) -> None:
    memory_cog, _ = cogs
    await memory.store_conversation(str(user), "Hi, I'm Lena. I live in Graz and I'm allergic to cats.",
                                    "Hello Lena!", guild_id=str(GUILD), channel_id="c")
    other = user + 1
    await memory.store_conversation(str(other), "I'm Tom and I live in Oslo.", "Hi Tom!", guild_id=str(GUILD))
    await memory.flush()
    complete = MemoryCog.profile._params["line"].autocomplete
    assert complete is not None

    choices = await complete(memory_cog, _interaction(user), "")
    assert [c.value for c in choices] == ["name", "home", "allergies"]
    assert choices[0].name == "name: Name: Lena" and choices[2].name == "allergies: Allergic to: cats"
    assert choices[1].name.startswith("home: Lives in Graz (as of ")
    assert [c.value for c in await complete(memory_cog, _interaction(user), "GRAZ")] == ["home"]
    assert await complete(memory_cog, _interaction(user), "Oslo") == []  # another user's line is never offered
    assert await complete(memory_cog, _interaction(user, None), "") == []  # the DM scope has no profile yet


async def test_a_forget_confirmation_nobody_answers_is_closed_and_runs_nothing() -> None:
    ran: list[str] = []

    async def action() -> str:
        ran.append("forgot")
        return "Forgotten."

    view = ConfirmView(1, action, timeout=300)
    view.message = MagicMock(spec=discord.Message)
    view.message.edit = AsyncMock()
    await view.on_timeout()  # what discord.py calls when the timeout passes with no press
    view.message.edit.assert_awaited_once_with(content="No answer: nothing was forgotten.", view=None)
    assert ran == []


async def test_timezone_is_the_users_own_and_shown_in_their_memories(cogs: tuple[MemoryCog, FactsCog], user: int,
                                                                     memory: HierarchicalMemoryManager) -> None:
    memory_cog, _ = cogs
    await memory.store_conversation(str(user), "I finished the marathon!", "Congratulations!",
                                    guild_id=str(GUILD), channel_id="c",
                                    timestamp=datetime(2026, 4, 20, 2, 30, tzinfo=UTC))  # 22:30 on the 19th in New York
    it = _interaction(user)
    await MemoryCog.timezone.callback(memory_cog, it, "Europe/Berl", False)
    text, kwargs = _sent(it.response.send_message)
    assert text == ("I don't know a time zone called \"Europe/Berl\". Zones named like it: Europe/Berlin. If none "
                    "is yours, give a big city near you that shares your time (Europe/Paris for Lyon, say).")
    assert kwargs["ephemeral"] is True
    choices = await memory_cog.zone_choices(_interaction(user), "new y")
    assert choices[0].value == "America/New_York"
    it = _interaction(user, None)  # set in DMs: the same setting in every server
    await MemoryCog.timezone.callback(memory_cog, it, choices[0].value, False)
    assert _sent(it.response.send_message)[0].startswith("Your time zone is now America/New_York (it's ")
    other = uuid.uuid4().int % 10**17
    it = _interaction(other)
    await MemoryCog.timezone.callback(memory_cog, it, None, False)  # another user's stays UTC
    assert _sent(it.response.send_message)[0].startswith("I use UTC for you.")

    it = _interaction(user)
    await MemoryCog.show.callback(memory_cog, it)
    fields = {f.name: f.value for f in _sent(it.followup.send)[1]["embed"].fields}
    assert "`2026-04-19` I finished the marathon!" in fields["Recent exchanges"]
    assert fields["Your settings"] == "Time zone: America/New_York\nRemembering here (/memory pause stops it)"
    it = _interaction(user)
    await MemoryCog.timezone.callback(memory_cog, it, None, True)
    assert _sent(it.response.send_message)[0].startswith("Back to UTC")
    it = _interaction(user)
    await MemoryCog.show.callback(memory_cog, it)
    fields = {f.name: f.value for f in _sent(it.followup.send)[1]["embed"].fields}
    assert "`2026-04-20` I finished the marathon!" in fields["Recent exchanges"]
    await memory.pause(str(user), guild_id=str(GUILD))
    it = _interaction(user)
    await MemoryCog.show.callback(memory_cog, it)
    fields = {f.name: f.value for f in _sent(it.followup.send)[1]["embed"].fields}
    assert fields["Your settings"] == ("Time zone: UTC (not set: /memory timezone)\n"
                                       "Paused here: I remember nothing new (/memory resume)")


def _message(author_id: int, content: str) -> MagicMock:
    message = MagicMock(spec=discord.Message)
    message.author = MagicMock(spec=discord.Member)
    message.author.id = author_id
    message.content = content
    message.mentions = message.role_mentions = message.channel_mentions = []
    return message


async def test_remember_this_saves_the_users_own_message_and_refuses_anothers(
        cogs: tuple[MemoryCog, FactsCog], user: int, memory: HierarchicalMemoryManager) -> None:
    _, facts_cog = cogs
    it = _interaction(user)
    await facts_cog.remember_message(it, _message(user, "  My flat is on the fourth floor, no lift.  "))
    assert _sent(it.response.send_message)[0].startswith("Saved in this server: “My flat is on the fourth floor")
    it = _interaction(user)
    await facts_cog.remember_message(it, _message(user + 1, "My PIN is 4096"))  # somebody else's words
    assert _sent(it.response.send_message)[0].startswith("I only save your own messages or mine")
    it = _interaction(user)
    await facts_cog.remember_message(it, _message(user, ""))  # a photo alone
    assert _sent(it.response.send_message)[0] == "That message has no text to save."
    it = _interaction(user)
    await facts_cog.remember_message(it, _message(user, "word " * 200))
    assert _sent(it.response.send_message)[0].startswith("That message is 999 characters and a fact holds 500")
    assert [f.text for f in await memory.facts(str(user), guild_id=str(GUILD))] == [
        "My flat is on the fourth floor, no lift."]
    assert await memory.facts(str(user + 1), guild_id=str(GUILD)) == []
