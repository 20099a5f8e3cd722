"""``/memory show|search|export|forget|stats|migrate`` (and ``pause|resume|settings``, see ``preferences``).

Personal content is answered ephemerally. ``stats`` and ``migrate`` are for
server admins (Manage Server): hidden from others by default permissions and
checked again when run, since server owners can override the defaults.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.common import clip, is_admin, scope_of, where
from bot.cogs.preferences import PreferenceCommands, add_activity
from bot.reports import (
    UNAVAILABLE,
    Card,
    export_json,
    forget_now,
    forget_request,
    format_profile,
    search_card,
    show_card,
)
from memory.errors import InvalidInput, MemoryStoreError, TierUnavailable

if TYPE_CHECKING:
    from bot.client import MnemoBot

log = logging.getLogger(__name__)

FORGET_CHOICES = [
    app_commands.Choice(name="everything, everywhere", value="all"),
    app_commands.Choice(name="everything in this server (or these DMs)", value="here"),
    app_commands.Choice(name="one topic (give the topic)", value="topic"),
    app_commands.Choice(name="the last exchange", value="last"),
]
PROGRESS_EVERY_SECONDS = 2.0
PROFILE_ACTIONS = [app_commands.Choice(name="show it", value="show"),
                   app_commands.Choice(name="remove a wrong line", value="remove"),
                   app_commands.Choice(name="replace a line with my text", value="replace")]


class ConfirmView(discord.ui.View):
    """Confirm / Cancel buttons for the user who asked; runs ``action`` once on Confirm."""

    def __init__(self, owner_id: int, action: Callable[[], Awaitable[str]], *, timeout: float = 60.0) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self.action = action
        self.done = False

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message("This isn't your confirmation.", ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Forget it", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        if self.done:
            return
        self.done = True
        self.stop()
        await interaction.response.defer()
        text = await self.action()
        await interaction.edit_original_response(content=text, view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.done = True
        self.stop()
        await interaction.response.edit_message(content="Cancelled: nothing was forgotten.", view=None)


# pause, resume and settings come from PreferenceCommands (bot/cogs/preferences.py)
class MemoryCog(PreferenceCommands, commands.GroupCog, group_name="memory",
                group_description="What I remember about you"):
    def __init__(self, bot: MnemoBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="show", description="What I remember about you here")
    async def show(self, interaction: discord.Interaction) -> None:
        user_id, guild_id = scope_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            card = await show_card(self.bot.memory, user_id, guild_id)
        except TierUnavailable:
            await interaction.followup.send(UNAVAILABLE, ephemeral=True)
            return
        await interaction.followup.send(embed=embed_of(card), ephemeral=True)

    @app_commands.command(name="profile", description="Your profile here: show it, or remove or replace a line")
    @app_commands.describe(action="show, remove a line, or replace a line", line="the line's key, e.g. home",
                           text="the new text, when replacing")
    @app_commands.choices(action=PROFILE_ACTIONS)
    async def profile(self, interaction: discord.Interaction, action: app_commands.Choice[str] | None = None,
                      line: app_commands.Range[str, 1, 40] | None = None,
                      text: app_commands.Range[str, 1, 200] | None = None) -> None:
        await ProfileCommands.run(self, interaction, action.value if action else "show", line, text)

    @app_commands.command(name="search", description="The memories I would use to answer this")
    @app_commands.describe(query="what you would ask me")
    async def search(self, interaction: discord.Interaction, query: app_commands.Range[str, 1, 500]) -> None:
        user_id, guild_id = scope_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            card = await search_card(self.bot.memory, user_id, guild_id, query,
                                     self.bot.settings.bot.context_max_tokens)
        except (TierUnavailable, InvalidInput) as exc:
            await interaction.followup.send(UNAVAILABLE if isinstance(exc, TierUnavailable)
                                            else f"I can't search for that: {exc}", ephemeral=True)
            return
        await interaction.followup.send(embed=embed_of(card), ephemeral=True)

    @app_commands.command(name="export", description="Everything I hold about you, as a JSON file")
    async def export(self, interaction: discord.Interaction) -> None:
        user_id, _ = scope_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            payload = await export_json(self.bot.memory, user_id)
        except TierUnavailable:
            await interaction.followup.send(UNAVAILABLE, ephemeral=True)
            return
        file = discord.File(io.BytesIO(payload), filename=f"mnemo-export-{user_id}.json")
        await interaction.followup.send("Here is everything I hold about you, in every server and DMs.",
                                        file=file, ephemeral=True)

    @app_commands.command(name="forget", description="Make me forget: everything, this server, a topic, "
                                                     "or the last exchange")
    @app_commands.describe(what="what to forget", topic="the topic, when forgetting one topic")
    @app_commands.choices(what=FORGET_CHOICES)
    async def forget(self, interaction: discord.Interaction, what: app_commands.Choice[str],
                     topic: str | None = None) -> None:
        user_id, guild_id = scope_of(interaction)
        try:
            request = forget_request(what.value, guild_id, topic)
        except InvalidInput:
            await interaction.response.send_message("Tell me the topic to forget (the `topic` option).",
                                                    ephemeral=True)
            return

        async def run() -> str:
            return await forget_now(self.bot.memory, user_id, request)

        await interaction.response.send_message(request.question, view=ConfirmView(interaction.user.id, run),
                                                ephemeral=True)

    @app_commands.command(name="stats", description="Admins: users, messages, tokens and tier health")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def stats(self, interaction: discord.Interaction) -> None:
        if not is_admin(interaction):
            await interaction.response.send_message("Only server admins (Manage Server) can see stats.",
                                                    ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = str(interaction.guild_id)
        stats = await self.bot.memory.stats()
        try:
            usage = await self.bot.memory.usage(guild_id=guild_id)
        except TierUnavailable:
            usage = []
        embed = discord.Embed(title="Memory stats")
        embed.add_field(name="Overall", inline=False, value=(
            f"{stats.users} users · {stats.exchanges} exchanges · {stats.pending} pending for derived tiers\n"
            f"tokens: {stats.prompt_tokens} prompt + {stats.completion_tokens} completion"))
        health = "\n".join(f"{'✅' if h.ok else '❌'} {name}: {h.ms:.0f} ms {clip(h.detail, 80)}".rstrip()
                           for name, h in stats.tiers.items())
        embed.add_field(name="Tiers", value=health or "none", inline=False)
        rows = sorted(usage, key=lambda r: r.total_tokens, reverse=True)
        embed.add_field(name="This server", inline=False, value=(
            f"{len(rows)} users with token usage (all time) · {sum(r.requests for r in rows)} messages · "
            f"{sum(r.total_tokens for r in rows)} tokens\n"
            + "\n".join(f"<@{r.user_id}>: {r.requests} msgs, {r.prompt_tokens}+{r.completion_tokens} tokens"
                        for r in rows[:10])))
        await add_activity(embed, self.bot.memory, guild_id)
        await interaction.followup.send(embed=embed, ephemeral=True)

    @app_commands.command(name="migrate", description="Admins: import the legacy Chroma memories")
    @app_commands.describe(source="path of the legacy Chroma directory, or http(s)://host:port",
                           collection="legacy collection name", dry_run="only count what would be imported")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def migrate(self, interaction: discord.Interaction, source: str,
                      collection: str = "user_memories", dry_run: bool = False) -> None:
        if not is_admin(interaction):
            await interaction.response.send_message("Only server admins (Manage Server) can migrate.",
                                                    ephemeral=True)
            return
        from memory.migration import migrate_from_chroma  # heavy: only loaded when used

        await interaction.response.defer(ephemeral=True, thinking=True)
        status = await interaction.followup.send(f"Migrating from `{clip(source, 200)}`…", ephemeral=True,
                                                 wait=True)
        last_edit = 0.0

        async def progress(p: Any) -> None:
            nonlocal last_edit
            if time.monotonic() - last_edit < PROGRESS_EVERY_SECONDS:
                return
            last_edit = time.monotonic()
            await status.edit(content=(f"Migrating ({p.phase}): {p.records_read}/{p.records_total} read, "
                                       f"{p.exchanges_created} created, {p.skipped_existing} already there, "
                                       f"{p.unmappable} unmappable"))

        try:
            report = await migrate_from_chroma(self.bot.memory, source, collection=collection,
                                               dry_run=dry_run, progress=progress)
        except MemoryStoreError as exc:
            await status.edit(content=f"Migration stopped: {exc}. Running it again resumes.")
            return
        verb = "would create" if report.dry_run else "created"
        await status.edit(content=(
            f"Migration {'dry run ' if report.dry_run else ''}done in {report.seconds:.0f} s: "
            f"{report.records_read}/{report.records_total} records read, {verb} {report.exchanges_created} "
            f"exchanges for {len(report.users)} users, {report.skipped_existing} already there, "
            f"{report.unmappable_count} unmappable."))


class ProfileCommands:
    """``/memory profile``: show the profile, or remove or replace one of its lines (own scope only)."""

    @staticmethod
    async def run(cog: MemoryCog, interaction: discord.Interaction, action: str, line: str | None,
                  text: str | None) -> None:
        user_id, guild_id = scope_of(interaction)
        memory = cog.bot.memory
        try:
            if action == "show":
                profile = await memory.user_profile(user_id, guild_id)
                note = ""
            elif line is None or (action == "replace" and not text):
                await interaction.response.send_message(
                    "Name the line (its key, e.g. `home`) and, to replace it, the new text.", ephemeral=True)
                return
            else:
                profile = await memory.correct_profile(user_id, line, text if action == "replace" else None,
                                                       guild_id=guild_id)
                note = f"Line `{line}` {'replaced' if action == 'replace' else 'removed'}.\n"
        except InvalidInput as exc:
            await interaction.response.send_message(f"I can't do that: {exc.reason}", ephemeral=True)
            return
        except TierUnavailable:
            await interaction.response.send_message(UNAVAILABLE, ephemeral=True)
            return
        body = format_profile(profile) or "Nothing yet: tell me about yourself and it will show here."
        await interaction.response.send_message(clip(f"{note}Your profile {where(guild_id)}:\n{body}", 1900),
                                                ephemeral=True)



def embed_of(card: Card) -> discord.Embed:
    """A card as an embed: title, description, one field per section, footer."""
    embed = discord.Embed(title=card.title, description=card.description or None)
    for section in card.sections:
        embed.add_field(name=section.name, value=section.value, inline=False)
    if card.footer:
        embed.set_footer(text=card.footer)
    return embed
