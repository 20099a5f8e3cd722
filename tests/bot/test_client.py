"""The Discord message flow with dpytest: mentions, DMs, silence, long replies, rate limits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import discord
import discord.ext.test as dpytest
import discord.ext.test.backend as backend
import pytest
import pytest_asyncio

from bot.chat import ChatHandler
from bot.client import MnemoBot
from bot.content import describe, strip_mentions
from bot.llm import ChatLLM
from memory.manager import HierarchicalMemoryManager
from memory.settings import LLMSettings
from tests.bot.conftest import bot_settings
from tests.bot.fake_llm import FakeLLM
from tests.bot.pdfs import make_pdf


async def _make_bot(memory: HierarchicalMemoryManager, llm: ChatLLM, fake_llm: FakeLLM, tmp_path: Path,
                    **chat: object) -> MnemoBot:
    # the one-time memory notice has its own tests (test_events.py); here replies are compared exactly
    return await _configure(MnemoBot(memory, llm, bot_settings(fake_llm, tmp_path, memory_notice=False, **chat),
                                     intents=_test_intents()))


def _test_intents() -> discord.Intents:
    # dpytest resolves mentions through the member cache, which needs the members intent;
    # the real bot does not ask for it.
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True
    return intents


async def _configure(bot: MnemoBot) -> MnemoBot:
    await bot._async_setup_hook()
    dpytest.configure(bot, guilds=1, text_channels=2, members=2)
    bot._connection.loop = asyncio.get_running_loop()  # dpytest's state lacks it; typing() needs it
    return bot


@pytest_asyncio.fixture
async def bot(memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM,
              tmp_path: Path) -> AsyncIterator[MnemoBot]:
    made = await _make_bot(memory, chat_llm, fake_llm, tmp_path)
    yield made
    await dpytest.empty_queue()


def _sent() -> list[discord.Message]:
    out = []
    while not dpytest.sent_queue.empty():
        out.append(dpytest.get_message())
    return out


def _cfg() -> dpytest.RunnerConfig:
    return dpytest.get_config()


async def test_mention_in_guild_is_answered_and_stored(bot: MnemoBot,
                                                       memory: HierarchicalMemoryManager) -> None:
    cfg = _cfg()
    channel, member = cfg.channels[0], cfg.members[0]
    assert bot.user is not None
    await dpytest.message(f"<@{bot.user.id}> I grow tomatoes on my balcony", channel=channel, member=member)
    sent = _sent()
    assert [m.content for m in sent] == ["ECHO: I grow tomatoes on my balcony"]
    counts = await memory.counts(str(member.id), guild_id=str(cfg.guilds[0].id))
    assert counts["archive"] == 1


async def test_a_reply_to_the_bot_is_answered_without_a_ping(bot: MnemoBot, memory: HierarchicalMemoryManager) -> None:
    # Discord lets a reply leave its ping out; the user still replied to the bot and expects an answer
    cfg = _cfg()
    channel, member, other = cfg.channels[0], cfg.members[0], cfg.members[1]
    assert bot.user is not None
    await dpytest.message(f"<@{bot.user.id}> what is a good name for a cat?", channel=channel, member=member)
    [answer] = _sent()
    reply = await dpytest.message("and for a dog?", channel=channel, member=member)  # no mention: not answered
    assert _sent() == []
    reply.reference = discord.MessageReference.from_message(answer)
    reply.reference.resolved = answer
    await bot.on_message(reply)
    assert [m.content for m in _sent()] == ["ECHO: and for a dog?"]
    elsewhere = await dpytest.message("a reply to someone else", channel=channel, member=member)
    someones = await dpytest.message("hi", channel=channel, member=other)
    elsewhere.reference = discord.MessageReference.from_message(someones)
    elsewhere.reference.resolved = someones
    await bot.on_message(elsewhere)
    assert _sent() == []
    counts = await memory.counts(str(member.id), guild_id=str(cfg.guilds[0].id))
    assert counts["archive"] == 2


async def test_guild_message_without_mention_is_ignored(bot: MnemoBot, fake_llm: FakeLLM,
                                                        memory: HierarchicalMemoryManager) -> None:
    cfg = _cfg()
    await dpytest.message("just chatting with friends", channel=cfg.channels[0], member=cfg.members[0])
    assert _sent() == []
    assert fake_llm.requests == []
    assert (await memory.counts(str(cfg.members[0].id)))["archive"] == 0


async def test_dm_is_answered_in_the_dm_scope(bot: MnemoBot, memory: HierarchicalMemoryManager) -> None:
    cfg = _cfg()
    member = cfg.members[1]
    dm = await member.create_dm()
    await dpytest.message("hello in private", channel=dm, member=member)
    assert [m.content for m in _sent()] == ["ECHO: hello in private"]
    assert (await memory.counts(str(member.id), dm=True))["archive"] == 1
    assert (await memory.counts(str(member.id), guild_id=str(cfg.guilds[0].id)))["archive"] == 0


async def test_long_reply_is_split_with_code_blocks_intact(bot: MnemoBot, fake_llm: FakeLLM) -> None:
    cfg = _cfg()
    code = "\n".join(f"print('line {i}')" + " " * 20 for i in range(160))
    fake_llm.reset("fixed", text="Here you go:\n```python\n" + code + "\n```\nEnjoy!")
    assert bot.user is not None
    await dpytest.message(f"<@{bot.user.id}> write me a long script", channel=cfg.channels[0],
                          member=cfg.members[0])
    sent = [m.content for m in _sent()]
    assert len(sent) >= 3
    assert all(len(c) <= 2000 for c in sent)
    assert all(sum(1 for line in c.splitlines() if line.startswith("```")) % 2 == 0 for c in sent)
    printed = [line.strip() for c in sent for line in c.splitlines() if line.startswith("print(")]
    assert printed == [line.strip() for line in code.splitlines()]
    assert sent[-1].endswith("Enjoy!")


async def test_rate_limited_user_is_told_once(memory: HierarchicalMemoryManager, chat_llm: ChatLLM,
                                              fake_llm: FakeLLM, tmp_path: Path,
                                              frozen_rate_clock: float) -> None:
    bot = await _make_bot(memory, chat_llm, fake_llm, tmp_path, rate_limit_per_user=1,
                          rate_limit_window_seconds=600)
    cfg = _cfg()
    assert bot.user is not None
    answers = []
    for i in range(4):
        await dpytest.message(f"<@{bot.user.id}> question {i}", channel=cfg.channels[1],
                              member=cfg.members[0])
        answers.append([m.content for m in _sent()])
    assert answers[0] == ["ECHO: question 0"]
    assert len(answers[1]) == 1 and answers[1][0].endswith("Please try again in 8 minutes.")
    assert answers[2:] == [[], []]
    await dpytest.empty_queue()


async def test_a_rate_limited_user_costs_no_downloads(memory: HierarchicalMemoryManager, chat_llm: ChatLLM,
                                                      fake_llm: FakeLLM, tmp_path: Path, frozen_rate_clock: float,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # the limit used to be checked after the message's files were read: a flood of pastes was downloaded
    bot = await _make_bot(memory, chat_llm, fake_llm, tmp_path, rate_limit_per_user=1,
                          rate_limit_window_seconds=600)
    reads: list[str] = []
    read = discord.Attachment.read

    async def counted(self: discord.Attachment, **kwargs: Any) -> bytes:
        reads.append(self.filename)
        return await read(self, **kwargs)

    monkeypatch.setattr(discord.Attachment, "read", counted)
    cfg = _cfg()
    member = cfg.members[0]
    assert bot.user is not None
    answers = []
    for i in range(3):
        await _send(f"<@{bot.user.id}> paste {i}", cfg.channels[1], member,
                    [_file(tmp_path, f"log{i}.txt", f"line {i}\n".encode())])
        answers.append([m.content for m in _sent()])
    assert reads == ["log0.txt"]
    assert answers[0] == ["ECHO: paste 0\n[file log0.txt]\nline 0\n[end of log0.txt]"]
    assert len(answers[1]) == 1 and answers[1][0].endswith("Please try again in 8 minutes.")
    assert answers[2] == []
    assert await _stored(memory, member) == ["paste 0\n[file log0.txt]\nline 0\n[end of log0.txt]"]
    await dpytest.empty_queue()


async def test_always_on_channel_needs_no_mention(memory: HierarchicalMemoryManager, chat_llm: ChatLLM,
                                                  fake_llm: FakeLLM, tmp_path: Path) -> None:
    bot = await _make_bot(memory, chat_llm, fake_llm, tmp_path)
    cfg = _cfg()
    bot.settings = bot_settings(fake_llm, tmp_path, always_on_channels=[cfg.channels[1].id], memory_notice=False)
    await dpytest.message("no mention needed", channel=cfg.channels[1], member=cfg.members[0])
    assert [m.content for m in _sent()] == ["ECHO: no mention needed"]
    await dpytest.message("but not here", channel=cfg.channels[0], member=cfg.members[0])
    assert _sent() == []
    await dpytest.empty_queue()


def test_strip_mentions() -> None:
    assert strip_mentions("<@42>  hi <@!42> there <@7>", 42) == "hi there <@7>"
    # lines and indentation stay: a pasted block of code is still code
    assert strip_mentions("<@42> why does this fail?\n```py\nif x:\n    y()\n```", 42) == \
        "why does this fail?\n```py\nif x:\n    y()\n```"


async def test_mentions_are_stored_as_people_read_them(bot: MnemoBot, memory: HierarchicalMemoryManager) -> None:
    # "<@1234> is my best friend" meant nothing to the LLM and no search for the friend's name found it
    cfg = _cfg()
    channel, member, friend = cfg.channels[0], cfg.members[0], cfg.members[1]
    other = cfg.channels[1]
    assert bot.user is not None
    await dpytest.message(f"<@{bot.user.id}> <@{friend.id}> is my best friend, we met in <#{other.id}> "
                          f"<:pepe:123456789> and <@999> left", channel=channel, member=member)
    said = f"@{friend.display_name} is my best friend, we met in #{other.name} :pepe: and <@999> left"
    assert [m.content for m in _sent()] == [f"ECHO: {said}"]
    exported = (await memory.export(str(member.id)))["exchanges"]
    assert [e["user_message"] for e in exported] == [said]


@pytest.mark.parametrize("listen", [True, False])
async def test_listen_channels_restrict_mentions(memory: HierarchicalMemoryManager, chat_llm: ChatLLM,
                                                 fake_llm: FakeLLM, tmp_path: Path, listen: bool) -> None:
    bot = await _make_bot(memory, chat_llm, fake_llm, tmp_path)
    cfg = _cfg()
    allowed = cfg.channels[0].id if listen else cfg.channels[1].id
    bot.settings = bot_settings(fake_llm, tmp_path, listen_channels=[allowed], memory_notice=False)
    bot.handler = ChatHandler(memory, chat_llm, bot.settings)
    assert bot.user is not None
    await dpytest.message(f"<@{bot.user.id}> are you there?", channel=cfg.channels[0], member=cfg.members[0])
    assert [m.content for m in _sent()] == (["ECHO: are you there?"] if listen else [])
    await dpytest.empty_queue()


def _thread_message(bot_id: int, *, owner_id: int, history: list[tuple[int, list[int]]],
                    mentioned: bool = False) -> discord.Message:
    """A guild message in a thread (dpytest has no threads: Discord objects are mocked)."""
    from unittest.mock import MagicMock

    me = MagicMock(spec=discord.ClientUser)
    me.id = bot_id
    thread = MagicMock(spec=discord.Thread)
    thread.id, thread.parent_id, thread.owner_id = 9100, 9000, owner_id

    async def past(limit: int | None = None) -> AsyncIterator[discord.Message]:
        for author_id, mention_ids in history[:limit]:
            earlier = MagicMock(spec=discord.Message)
            earlier.author = MagicMock(id=author_id)
            earlier.mentions = [MagicMock(id=m) for m in mention_ids]
            yield earlier

    thread.history = past
    message = MagicMock(spec=discord.Message)
    message.author = MagicMock(id=4242, bot=False)
    message.guild = MagicMock(id=1)
    message.channel = thread
    message.type = discord.MessageType.default
    message.mentions = [me] if mentioned else []
    return message


async def test_threads_are_answered_when_the_bot_belongs_to_them(
        memory: HierarchicalMemoryManager, tmp_path: Path) -> None:
    bot = MnemoBot(memory, None, bot_settings(None, tmp_path))
    bot_id = 555
    me = discord.Object(id=bot_id)
    bot._connection.user = me  # type: ignore[assignment]
    try:
        # it started the thread
        assert await bot.should_answer(_thread_message(bot_id, owner_id=bot_id, history=[]))
        # it was mentioned, or spoke, earlier in the thread
        assert await bot.should_answer(_thread_message(bot_id, owner_id=1, history=[(7, []), (8, [bot_id])]))
        assert await bot.should_answer(_thread_message(bot_id, owner_id=1, history=[(bot_id, [])]))
        # a thread it never took part in stays quiet unless it is mentioned now
        assert not await bot.should_answer(_thread_message(bot_id, owner_id=1, history=[(7, []), (8, [9])]))
    finally:
        await bot.close()


# ---- what a message carries besides its text --------------------------------------------------

def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "uploads" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


async def _send(text: str, channel: discord.abc.Messageable, member: discord.abc.User,
                files: list[Path] | None = None) -> discord.Message:
    """``dpytest.message`` with attachments as Discord describes them (dpytest's own give size 0)."""
    message = backend.make_message(text, member, channel,  # type: ignore[arg-type]
                                   attachments=[backend.make_attachment(f) for f in files or []])
    await dpytest.run_all_events()
    return message


async def _held(bot: MnemoBot, text: str, channel: discord.TextChannel, member: discord.Member,
                attachments: list[Path] | None = None) -> discord.Message:
    """A message mentioning the bot that dpytest delivers while the bot listens elsewhere, so the test
    can change it (a reply, a forward, a file gone) before handing it to ``on_message`` itself."""
    assert bot.user is not None
    settings = bot.settings
    elsewhere = next(c.id for c in _cfg().channels if c.id != channel.id)
    bot.settings = settings.model_copy(update={"bot": settings.bot.model_copy(
        update={"listen_channels": frozenset({elsewhere})})})
    try:
        message = await _send(f"<@{bot.user.id}> {text}", channel, member, attachments)
    finally:
        bot.settings = settings
    assert _sent() == []
    return message


async def _stored(memory: HierarchicalMemoryManager, member: discord.abc.User) -> list[str]:
    return [e["user_message"] for e in (await memory.export(str(member.id)))["exchanges"]]


async def test_a_long_paste_sent_as_a_file_is_read_and_remembered(bot: MnemoBot,
                                                                  memory: HierarchicalMemoryManager) -> None:
    # Discord turns a paste longer than a message into message.txt; the bot used to see an empty message
    cfg = _cfg()
    member = cfg.members[0]
    paste = "My cat Miso is four.\n\n    She only eats tuna.\n"
    assert bot.user is not None
    await _send(f"<@{bot.user.id}> thoughts?", cfg.channels[0], member,
                [_file(Path(bot.settings.data_dir), "message.txt", paste.encode())])
    said = "thoughts?\n[file message.txt]\nMy cat Miso is four.\n\n    She only eats tuna.\n[end of message.txt]"
    assert [m.content for m in _sent()] == [f"ECHO: {said}"]
    assert await _stored(memory, member) == [said]
    await memory.flush()
    ctx = await memory.get_conversation_context(str(member.id), "what does Miso eat?",
                                                guild_id=str(cfg.guilds[0].id))
    assert "She only eats tuna." in ctx.to_context_string()


async def test_a_pdfs_text_is_read_and_remembered(bot: MnemoBot, memory: HierarchicalMemoryManager) -> None:
    cfg = _cfg()
    member = cfg.members[0]
    assert bot.user is not None
    pdf = make_pdf(["Wedding menu", "Starter: beetroot salad", "Dessert: plum tart"])
    await _send(f"<@{bot.user.id}> the caterer sent this", cfg.channels[0], member,
                [_file(Path(bot.settings.data_dir), "menu.pdf", pdf)])
    said = ("the caterer sent this\n[file menu.pdf, 3 pages]\nWedding menu\n\nStarter: beetroot salad\n\n"
            "Dessert: plum tart\n[end of menu.pdf]")
    assert [m.content for m in _sent()] == [f"ECHO: {said}"]
    assert await _stored(memory, member) == [said]
    await memory.flush()
    ctx = await memory.get_conversation_context(str(member.id), "what is the dessert at the wedding?",
                                                guild_id=str(cfg.guilds[0].id))
    assert "Dessert: plum tart" in ctx.to_context_string()


async def test_other_attachments_are_named_and_files_past_the_limit_are_not_read(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, tmp_path: Path) -> None:
    bot = await _make_bot(memory, chat_llm, fake_llm, tmp_path, attachment_max_bytes=100)
    cfg = _cfg()
    member = cfg.members[0]
    files = [_file(tmp_path, "cat.png", b"\x89PNG\r\n\x1a\n" + bytes(40)),
             _file(tmp_path, "notes.md", b"- buy milk\n" * 5),             # 55 bytes: read
             _file(tmp_path, "more.md", b"- call mum\n" * 5),              # 55 more: past the 100 left
             _file(tmp_path, "dump.txt", b"abc\x00def"),                   # NUL bytes: not text
             _file(tmp_path, "latin.txt", "caf\u00e9".encode("latin-1")),  # not UTF-8
             _file(tmp_path, "report.pdf", b"%PDF-1.7")]
    gone = _file(tmp_path, "gone.log", b"deleted before it was read")
    message = await _held(bot, "here you go", cfg.channels[0], member, attachments=[*files, gone])
    gone.unlink()  # the CDN answers 404 (dpytest reads the file when the bot asks)
    await bot.on_message(message)
    said = "\n".join([
        "here you go", "[image: cat.png]", "[file notes.md]", ("- buy milk\n" * 5).rstrip(), "[end of notes.md]",
        "[file: more.md, 55 bytes, not read: the bot reads 100 bytes of text files per message]",
        "[file: dump.txt, not read: not UTF-8 text]", "[file: latin.txt, not read: not UTF-8 text]",
        "[file: report.pdf, could not be read]", "[file: gone.log, could not be read]"])
    assert [m.content for m in _sent()] == [f"ECHO: {said}"]
    assert await _stored(memory, member) == [said]
    await dpytest.empty_queue()


async def test_a_message_with_only_an_image_is_answered(bot: MnemoBot, memory: HierarchicalMemoryManager) -> None:
    # it used to get "Yes? Mention me with a message", in a DM where nobody mentions anyone
    cfg = _cfg()
    member = cfg.members[1]
    dm = await member.create_dm()
    photo = _file(Path(bot.settings.data_dir), "IMG_2041.jpg", b"\xff\xd8\xff\xe0" + bytes(20))
    await _send("", dm, member, [photo])
    assert [m.content for m in _sent()] == ["ECHO: [image: IMG_2041.jpg]"]
    assert await _stored(memory, member) == ["[image: IMG_2041.jpg]"]


async def test_discord_notices_and_empty_messages_in_an_always_on_channel_get_no_answer(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, tmp_path: Path) -> None:
    bot = await _make_bot(memory, chat_llm, fake_llm, tmp_path)
    cfg = _cfg()
    channel, member = cfg.channels[1], cfg.members[0]
    bot.settings = bot_settings(fake_llm, tmp_path, always_on_channels=[channel.id], memory_notice=False)
    joined = await dpytest.message("", channel=channel, member=member)
    _sent()  # dpytest delivered it as an ordinary empty message: no answer either
    joined.type = discord.MessageType.new_member  # "Ada joined the server", authored by Ada
    await bot.on_message(joined)
    pinned = await dpytest.message("hello", channel=channel, member=member)
    _sent()
    pinned.type = discord.MessageType.pins_add
    await bot.on_message(pinned)
    assert _sent() == []
    assert await _stored(memory, member) == ["hello"]
    assert bot.user is not None
    await dpytest.message(f"<@{bot.user.id}>", channel=cfg.channels[0], member=member)  # a bare ping
    assert [m.content for m in _sent()] == ["Yes? Mention me with a message and I'll answer."]
    await dpytest.empty_queue()


async def test_a_reply_to_another_member_shows_the_model_their_message_but_does_not_store_it(
        bot: MnemoBot, memory: HierarchicalMemoryManager, fake_llm: FakeLLM) -> None:
    cfg = _cfg()
    channel, member, other = cfg.channels[0], cfg.members[0], cfg.members[1]
    assert bot.user is not None
    theirs = await dpytest.message("pineapple belongs on pizza", channel=channel, member=other)
    fake_llm.reset("prompt")
    mine = await _held(bot, "is this right?", channel, member)
    mine.reference = discord.MessageReference.from_message(theirs)
    mine.reference.resolved = theirs
    await bot.on_message(mine)
    system = fake_llm.requests[-1]["messages"][0]["content"]
    assert f"replies to this message from {other.display_name}:\npineapple belongs on pizza" in system
    assert await _stored(memory, member) == ["is this right?"]
    await dpytest.empty_queue()


async def test_a_forwarded_message_is_read_with_its_files(bot: MnemoBot, memory: HierarchicalMemoryManager) -> None:
    cfg = _cfg()
    member = cfg.members[1]
    message = await _held(bot, "look what Sam sent", cfg.channels[0], member)
    state = backend.get_state()
    recipe = _file(Path(bot.settings.data_dir), "recipe.txt", b"2 eggs, 100 g flour")
    attachment = backend.make_attachment(recipe)
    message.message_snapshots = [discord.MessageSnapshot(state, {  # type: ignore[arg-type]
        "type": 0, "content": "my <:chef:42> pancake recipe", "embeds": [], "timestamp": "2026-11-30T10:00:00+00:00",
        "edited_timestamp": None, "attachments": [attachment.to_dict()],
        "sticker_items": [{"id": 7, "name": "Yum", "format_type": 1}]})]
    await bot.on_message(message)
    said = ("look what Sam sent\n[forwarded message]\nmy :chef: pancake recipe\n[file recipe.txt]\n"
            "2 eggs, 100 g flour\n[end of recipe.txt]\n[sticker: Yum]")
    assert [m.content for m in _sent()] == [f"ECHO: {said}"]
    assert await _stored(memory, member) == [said]


def test_attachment_lines_name_what_they_cannot_show() -> None:
    def attachment(filename: str, **data: object) -> discord.Attachment:
        from unittest.mock import MagicMock  # describing reads nothing from the connection

        return discord.Attachment(state=MagicMock(), data={  # type: ignore[typeddict-item]
            "id": 1, "filename": filename, "size": 10, "url": "", "proxy_url": "", **data})

    voice = attachment("voice-message.ogg", content_type="audio/ogg", duration_secs=11.6, waveform="AAAA")
    assert describe(voice) == "[voice message: 12 s]"
    assert describe(attachment("SPOILER_ending.mp4", content_type="video/mp4")) == \
        "[video: SPOILER_ending.mp4, marked as a spoiler]"
    assert describe(attachment("dog.webp", description="my dog asleep on the sofa")) == \
        '[image: dog.webp, described as "my dog asleep on the sofa"]'
    # a name with control characters (a NUL makes a message unstorable) is put on one clean line
    assert describe(attachment("evil\x00name\n[forwarded message].png", content_type="image/png")) == \
        "[image: evil name [forwarded message].png]"


async def test_asking_in_chat_to_forget_shows_a_button_only_the_asker_can_press(
        bot: MnemoBot, memory: HierarchicalMemoryManager, fake_llm: FakeLLM) -> None:
    from unittest.mock import AsyncMock, MagicMock

    from bot.cogs.memory import ConfirmView

    cfg = _cfg()
    channel, member, other = cfg.channels[0], cfg.members[0], cfg.members[1]
    guild = str(cfg.guilds[0].id)
    await memory.store_conversation(str(member.id), "my address is 12 Elm Street", "Noted.", guild_id=guild)
    await memory.store_conversation(str(member.id), "I play the cello", "Lovely.", guild_id=guild)
    fake_llm.reset("script")
    fake_llm.script = [{"tool_calls": [("forget_memories", '{"what": "topic", "topic": "Elm Street"}')]},
                       {"content": "Sure: press the button and I'll forget it."}]
    assert bot.user is not None
    await dpytest.message(f"<@{bot.user.id}> forget my address on Elm Street please", channel=channel, member=member)
    answer, question = _sent()
    assert answer.content == "Sure: press the button and I'll forget it."
    assert question.content == "Forget our exchanges about “Elm Street” in this server (1 exchange so far)?"
    view = bot._connection._view_store._synced_message_views[question.id]  # what Discord's button calls
    assert isinstance(view, ConfirmView)
    assert len(await _stored(memory, member)) == 3  # nothing gone before the press

    def press(user: discord.Member) -> MagicMock:
        it = MagicMock(spec=discord.Interaction)
        it.user, it.response = user, MagicMock()
        it.response.send_message, it.response.defer = AsyncMock(), AsyncMock()
        it.edit_original_response = AsyncMock()
        return it

    assert await view.interaction_check(press(other)) is False
    pressed = press(member)
    await view.confirm.callback(pressed)
    assert pressed.edit_original_response.call_args.kwargs["content"].startswith("Forgotten.")
    # the address and the request that named it are gone; the cello stays
    assert await _stored(memory, member) == ["I play the cello"]


async def test_a_slow_cdn_costs_the_message_its_files_not_the_user_a_minute() -> None:
    # ten files each slow to fetch used to wait ten seconds apiece before the bot even started typing
    from unittest.mock import MagicMock

    from bot.content import attachment_lines

    def slow(name: str) -> discord.Attachment:
        attachment = MagicMock(spec=discord.Attachment, id=1, filename=name, size=4, content_type="text/plain",
                               description=None, duration=None)
        attachment.is_voice_message.return_value = attachment.is_spoiler.return_value = False

        async def read() -> bytes:
            await asyncio.sleep(1.0)
            return b"late"

        attachment.read = read
        return attachment  # type: ignore[no-any-return]

    deadline = asyncio.get_running_loop().time() + 0.3
    lines, left = await attachment_lines([slow("a.txt"), slow("b.txt")], 100, 100, deadline)
    assert lines == ["[file: a.txt, could not be read]", "[file: b.txt, could not be read]"] and left == 100


async def test_remember_this_on_the_bots_reply_saves_it_as_the_members_fact(
        bot: MnemoBot, memory: HierarchicalMemoryManager) -> None:
    from unittest.mock import AsyncMock, MagicMock

    await bot.setup_hook()  # loads the cogs, as logging in does (dpytest does not)
    menu = bot.tree.get_command("Remember this", type=discord.AppCommandType.message)  # in the message's Apps menu
    assert isinstance(menu, discord.app_commands.ContextMenu)
    cfg = _cfg()
    channel, member, guild = cfg.channels[0], cfg.members[0], cfg.guilds[0]
    assert bot.user is not None
    await dpytest.message(f"<@{bot.user.id}> the wifi password is hunter2", channel=channel, member=member)
    (reply,) = _sent()
    it = MagicMock(spec=discord.Interaction)
    it.user, it.guild_id, it.response = member, guild.id, MagicMock()
    it.response.send_message = AsyncMock()
    await menu.callback(it, reply)  # what Discord runs when the member picks it on the bot's reply
    assert it.response.send_message.call_args.args[0].startswith(
        "Saved in this server: “ECHO: the wifi password is hunter2”")
    assert [f.text for f in await memory.facts(str(member.id), guild_id=str(guild.id))] == [
        "ECHO: the wifi password is hunter2"]


async def _usage(memory: HierarchicalMemoryManager, member: discord.Member, guild: str) -> tuple[int, int, int]:
    """The member's recorded token usage in ``guild``: (prompt, completion, requests)."""
    rows = [r for r in await memory.usage(guild_id=guild) if r.user_id == str(member.id)]
    return (sum(r.prompt_tokens for r in rows), sum(r.completion_tokens for r in rows),
            sum(r.requests for r in rows))


def _plus(before: tuple[int, int, int], sent: list[tuple[int, int]]) -> tuple[int, int, int]:
    """``before`` plus the usage the fake endpoint answered with, one request per answer."""
    return (before[0] + sum(p for p, _ in sent), before[1] + sum(c for _, c in sent), before[2] + len(sent))


@contextlib.asynccontextmanager
async def _reading_bot(memory: HierarchicalMemoryManager, fake_llm: FakeLLM, tmp_path: Path,
                       **models: str) -> AsyncIterator[MnemoBot]:
    """A bot whose LLM endpoint also serves ``models`` (``vision_model``, ``transcribe_model``)."""
    async with ChatLLM(LLMSettings(base_url=fake_llm.base_url, model="fake-model", timeout_seconds=2.0,
                                   **models), max_retries=0) as llm:
        yield await _make_bot(memory, llm, fake_llm, tmp_path)


async def _voice(bot: MnemoBot, member: discord.Member, path: Path, seconds: float) -> None:
    """A voice message from ``member`` to the bot, as Discord's client sends one."""
    message = await _held(bot, "", _cfg().channels[0], member, attachments=[path])
    attachment = message.attachments[0]
    attachment.duration, attachment.waveform = seconds, b"\x10\x80\xff"  # what makes it a voice message
    await bot.on_message(message)


async def test_a_voice_message_is_transcribed_when_a_speech_model_is_configured(
        memory: HierarchicalMemoryManager, fake_llm: FakeLLM, tmp_path: Path) -> None:
    audio = _file(tmp_path, "voice-message.ogg", b"OggS" + bytes(200))
    async with _reading_bot(memory, fake_llm, tmp_path, transcribe_model="whisper-1") as bot:
        member, guild = _cfg().members[1], str(_cfg().guilds[0].id)
        before = await _usage(memory, member, guild)
        fake_llm.transcript = "  remind me that the plumber comes on Friday \n"
        await _voice(bot, member, audio, 4.2)
        said = ("[voice message: 4 s, transcribed]\nremind me that the plumber comes on Friday\n"
                "[end of voice message]")
        assert [m.content for m in _sent()] == [f"ECHO: {said}"]
        assert [(t["model"], t["data"]) for t in fake_llm.transcriptions] == [("whisper-1", audio.read_bytes())]
        fake_llm.transcript = None  # the speech model fails: the message is still answered, and says so
        await _voice(bot, member, audio, 9.0)
        assert [m.content for m in _sent()] == ["ECHO: [voice message: 9 s, could not be transcribed]"]
        await dpytest.empty_queue()
        # the transcription's tokens count in the user's usage with the answers' (the failed one costs none)
        assert len(fake_llm.transcriptions) == 2 and len(fake_llm.usage_sent) >= 3
        expected = _plus(before, fake_llm.usage_sent)
        assert await _usage(memory, member, guild) == expected
        fake_llm.transcript_usage, fake_llm.usage_sent = False, []  # a model billed by the minute: no tokens
        fake_llm.transcript = "and the electrician on Monday"
        await _voice(bot, member, audio, 3.0)
        assert [m.content for m in _sent()] == [
            "ECHO: [voice message: 3 s, transcribed]\nand the electrician on Monday\n[end of voice message]"]
        expected = _plus(expected, fake_llm.usage_sent)  # the answer's tokens
        await dpytest.empty_queue()
    assert await _usage(memory, member, guild) == (*expected[:2], expected[2] + 1)  # and the transcription's request
    assert await _stored(memory, member) == [said, "[voice message: 9 s, could not be transcribed]",
                                             "[voice message: 3 s, transcribed]\nand the electrician on Monday\n"
                                             "[end of voice message]"]
    await memory.flush()
    ctx = await memory.get_conversation_context(str(member.id), "when does the plumber come?", guild_id=guild)
    assert "remind me that the plumber comes on Friday" in ctx.to_context_string()


async def test_a_forwarded_voice_message_is_transcribed_too(
        memory: HierarchicalMemoryManager, fake_llm: FakeLLM, tmp_path: Path) -> None:
    audio = _file(tmp_path, "voice-message.ogg", b"OggS" + bytes(120))
    async with _reading_bot(memory, fake_llm, tmp_path, transcribe_model="whisper-1") as bot:
        member = _cfg().members[1]
        message = await _held(bot, "listen to what Sam said", _cfg().channels[0], member)
        voice = backend.make_attachment(audio).to_dict() | {"duration_secs": 6.4, "waveform": "EID/"}
        message.message_snapshots = [discord.MessageSnapshot(backend.get_state(), {  # type: ignore[arg-type]
            "type": 0, "content": "", "embeds": [], "timestamp": "2026-11-30T10:00:00+00:00",
            "edited_timestamp": None, "attachments": [voice], "sticker_items": []})]
        fake_llm.transcript = "the party moved to Saturday at Jo's place"
        await bot.on_message(message)
        said = ("listen to what Sam said\n[forwarded message]\n[voice message: 6 s, transcribed]\n"
                "the party moved to Saturday at Jo's place\n[end of voice message]")
        assert [m.content for m in _sent()] == [f"ECHO: {said}"]
        assert [t["data"] for t in fake_llm.transcriptions] == [audio.read_bytes()]
        await dpytest.empty_queue()
    assert await _stored(memory, member) == [said]


async def test_without_a_speech_model_a_voice_message_is_named(bot: MnemoBot, fake_llm: FakeLLM,
                                                               tmp_path: Path) -> None:
    await _voice(bot, _cfg().members[0], _file(tmp_path, "voice-message.ogg", b"OggS" + bytes(50)), 12.4)
    assert [m.content for m in _sent()] == ["ECHO: [voice message: 12 s]"]
    assert fake_llm.transcriptions == []


async def test_a_photo_is_described_and_remembered_when_a_vision_model_is_configured(
        memory: HierarchicalMemoryManager, fake_llm: FakeLLM, tmp_path: Path) -> None:
    import base64

    from bot.llm import DESCRIBE_IMAGE_PROMPT

    photo = _file(tmp_path, "IMG_2041.png", b"\x89PNG\r\n\x1a\n" + bytes(60))
    async with _reading_bot(memory, fake_llm, tmp_path, vision_model="fake-vision") as bot:
        member, guild = _cfg().members[0], str(_cfg().guilds[0].id)
        before = await _usage(memory, member, guild)
        fake_llm.scripted = {DESCRIBE_IMAGE_PROMPT[:40]: "A grey cat asleep on a red sofa.\nIt looks content."}
        assert bot.user is not None
        await _send(f"<@{bot.user.id}> look at her", _cfg().channels[0], member, [photo])
        said = "look at her\n[image: IMG_2041.png, shows: A grey cat asleep on a red sofa. It looks content.]"
        assert [m.content for m in _sent()] == [f"ECHO: {said}"]
        [asked] = [r for r in fake_llm.requests if r["model"] == "fake-vision"]
        image_part = asked["messages"][1]["content"][1]
        assert image_part["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(
            photo.read_bytes()).decode()  # the bytes go along: the endpoint fetches nothing
        await dpytest.empty_queue()
        assert len(fake_llm.usage_sent) >= 2  # the description and the answer, both counted for the user
        assert await _usage(memory, member, guild) == _plus(before, fake_llm.usage_sent)
    assert await _stored(memory, member) == [said]
    await memory.flush()
    ctx = await memory.get_conversation_context(str(member.id), "what colour was the sofa in my photo?",
                                                guild_id=guild)
    assert "A grey cat asleep on a red sofa" in ctx.to_context_string()
