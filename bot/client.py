"""The Discord client: decides which messages to answer and hands them to the ChatHandler.

The bot answers in DMs, when mentioned in a guild channel, in threads where it
was mentioned or has spoken (read from the thread's history, not remembered
in-process), and to every message in always-on channels. When
``BOT__LISTEN_CHANNELS`` is set, mentions outside those channels (and their
threads) are ignored. Nothing here holds state only one process knows, so the
bot can run sharded across processes.
"""

from __future__ import annotations

import logging
import re

import discord
from discord.ext import commands

from bot.chat import ChatHandler, IncomingMessage
from bot.llm import ChatLLM
from bot.logs import new_request
from bot.settings import BotSettings
from bot.split import split_message
from memory.manager import HierarchicalMemoryManager

log = logging.getLogger(__name__)

THREAD_HISTORY_LIMIT = 50


def bot_intents() -> discord.Intents:
    """Default intents plus message content (a privileged intent to enable in the developer portal)."""
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


def strip_mentions(text: str, user_id: int) -> str:
    """Remove mentions of the bot (``<@id>`` and ``<@!id>``) and tidy the spaces."""
    return " ".join(re.sub(rf"<@!?{user_id}>", " ", text).split())


class MnemoBot(commands.Bot):
    """discord.py bot wired to the memory manager; slash commands live in ``bot.cogs``."""

    def __init__(self, memory: HierarchicalMemoryManager, llm: ChatLLM | None, settings: BotSettings, *,
                 sync_commands: bool = False, intents: discord.Intents | None = None) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=intents or bot_intents(),
                         help_command=None)
        self.memory = memory
        self.llm = llm
        self.settings = settings
        self.handler = ChatHandler(memory, llm, settings)
        self.sync_commands = sync_commands

    async def setup_hook(self) -> None:
        from bot.cogs.facts import FactsCog
        from bot.cogs.memory import MemoryCog

        await self.add_cog(MemoryCog(self))
        await self.add_cog(FactsCog(self))
        if self.sync_commands:
            await self.sync_app_commands()

    async def sync_app_commands(self) -> None:
        """Sync slash commands to ``DISCORD_TEST_GUILD`` (instant) or globally (up to an hour)."""
        guild_id = self.settings.discord_test_guild
        if guild_id is not None:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d slash commands to test guild %s", len(synced), guild_id)
        else:
            synced = await self.tree.sync()
            log.info("synced %d slash commands globally (may take up to an hour to appear)", len(synced))

    async def on_ready(self) -> None:
        log.info("logged in as %s (id %s) in %d guilds", self.user, getattr(self.user, "id", "?"),
                 len(self.guilds))

    async def should_answer(self, message: discord.Message) -> bool:
        """Whether ``message`` is addressed to the bot (see the module doc for the rules)."""
        me = self.user
        if me is None or message.author.bot or message.author.id == me.id:
            return False
        if message.guild is None:
            return True
        cfg = self.settings.bot
        channel = message.channel
        parent_id = getattr(channel, "parent_id", None)
        ids = {channel.id} | ({parent_id} if parent_id else set())
        if ids & cfg.always_on_channels:
            return True
        if cfg.listen_channels and not ids & cfg.listen_channels:
            return False
        if me in message.mentions:
            return True
        if isinstance(channel, discord.Thread):
            return await self._joined_thread(channel, me.id)
        return False

    async def _joined_thread(self, thread: discord.Thread, me: int) -> bool:
        """True when the bot owns the thread, or spoke or was mentioned in its recent history."""
        if thread.owner_id == me:
            return True
        try:
            async for earlier in thread.history(limit=THREAD_HISTORY_LIMIT):
                if earlier.author.id == me or any(u.id == me for u in earlier.mentions):
                    return True
        except discord.HTTPException as exc:
            log.warning("cannot read history of thread %s: %s", thread.id, exc)
        return False

    async def on_message(self, message: discord.Message) -> None:
        new_request()  # this event's task only: every log line and the stored exchange carry its id
        if not await self.should_answer(message):
            return
        assert self.user is not None
        log.info("message %s from user %s in channel %s", message.id, message.author.id, message.channel.id,
                 extra={"message_id": message.id, "user_id": message.author.id})
        incoming = IncomingMessage(
            user_id=str(message.author.id), text=strip_mentions(message.content, self.user.id),
            guild_id=str(message.guild.id) if message.guild else None, channel_id=str(message.channel.id),
            user_name=message.author.display_name)
        if not incoming.text:
            await message.channel.send("Yes? Mention me with a message and I'll answer.")
            return
        async with message.channel.typing():
            reply = await self.handler.handle(incoming)
        if reply is None:
            return
        for i, chunk in enumerate(split_message(reply.text)):
            if i == 0 and message.guild is not None:
                await message.reply(chunk, mention_author=False)
            else:
                await message.channel.send(chunk)
