"""``/remember <fact>``, ``/forget-fact <fact>`` and the message menu's *Remember this*: facts the
user curates, kept apart from logs.

Facts are always part of the user's context in the scope they were saved in
(this server, or DMs). Replies are ephemeral: facts are personal. *Remember this* (Apps, on a
message) saves the message's text as the user's fact: their own message or one of the bot's
(an answer worth keeping), never another member's, whose words are theirs to share.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.common import clip, scope_of, where
from bot.content import readable
from memory.errors import InvalidInput, TierUnavailable

if TYPE_CHECKING:
    from bot.client import MnemoBot

log = logging.getLogger(__name__)

MAX_FACT_CHARS = 500


class FactsCog(commands.Cog):
    def __init__(self, bot: MnemoBot) -> None:
        self.bot = bot
        self.remember_menu = app_commands.ContextMenu(name="Remember this", callback=self.remember_message)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.remember_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.remember_menu.name, type=self.remember_menu.type)

    async def remember_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """*Remember this* on a message: its text becomes the user's fact in this scope."""
        me = self.bot.user
        if message.author.id != interaction.user.id and (me is None or message.author.id != me.id):
            await interaction.response.send_message(
                "I only save your own messages or mine as your facts: what others write is theirs to share.",
                ephemeral=True)
            return
        text = readable(message, me.id if me is not None else 0).strip()
        if not text:
            await interaction.response.send_message("That message has no text to save.", ephemeral=True)
            return
        if len(text) > MAX_FACT_CHARS:
            await interaction.response.send_message(
                f"That message is {len(text)} characters and a fact holds {MAX_FACT_CHARS}: use /remember with "
                "the part that matters.", ephemeral=True)
            return
        await self._save(interaction, text)

    @app_commands.command(name="remember",
                          description="Save a fact about you that I should always keep in mind")
    @app_commands.describe(fact="for example: I'm vegetarian and live in Lyon")
    async def remember(self, interaction: discord.Interaction, fact: app_commands.Range[str, 1, 500]) -> None:
        await self._save(interaction, fact)

    async def _save(self, interaction: discord.Interaction, fact: str) -> None:
        user_id, guild_id = scope_of(interaction)
        try:
            saved = await self.bot.memory.remember_fact(user_id, fact, guild_id=guild_id)
        except InvalidInput as exc:
            await interaction.response.send_message(f"I can't save that: {exc.reason}.", ephemeral=True)
            return
        except TierUnavailable:
            await interaction.response.send_message(
                "My memory is unavailable right now; please try again later.", ephemeral=True)
            return
        await interaction.response.send_message(
            f"Saved {where(guild_id)}: “{clip(saved.text, 300)}” (id `{saved.id}`).", ephemeral=True)

    @app_commands.command(name="forget-fact", description="Remove one fact you saved with /remember")
    @app_commands.describe(fact="start typing to pick one of your facts, or paste its id")
    async def forget_fact(self, interaction: discord.Interaction, fact: str) -> None:
        user_id, guild_id = scope_of(interaction)
        try:
            removed = await self.bot.memory.forget_fact(user_id, fact, guild_id=guild_id)
        except InvalidInput:
            removed = False
        except TierUnavailable:
            await interaction.response.send_message(
                "My memory is unavailable right now; please try again later.", ephemeral=True)
            return
        text = ("Forgotten." if removed
                else f"I have no fact with id `{clip(fact, 60)}` {where(guild_id)}. "
                     "Use /memory show to see them.")
        await interaction.response.send_message(text, ephemeral=True)

    @forget_fact.autocomplete("fact")
    async def _fact_choices(self, interaction: discord.Interaction,
                            current: str) -> list[app_commands.Choice[str]]:
        user_id, guild_id = scope_of(interaction)
        try:
            facts = await self.bot.memory.facts(user_id, guild_id=guild_id)
        except TierUnavailable:
            return []  # autocomplete cannot show an error; the command itself reports it
        needle = current.casefold().strip()
        matches = [f for f in facts if needle in f.text.casefold() or needle == str(f.id)]
        return [app_commands.Choice(name=clip(f.text, 100), value=str(f.id)) for f in matches[:25]]
