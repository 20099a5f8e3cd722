"""Discord's own events and the per-user, per-guild preferences, through the client with dpytest.

Edits and deletions arrive as gateway events (``parse_message_update`` and a real
``Message.delete()`` through dpytest's backend); slash commands are called through
their callbacks with a mocked Interaction. Memory tiers and the LLM server are real
(the LLM is the fake OpenAI-compatible server, which records every request).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from unittest.mock import AsyncMock, MagicMock

import discord
import discord.ext.test as dpytest
import pytest
import pytest_asyncio
from discord.ext.test import backend, factories

from bot.chat import memory_notice
from bot.client import MnemoBot
from bot.cogs.memory import MemoryCog
from bot.llm import ChatLLM
from memory.manager import HierarchicalMemoryManager
from tests.bot.conftest import bot_settings
from tests.bot.fake_llm import FakeLLM


@pytest_asyncio.fixture
async def bot(memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM,
              tmp_path: Path) -> AsyncIterator[MnemoBot]:
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True  # dpytest resolves mentions through the member cache
    made = MnemoBot(memory, chat_llm, bot_settings(fake_llm, tmp_path), intents=intents)
    await made._async_setup_hook()
    # two guilds with one text channel and one member each (fresh ids every test)
    dpytest.configure(made, guilds=2, text_channels=1, voice_channels=0, members=1)
    made._connection.loop = asyncio.get_running_loop()
    yield made
    await dpytest.empty_queue()


def sent() -> list[discord.Message]:
    out = []
    while not dpytest.sent_queue.empty():
        out.append(dpytest.get_message())
    return out


def where(i: int) -> tuple[discord.TextChannel, discord.Member, str]:
    cfg = dpytest.get_config()
    channel, member = cfg.channels[i], cfg.members[i]
    assert channel.guild.id == member.guild.id == cfg.guilds[i].id
    return channel, member, str(cfg.guilds[i].id)


async def say(bot: MnemoBot, text: str, i: int = 0, *, mention: bool = True) -> discord.Message:
    channel, member, _ = where(i)
    assert bot.user is not None
    return await dpytest.message(f"<@{bot.user.id}> {text}" if mention else text, channel=channel, member=member)


async def edit(message: discord.Message, content: str) -> None:
    """The author edits ``message``: the gateway's MESSAGE_UPDATE, as Discord sends it."""
    data = factories.dict_from_message(message)
    data["content"] = content
    data["edited_timestamp"] = discord.utils.utcnow().isoformat()
    data["channel_id"] = message.channel.id
    if message.guild is not None:
        data["guild_id"] = message.guild.id
    backend.get_state().parse_message_update(data)  # type: ignore[arg-type]
    await dpytest.run_all_events()


def interaction(user_id: int, guild_id: int | None, *, admin: bool) -> MagicMock:
    it = MagicMock(spec=discord.Interaction)
    it.user = MagicMock(spec=discord.Member)
    it.user.id = user_id
    it.guild_id = guild_id
    it.permissions = discord.Permissions(manage_guild=admin)
    it.response = MagicMock()
    it.response.send_message = AsyncMock()
    return it


def memory_cog(bot: MnemoBot) -> MemoryCog:
    return MemoryCog(bot)


async def test_an_edited_message_is_remembered_with_its_new_text(
        bot: MnemoBot, memory: HierarchicalMemoryManager, fake_llm: FakeLLM) -> None:
    _, member, guild = where(0)
    fake_llm.reset("fixed", text="Noted, a fine choice.")  # a reply that does not quote the old text
    message = await say(bot, "my favourite city is Reykjavik")
    sent()
    await edit(message, f"<@{bot.user.id if bot.user else 0}> my favourite city is Valparaiso")

    exported = (await memory.export(str(member.id)))["exchanges"]
    assert [(e["user_message"], e["message_id"], e["revision"]) for e in exported] == [
        ("my favourite city is Valparaiso", str(message.id), 1)]
    assert sent() == []  # an edit is not answered again
    await memory.flush()
    ctx = await memory.get_conversation_context(str(member.id), "which city do I like best?", guild_id=guild)
    assert "Valparaiso" in ctx.to_context_string() and "Reykjavik" not in ctx.to_context_string()
    summaries = [r.summary for r in await memory.summaries.records(str(member.id))]
    assert len(summaries) == 1 and "Valparaiso" in summaries[0] and "Reykjavik" not in summaries[0]

    fake_llm.reset("prompt")
    await say(bot, "remind me of my favourite city")
    request = "\n".join(m["content"] for m in fake_llm.requests[-1]["messages"])
    assert "Valparaiso" in request and "Reykjavik" not in request


async def test_a_deleted_message_is_forgotten_and_a_deleted_reply_is_not(
        bot: MnemoBot, memory: HierarchicalMemoryManager) -> None:
    _, member, guild = where(0)
    user = str(member.id)
    first = await say(bot, "my bank PIN is 8080")
    await say(bot, "I play the cello")
    replies = sent()
    await memory.flush()
    assert (await memory.counts(user, guild_id=guild))["summaries"] == 2

    await replies[1].delete()  # the bot's reply to the cello message
    await dpytest.run_all_events()
    assert (await memory.counts(user, guild_id=guild))["archive"] == 2

    await first.delete()
    await dpytest.run_all_events()
    left = await memory.export(user)
    assert [e["user_message"] for e in left["exchanges"]] == ["I play the cello"]
    assert [r["summary"] for r in left["summaries"] if "8080" in r["summary"]] == []
    counts = await memory.counts(user, guild_id=guild)
    assert counts["archive"] == 1 and counts["summaries"] == 1


async def test_an_edit_that_empties_the_message_forgets_it(bot: MnemoBot,
                                                          memory: HierarchicalMemoryManager) -> None:
    _, member, guild = where(0)
    message = await say(bot, "my locker is number 12")
    sent()
    assert bot.user is not None
    await edit(message, f"<@{bot.user.id}>")
    assert (await memory.counts(str(member.id), guild_id=guild))["archive"] == 0


async def test_pause_answers_without_storing_and_resume_stores_again(
        bot: MnemoBot, memory: HierarchicalMemoryManager) -> None:
    _, member, guild = where(0)
    user = str(member.id)
    cog = memory_cog(bot)
    it = interaction(member.id, int(guild), admin=False)
    await MemoryCog.pause.callback(cog, it)
    assert it.response.send_message.call_args.args[0].startswith("Paused")

    await say(bot, "my secret hobby is taxidermy")
    assert [m.content.split("\n\n")[0] for m in sent()] == ["ECHO: my secret hobby is taxidermy"]
    assert (await memory.counts(user, guild_id=guild))["archive"] == 0

    it = interaction(member.id, int(guild), admin=False)
    await MemoryCog.resume.callback(cog, it)
    assert it.response.send_message.call_args.args[0].startswith("Resumed")
    await say(bot, "my public hobby is birdwatching")
    assert [m.content for m in sent()] == ["ECHO: my public hobby is birdwatching"]
    assert [e["user_message"] for e in (await memory.export(user))["exchanges"]] == [
        "my public hobby is birdwatching"]


async def test_the_memory_notice_is_shown_once_per_guild_and_user(bot: MnemoBot) -> None:
    _, member, guild = where(0)
    notice = memory_notice(guild)
    await say(bot, "hello")
    await say(bot, "hello again")
    await say(bot, "hello from the other server", 1)
    dm = await member.create_dm()
    await dpytest.message("hello in private", channel=dm, member=member)
    contents = [m.content for m in sent()]
    assert contents == [f"ECHO: hello\n\n{notice}", "ECHO: hello again",
                        f"ECHO: hello from the other server\n\n{notice}",
                        f"ECHO: hello in private\n\n{memory_notice(None)}"]
    await dpytest.message("and again in private", channel=dm, member=member)
    assert [m.content for m in sent()] == ["ECHO: and again in private"]


async def test_guild_admins_set_persona_and_channels_for_their_guild_only(
        bot: MnemoBot, fake_llm: FakeLLM, memory: HierarchicalMemoryManager) -> None:
    channel_a, admin_a, guild_a = where(0)
    channel_b, _, guild_b = where(1)
    cog = memory_cog(bot)

    refused = interaction(admin_a.id, int(guild_a), admin=False)
    await MemoryCog.settings.callback(cog, refused, persona="You are a pirate.")
    assert "Only server admins" in refused.response.send_message.call_args.args[0]
    in_dm = interaction(admin_a.id, None, admin=True)
    await MemoryCog.settings.callback(cog, in_dm, persona="You are a pirate.")
    assert "Only server admins" in in_dm.response.send_message.call_args.args[0]
    assert (await memory.guild_settings(guild_a)).persona is None

    it = interaction(admin_a.id, int(guild_a), admin=True)
    await MemoryCog.settings.callback(cog, it, persona="You are Captain Byte, a pirate who loves puns.",
                                      add_channel=channel_a, retention_days=30)
    shown = it.response.send_message.call_args.kwargs["embed"]
    fields = {f.name: f.value for f in shown.fields}
    assert fields["Persona"] == "You are Captain Byte, a pirate who loves puns."
    assert fields["Always-on channels (besides the bot's own list)"] == f"<#{channel_a.id}>"
    assert fields["Retention"].startswith("this server: 30 days")
    foreign = interaction(admin_a.id, int(guild_a), admin=True)  # a channel of another guild
    await MemoryCog.settings.callback(cog, foreign, remove_channel=channel_b)
    assert "not in this server" in foreign.response.send_message.call_args.args[0]

    fake_llm.reset("prompt")
    await say(bot, "ahoy, no mention needed here", mention=False)  # channel A is always-on now
    system_a = fake_llm.requests[-1]["messages"][0]["content"]
    assert system_a.startswith("You are Captain Byte, a pirate who loves puns.")
    await say(bot, "and here?", 1, mention=False)
    assert len(fake_llm.requests) == 1  # guild B's channel is not always-on
    await say(bot, "hello from guild B", 1)
    system_b = fake_llm.requests[-1]["messages"][0]["content"]
    assert "Captain Byte" not in system_b and system_b.startswith(bot.settings.bot.persona)
    sent()

    it = interaction(admin_a.id, int(guild_a), admin=True)
    await MemoryCog.settings.callback(cog, it, reset_persona=True, remove_channel=channel_a)
    fields = {f.name: f.value for f in it.response.send_message.call_args.kwargs["embed"].fields}
    assert fields["Persona"] == "the bot's default" and fields[
        "Always-on channels (besides the bot's own list)"] == "none"
    assert guild_b and (await memory.guild_settings(guild_b)).persona is None


async def test_stats_list_this_servers_active_conversations_only(bot: MnemoBot) -> None:
    channel_a, member_a, guild_a = where(0)
    _, member_b, _ = where(1)
    await say(bot, "hello")
    await say(bot, "hello from the other server", 1)
    sent()
    it = interaction(member_a.id, int(guild_a), admin=True)
    it.response.defer = AsyncMock()
    it.followup = MagicMock()
    it.followup.send = AsyncMock()
    await MemoryCog.stats.callback(memory_cog(bot), it)
    fields = {f.name: f.value for f in it.followup.send.call_args.kwargs["embed"].fields}
    active = fields["Active conversations here (last 30 min)"]
    assert active.startswith("1 users in 1 channels\n")
    assert f"<@{member_a.id}> in <#{channel_a.id}>: 1 exchanges" in active
    assert str(member_b.id) not in active
    assert fields["This server"].startswith("1 users · 1 exchanges · ")   # this server's archive only


async def test_a_bulk_delete_forgets_every_message_it_names(bot: MnemoBot,
                                                            memory: HierarchicalMemoryManager) -> None:
    channel, member, guild = where(0)
    purged = [await say(bot, f"spam number {i}") for i in range(3)]
    await say(bot, "a message the moderator kept")
    sent()
    backend.get_state().parse_message_delete_bulk(  # type: ignore[arg-type]
        {"ids": [str(m.id) for m in purged] + ["1234"], "channel_id": str(channel.id), "guild_id": guild})
    await dpytest.run_all_events()
    left = [e["user_message"] for e in (await memory.export(str(member.id)))["exchanges"]]
    assert left == ["a message the moderator kept"]


async def test_an_edit_reads_the_files_again_only_of_a_message_the_bot_stored(
        bot: MnemoBot, memory: HierarchicalMemoryManager, fake_llm: FakeLLM, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    channel, member, _ = where(0)
    assert bot.user is not None
    notes = tmp_path / "notes.txt"
    notes.write_text("gate code 4417")
    reads: list[str] = []
    read = discord.Attachment.read

    async def counted(self: discord.Attachment, *, use_cached: bool = False) -> bytes:
        reads.append(self.filename)
        return await read(self, use_cached=use_cached)

    monkeypatch.setattr(discord.Attachment, "read", counted)
    fake_llm.reset("fixed", text="Noted.")
    mine = backend.make_message(f"<@{bot.user.id}> my notes", member, channel,
                                attachments=[backend.make_attachment(notes)])
    await dpytest.run_all_events()
    sent()
    await edit(mine, f"<@{bot.user.id}> my notes for the flat")
    [stored] = (await memory.export(str(member.id)))["exchanges"]
    assert stored["user_message"] == "my notes for the flat\n[file notes.txt]\ngate code 4417\n[end of notes.txt]"
    assert reads == ["notes.txt", "notes.txt"]

    # someone's message the bot never answered: its edit fetches nothing
    other = backend.make_message("holiday plans", member, channel, attachments=[backend.make_attachment(notes)])
    await dpytest.run_all_events()
    await edit(other, "holiday plans, updated")
    assert reads == ["notes.txt", "notes.txt"] and sent() == []


async def test_an_edit_keeps_what_a_photo_showed(bot: MnemoBot, memory: HierarchicalMemoryManager,
                                                 fake_llm: FakeLLM, tmp_path: Path) -> None:
    from bot.llm import DESCRIBE_IMAGE_PROMPT
    from memory.settings import LLMSettings

    channel, member, _ = where(0)
    assert bot.user is not None
    photo = tmp_path / "IMG_7.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    async with ChatLLM(LLMSettings(base_url=fake_llm.base_url, model="fake-model", timeout_seconds=2.0,
                                   vision_model="fake-vision"), max_retries=0) as vision:
        bot.llm = vision  # the operator configured a model that sees images
        fake_llm.reset("fixed", text="Nice door.")
        fake_llm.scripted = {DESCRIBE_IMAGE_PROMPT[:40]: "A blue front door with the number 12."}
        mine = backend.make_message(f"<@{bot.user.id}> my new door", member, channel,
                                    attachments=[backend.make_attachment(photo)])
        await dpytest.run_all_events()
        assert [m.content.split("\n")[0] for m in sent()] == ["Nice door."]
        await edit(mine, f"<@{bot.user.id}> our new front door")
    [stored] = (await memory.export(str(member.id)))["exchanges"]
    assert stored["user_message"] == ("our new front door\n"
                                      "[image: IMG_7.png, shows: A blue front door with the number 12.]")
