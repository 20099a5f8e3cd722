"""The Discord client: decides which messages to answer and hands them to the ChatHandler.

The bot answers in DMs, when mentioned in a guild channel or replied to (a reply to
one of its messages, pinged or not), in threads where it
was mentioned or has spoken (read from the thread's history, not remembered
in-process), and to every message in always-on channels. When
``BOT__LISTEN_CHANNELS`` is set, mentions outside those channels (and their
threads) are ignored. Guild admins add always-on channels of their guild with
``/memory settings`` (read through a short-lived per-process copy, so a change
reaches other processes within ``BOT__GUILD_SETTINGS_TTL_SECONDS``). Nothing here
holds state only one process knows, so the bot can run sharded across processes.

Discord's own events: when a user edits a message the bot stored, the exchange
takes the new text and is derived again (an edit that empties the message
forgets it); the bot's reply is kept as it was sent, since memory mirrors what
the channel shows. When a user's message is deleted (by them or a moderator, one
by one or in bulk), its exchange is forgotten in every tier. Deleting the bot's
reply changes nothing: the exchange belongs to the user's message, which is
still there, and anyone with Manage Messages can delete the bot's messages;
users forget an exchange with ``/memory forget``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable

import aiohttp
import discord
from discord.ext import commands

from bot.chat import ChatHandler, IncomingMessage
from bot.content import (
    DESCRIBE_SECONDS,
    TRANSCRIBE_SECONDS,
    Describer,
    Transcriber,
    message_text,
    readable,
    replied_to,
)
from bot.llm import ChatLLM
from bot.logs import new_request
from bot.reports import ForgetRequest, forget_now
from bot.settings import BotSettings
from bot.split import split_message
from memory.errors import ForgetPending, InvalidInput, NotFound, TierUnavailable
from memory.manager import HierarchicalMemoryManager

log = logging.getLogger(__name__)

THREAD_HISTORY_LIMIT = 50
FORGET_CONFIRM_SECONDS = 300.0


def bot_intents() -> discord.Intents:
    """Default intents plus message content (a privileged intent to enable in the developer portal)."""
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


class GuildChannels:
    """Always-on channels set per guild, read from PostgreSQL at most once per ``ttl`` seconds per
    guild and process (a copy that expires, never the only one)."""

    def __init__(self, memory: HierarchicalMemoryManager, ttl: float) -> None:
        self.memory = memory
        self.ttl = ttl
        self._copies: dict[int, tuple[float, frozenset[int]]] = {}

    async def always_on(self, guild_id: int) -> frozenset[int]:
        now = time.monotonic()
        copy = self._copies.get(guild_id)
        if copy is not None and copy[0] > now:
            return copy[1]
        try:
            settings = await self.memory.guild_settings(str(guild_id))
            channels = frozenset(int(c) for c in settings.always_on_channels if c.isdigit())
        except TierUnavailable as exc:
            log.warning("always-on channels of guild %s unavailable: %s", guild_id, exc)
            channels = copy[1] if copy is not None else frozenset()
        self._copies[guild_id] = (now + self.ttl, channels)
        return channels

    def forget(self, guild_id: int) -> None:
        """Drop this process's copy (after a change made here)."""
        self._copies.pop(guild_id, None)


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
        self.guild_channels = GuildChannels(memory, settings.bot.guild_settings_ttl_seconds)

    async def is_operator(self, user: discord.User | discord.Member) -> bool:
        """Whether ``user`` is one of the bot's owners: ``BOT__OWNER_IDS``, or the Discord
        application's owner or team admins and developers (``Bot.is_owner``, which asks
        Discord once and remembers). Guild admins are not operators. If Discord cannot be
        asked, only ``BOT__OWNER_IDS`` count."""
        if user.id in self.settings.bot.owner_ids:
            return True
        try:
            return await self.is_owner(user)
        except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("cannot read the application's owners from Discord: %s", exc)
            return False

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
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return False  # a join, a pin, a boost, a new thread: Discord's notices, nobody speaking
        if message.guild is None:
            return True
        cfg = self.settings.bot
        channel = message.channel
        parent_id = getattr(channel, "parent_id", None)
        ids = {channel.id} | ({parent_id} if parent_id else set())
        if ids & cfg.always_on_channels or ids & await self.guild_channels.always_on(message.guild.id):
            return True
        if cfg.listen_channels and not ids & cfg.listen_channels:
            return False
        if me in message.mentions:
            return True
        answered = replied_to(message)
        if answered is not None and answered.author.id == me.id:  # a reply to the bot's message, ping or not
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
        # the rate limit first: a user over it costs no downloads of their files
        admission = await self.handler.admit(str(message.author.id))
        text = ""
        if admission.allowed:
            # files take a moment (a PDF, a voice message): the user sees the bot typing meanwhile
            files = bool(message.attachments or message.message_snapshots)
            async with message.channel.typing() if files else contextlib.nullcontext():
                text = await message_text(message, self.user.id, self.settings.bot.attachment_max_bytes,
                                          *self._readers(message))
            if not text:  # a bare ping gets a prompt; an empty message elsewhere (a poll) is not for the bot
                if self.user in message.mentions:
                    await message.channel.send("Yes? Mention me with a message and I'll answer.")
                return
        replying_to, replying_to_name = self._reply_context(message)
        incoming = IncomingMessage(
            user_id=str(message.author.id), text=text,
            guild_id=str(message.guild.id) if message.guild else None, channel_id=str(message.channel.id),
            user_name=message.author.display_name, message_id=str(message.id),
            replying_to=replying_to, replying_to_name=replying_to_name, admission=admission)
        async with message.channel.typing() if admission.allowed else contextlib.nullcontext():
            reply = await self.handler.handle(incoming)
        if reply is None:
            return
        text = f"{reply.text}\n\n{reply.notice}" if reply.notice else reply.text
        for i, chunk in enumerate(split_message(text)):
            if i == 0 and message.guild is not None:
                await message.reply(chunk, mention_author=False)
            else:
                await message.channel.send(chunk)
        if reply.forget is not None:
            await self._confirm_forget(message, reply.forget)

    def _readers(self, message: discord.Message) -> tuple[Transcriber | None, Describer | None]:
        """Voice messages and photos of ``message`` into words, each when the operator configured a
        model for it; what each call cost counts in its author's token usage (``/memory stats``)."""
        llm = self.llm
        if llm is None:
            return None, None
        user_id, guild_id = str(message.author.id), str(message.guild.id) if message.guild else None

        async def transcribe(audio: bytes, filename: str) -> str:
            done = await llm.transcribe(audio, filename, request_timeout=TRANSCRIBE_SECONDS)
            await self.handler.record_usage(user_id, guild_id, done)
            return done.text

        async def describe_image(image: bytes, content_type: str) -> str:
            done = await llm.describe_image(image, content_type, request_timeout=DESCRIBE_SECONDS)
            await self.handler.record_usage(user_id, guild_id, done)
            return done.text

        return (transcribe if llm.settings.transcribe_model else None,
                describe_image if llm.settings.vision_model else None)

    async def _confirm_forget(self, message: discord.Message, request: ForgetRequest) -> None:
        """The forget the model proposed, put to the user who asked: only their button runs it."""
        from bot.cogs.memory import ConfirmView

        user_id = str(message.author.id)

        async def run() -> str:
            return await forget_now(self.memory, user_id, request)

        view = ConfirmView(message.author.id, run, timeout=FORGET_CONFIRM_SECONDS)
        view.message = await message.channel.send(request.question, view=view)

    def _reply_context(self, message: discord.Message) -> tuple[str | None, str | None]:
        """What the message replies to, for the model to see this once (it is not stored with the
        message): the bot's own earlier message (no name), or another member's and their name."""
        answered = replied_to(message)
        if answered is None or self.user is None:
            return None, None
        if answered.author.id == self.user.id:
            return answered.content or None, None
        return readable(answered, self.user.id) or None, answered.author.display_name

    # ---- Discord's own events: edits and deletions of messages the bot stored ------------------

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        message = payload.message
        if self.user is None or message.author.bot or "content" not in payload.data:
            return  # the bot's own messages, and updates that only add embeds
        user_id, message_id = str(message.author.id), str(payload.message_id)
        try:
            if (message.attachments or message.message_snapshots) and not await self.memory.remembers_message(
                    user_id, message_id):
                return  # not a message the bot stored: its files are none of its business
            # read as when it was sent (a photo described again), so the edit does not lose what it showed
            text = await message_text(message, self.user.id, self.settings.bot.attachment_max_bytes,
                                      *self._readers(message))
            if not text:  # emptied: what the user said is gone, so is the memory of it
                await self.memory.forget_message(message_id, user_id=user_id)
                return
            await self.memory.update_message(user_id, message_id, text)
        except NotFound:
            pass  # forgotten meanwhile
        except ForgetPending as exc:
            log.info("edited message %s forgotten; %s queued", message_id, ", ".join(exc.pending))
        except InvalidInput as exc:
            log.warning("edit of message %s not applied: %s", message_id, exc)
        except TierUnavailable as exc:
            log.error("edit of message %s not applied, memory unavailable: %s", message_id, exc)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self._forget_messages([payload.message_id], payload.channel_id)

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        await self._forget_messages(sorted(payload.message_ids), payload.channel_id)

    async def _forget_messages(self, message_ids: Iterable[int], channel_id: int) -> None:
        """Forget the exchanges answering these messages of the channel, in every tier."""
        ids = [str(m) for m in message_ids]
        try:
            removed = await self.memory.forget_messages(ids, channel_id=str(channel_id))
        except ForgetPending as exc:
            log.info("deleted messages %s forgotten; %s queued", ids, ", ".join(exc.pending))
        except TierUnavailable as exc:
            log.error("deleted messages %s not forgotten, memory unavailable: %s", ids, exc)
        else:
            if removed is not None:
                log.info("deleted messages %s forgotten: %s", ids, removed)
