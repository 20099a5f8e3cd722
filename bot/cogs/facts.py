"""``/remember <fact>`` and ``/forget-fact <fact>``: facts the user curates, kept apart from logs.

Facts are always part of the user's context in the scope they were saved in
(this server, or DMs). Replies are ephemeral: facts are personal.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.common import clip, scope_of, where
from memory.errors import InvalidInput, TierUnavailable

if TYPE_CHECKING:
    from bot.client import MnemoBot

log = logging.getLogger(__name__)

MAX_FACT_CHARS = 500


class FactsCog(commands.Cog):
    def __init__(self, bot: MnemoBot) -> None:
        self.bot = bot

    @app_commands.command(name="remember",
                          description="Save a fact about you that I should always keep in mind")
    @app_commands.describe(fact="for example: I'm vegetarian and live in Lyon")
    async def remember(self, interaction: discord.Interaction, fact: app_commands.Range[str, 1, 500]) -> None:
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
