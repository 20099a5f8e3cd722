"""``/memory pause|resume|timezone|settings``: a user's pause and time zone, and a guild admin's settings
for their guild.

Mixed into ``MemoryCog`` (one ``/memory`` group) and kept here so that cog
stays about showing and forgetting memories. ``pause`` and ``resume`` are the
user's own, per scope (this server, or DMs), answered ephemerally; so is ``timezone``,
which is one setting for all the user's scopes. ``settings``
is for the admins of the guild it runs in (Manage Server there, checked again
when run since server owners can override the default permissions); it is not
available in DMs and only touches that guild's row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.common import clip, is_admin, scope_of
from bot.reports import pause_message, resume_message, time_zone_text
from memory.errors import InvalidInput, TierUnavailable
from memory.lifecycle import MAX_PERSONA_CHARS, zone_suggestions
from memory.models import GuildSettings

if TYPE_CHECKING:
    from bot.client import MnemoBot
    from memory.manager import HierarchicalMemoryManager

UNAVAILABLE = "My memory is unavailable right now; please try again later."


class PreferenceCommands(commands.Cog):
    """The ``/memory`` subcommands about pausing and guild settings (a base of ``MemoryCog``)."""

    bot: MnemoBot

    @app_commands.command(name="pause", description="Stop remembering what you say here (I still answer)")
    async def pause(self, interaction: discord.Interaction) -> None:
        await self._switch(interaction, self.bot.memory.pause, pause_message)

    @app_commands.command(name="resume", description="Remember what you say here again")
    async def resume(self, interaction: discord.Interaction) -> None:
        await self._switch(interaction, self.bot.memory.resume, resume_message)

    async def _switch(self, interaction: discord.Interaction,
                      change: Callable[..., Awaitable[bool]], message: Callable[[bool, str | None], str]) -> None:
        """Pause or resume remembering in the caller's own scope, and say whether anything changed."""
        user_id, guild_id = scope_of(interaction)
        try:
            changed = await change(user_id, guild_id=guild_id)
        except TierUnavailable:
            await interaction.response.send_message(UNAVAILABLE, ephemeral=True)
            return
        await interaction.response.send_message(message(changed, guild_id), ephemeral=True)

    @app_commands.command(name="timezone", description="Your time zone, so \"yesterday\" means yours "
                                                        "(the same everywhere)")
    @app_commands.describe(zone="a name like Europe/Berlin (suggested as you type); leave out to see yours",
                           reset="go back to UTC")
    async def timezone(self, interaction: discord.Interaction,
                       zone: app_commands.Range[str, 1, 64] | None = None, reset: bool = False) -> None:
        user_id, _ = scope_of(interaction)
        try:
            text = await time_zone_text(self.bot.memory, user_id, zone, reset)
        except TierUnavailable:
            text = UNAVAILABLE
        await interaction.response.send_message(text, ephemeral=True)

    @timezone.autocomplete("zone")
    async def zone_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=n, value=n) for n in zone_suggestions(current)]

    @app_commands.command(name="settings", description="Admins: this server's persona, always-on channels "
                                                        "and retention")
    @app_commands.describe(
        persona="the bot's persona (system prompt) in this server, replacing the default",
        reset_persona="go back to the bot's default persona",
        add_channel="a channel where I answer every message, mention or not",
        remove_channel="a channel to take off the always-on list",
        retention_days="forget exchanges in this server older than this many days (0: the bot's default)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def settings(self, interaction: discord.Interaction,
                       persona: app_commands.Range[str, 1, MAX_PERSONA_CHARS] | None = None,
                       reset_persona: bool = False, add_channel: discord.TextChannel | None = None,
                       remove_channel: discord.TextChannel | None = None,
                       retention_days: app_commands.Range[int, 0, 36500] | None = None) -> None:
        if not is_admin(interaction) or interaction.guild_id is None:
            await interaction.response.send_message("Only server admins (Manage Server) can change settings.",
                                                    ephemeral=True)
            return
        guild_id = str(interaction.guild_id)
        channels = [c for c in (add_channel, remove_channel) if c is not None]
        if any(c.guild.id != interaction.guild_id for c in channels):
            await interaction.response.send_message("Those channels are not in this server.", ephemeral=True)
            return
        changes = (persona is not None or reset_persona or bool(channels) or retention_days is not None)
        try:
            if changes:
                current = await self.bot.memory.update_guild_settings(
                    guild_id, updated_by=str(interaction.user.id), persona=None if reset_persona else persona,
                    clear_persona=reset_persona,
                    add_channels=[str(add_channel.id)] if add_channel else [],
                    remove_channels=[str(remove_channel.id)] if remove_channel else [],
                    retention_days=retention_days or None, clear_retention=retention_days == 0)
                self.bot.guild_channels.forget(interaction.guild_id)
            else:
                current = await self.bot.memory.guild_settings(guild_id)
        except InvalidInput as exc:
            await interaction.response.send_message(f"Not changed: {exc.reason}", ephemeral=True)
            return
        except TierUnavailable:
            await interaction.response.send_message(UNAVAILABLE, ephemeral=True)
            return
        await interaction.response.send_message(
            "Saved. This server's settings:" if changes else "This server's settings:",
            embed=self._settings_embed(current), ephemeral=True)

    def _settings_embed(self, current: GuildSettings) -> discord.Embed:
        default_days = self.bot.settings.memory.retention_days
        embed = discord.Embed(title="Memory settings for this server")
        embed.add_field(name="Persona", inline=False,
                        value=clip(current.persona, 1000) if current.persona else "the bot's default")
        listed = " ".join(f"<#{c}>" for c in sorted(current.always_on_channels))
        embed.add_field(name="Always-on channels (besides the bot's own list)", value=listed or "none",
                        inline=False)
        days = [d for d in (current.retention_days, default_days) if d is not None]
        effective = f"{min(days)} days" if days else "kept until forgotten"
        embed.add_field(name="Retention", inline=False, value=(
            f"this server: {f'{current.retention_days} days' if current.retention_days else 'not set'} · "
            f"bot default: {f'{default_days} days' if default_days else 'off'} · in effect: {effective}"))
        if current.updated_by:
            embed.set_footer(text=f"last changed by user {current.updated_by}")
        return embed


async def add_activity(embed: discord.Embed, memory: HierarchicalMemoryManager, guild_id: str) -> None:
    """A ``/memory stats`` field: this guild's conversations active in the last minutes."""
    minutes = memory.settings.memory.active_minutes
    name = f"Active conversations here (last {minutes:g} min)"
    try:
        active = await memory.active_conversations(minutes, guild_id=guild_id, limit=200)
    except TierUnavailable:
        embed.add_field(name=name, value="unavailable right now", inline=False)
        return
    if not active:
        embed.add_field(name=name, value="none", inline=False)
        return
    lines = [f"{len({a.user_id for a in active})} users in {len({a.channel_id for a in active})} channels"]
    for a in active[:10]:
        line = f"<@{a.user_id}> in <#{a.channel_id}>: {a.exchanges} exchanges, last <t:{int(a.last_at.timestamp())}:R>"
        if len("\n".join([*lines, line])) > 1000:
            break
        lines.append(line)
    embed.add_field(name=name, value="\n".join(lines), inline=False)
