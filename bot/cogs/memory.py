"""``/memory show|search|export|forget|stats|migrate`` (and ``pause|resume|timezone|settings``, see ``preferences``).

Personal content is answered ephemerally. Three roles (ARCHITECTURE "Failure
and trust"): a user's own memories; a guild admin (Manage Server) sees
``stats`` for their guild only; the bot's owners (``MnemoBot.is_operator``: the
application's owner or team, or ``BOT__OWNER_IDS``) also see bot-wide stats and
are the only ones who can ``migrate``, from sources the operator allowed by
name. Every check runs when the command runs (Discord ignores default
permissions on subcommands).
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.common import clip, is_admin, scope_of
from bot.cogs.preferences import PreferenceCommands, add_activity
from bot.reports import (
    UNAVAILABLE,
    Card,
    counted,
    export_json,
    forget_now,
    forget_request,
    nothing_about,
    profile_line_choices,
    profile_text,
    search_card,
    show_card,
)
from memory.errors import ConfigurationError, InvalidInput, MemoryStoreError, TierUnavailable

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
COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$")
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
        self.message: discord.Message | None = None  # a channel message to tidy when nobody answers

    async def on_timeout(self) -> None:
        if self.message is not None and not self.done:
            try:
                await self.message.edit(content="No answer: nothing was forgotten.", view=None)
            except discord.HTTPException as exc:
                log.info("cannot close the forget confirmation %s: %s", self.message.id, exc)

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

    @profile.autocomplete("line")
    async def profile_line(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The asker's own profile lines in this scope, as they type."""
        user_id, guild_id = scope_of(interaction)
        return [app_commands.Choice(name=label, value=key)
                for label, key in await profile_line_choices(self.bot.memory, user_id, guild_id, current)]

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

        await interaction.response.defer(ephemeral=True, thinking=True)  # counting a topic takes a moment
        asked = await counted(self.bot.memory, user_id, request)
        if asked is None:
            await interaction.followup.send(nothing_about(topic or "", guild_id), ephemeral=True)
            return

        async def run() -> str:
            return await forget_now(self.bot.memory, user_id, asked)

        await interaction.followup.send(asked.question, view=ConfirmView(interaction.user.id, run), ephemeral=True)

    @app_commands.command(name="stats", description="Admins: this server's users, messages and tokens; "
                                                    "owners: the whole bot's")
    async def stats(self, interaction: discord.Interaction) -> None:
        operator = await self.bot.is_operator(interaction.user)
        if not operator and not is_admin(interaction):
            await interaction.response.send_message("Only server admins (Manage Server) can see this server's "
                                                    "stats.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        embed = discord.Embed(title="Memory stats")
        if interaction.guild_id is not None:
            embed.add_field(name="This server", inline=False, value=await self._guild_stats(interaction.guild_id))
            await add_activity(embed, self.bot.memory, str(interaction.guild_id))
        if operator:  # bot-wide figures and tier health are the operator's, never a guild admin's
            stats = await self.bot.memory.stats()
            embed.add_field(name="Bot-wide (owners only)", inline=False, value=(
                f"{stats.users} users · {stats.exchanges} exchanges · {stats.pending} pending for derived "
                f"tiers\ntokens: {stats.prompt_tokens} prompt + {stats.completion_tokens} completion"))
            health = "\n".join(f"{'✅' if h.ok else '❌'} {name}: {h.ms:.0f} ms {clip(h.detail, 80)}".rstrip()
                               for name, h in stats.tiers.items())
            embed.add_field(name="Tiers", value=health or "none", inline=False)
            restarts = ", ".join(f"{name} {n}" for name, n in sorted(stats.restarts.items()) if n) or "none"
            embed.add_field(name="Worker", inline=False, value=(
                f"{stats.dead_letters} dead letters (`python -m memory dead-letters`) · "
                f"restarts of bundled servers: {restarts}"))
        await interaction.followup.send(embed=embed, ephemeral=True)

    async def _guild_stats(self, guild: int) -> str:
        """One guild's figures, counted in the archive for that guild only."""
        try:
            exchanges, users = await self.bot.memory.guild_totals(str(guild))
            usage = await self.bot.memory.usage(guild_id=str(guild))
        except TierUnavailable:
            return UNAVAILABLE
        rows = sorted(usage, key=lambda r: r.total_tokens, reverse=True)
        return (f"{users} users · {exchanges} exchanges · {sum(r.requests for r in rows)} messages answered · "
                f"{sum(r.total_tokens for r in rows)} tokens\n"
                + "\n".join(f"<@{r.user_id}>: {r.requests} msgs, {r.prompt_tokens}+{r.completion_tokens} tokens"
                            for r in rows[:10]))

    @app_commands.command(name="migrate", description="Bot owners: import a legacy Chroma store the operator "
                                                      "allowed")
    @app_commands.describe(source="one of the sources the operator allowed (MIGRATION__ALLOWED_SOURCES)",
                           collection="legacy collection name", dry_run="only count what would be imported")
    async def migrate(self, interaction: discord.Interaction, source: str,
                      collection: app_commands.Range[str, 3, 63] = "user_memories", dry_run: bool = False) -> None:
        # Operator only: a migration reads files or URLs and writes into any user's memories.
        # Owners are checked first, so nobody else learns whether migration is on or what it reads.
        if not await self.bot.is_operator(interaction.user):
            await interaction.response.send_message("Only the bot's owners can migrate.", ephemeral=True)
            return
        allowed = self.bot.settings.migration.allowed_sources
        refusal = None
        if not allowed:
            refusal = "Migration is off: the operator has allowed no source (MIGRATION__ALLOWED_SOURCES)."
        elif source not in allowed:
            refusal = "That is not one of the sources the operator allowed; pick one from the list."
        elif not COLLECTION_NAME.match(collection):
            refusal = "A collection name is 3-63 letters, digits, '.', '_' or '-'."
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        from memory.migration import migrate_from_chroma  # heavy: only loaded when used

        await interaction.response.defer(ephemeral=True, thinking=True)
        status = await interaction.followup.send(f"Migrating from `{source}`…", ephemeral=True, wait=True)
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
            report = await migrate_from_chroma(self.bot.memory, allowed[source], collection=collection,
                                               dry_run=dry_run, progress=progress, source_label=source)
        except MemoryStoreError as exc:
            # The detail (paths, what a server answered) goes to the log only: a fixed message here.
            log.warning("migration from source %r, collection %r failed: %s", source, collection, exc)
            await status.edit(content=f"Migration stopped: {migration_failure(exc)} Details are in the bot's log.")
            return
        verb = "would create" if report.dry_run else "created"
        await status.edit(content=(
            f"Migration {'dry run ' if report.dry_run else ''}done in {report.seconds:.0f} s: "
            f"{report.records_read}/{report.records_total} records read, {verb} {report.exchanges_created} "
            f"exchanges for {len(report.users)} users, {report.skipped_existing} already there, "
            f"{report.unmappable_count} unmappable."))

    @migrate.autocomplete("source")
    async def source_choices(self, interaction: discord.Interaction,
                             current: str) -> list[app_commands.Choice[str]]:
        """The allowed sources' names (never their paths or URLs), offered to owners only."""
        if not await self.bot.is_operator(interaction.user):
            return []
        names = sorted(self.bot.settings.migration.allowed_sources)
        return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()][:25]


def migration_failure(exc: MemoryStoreError) -> str:
    """A fixed sentence for a failed migration: nothing of the store's or server's own words."""
    if isinstance(exc, ConfigurationError):
        return "the source holds no Chroma store, or no collection of that name."
    if isinstance(exc, TierUnavailable) and exc.tier == "legacy-chroma":
        return "the legacy store could not be read."
    if isinstance(exc, TierUnavailable):
        return f"{UNAVAILABLE} Running it again resumes."
    return "the legacy records could not be migrated."


class ProfileCommands:
    """``/memory profile``: show the profile, or remove or replace one of its lines (own scope only)."""

    @staticmethod
    async def run(cog: MemoryCog, interaction: discord.Interaction, action: str, line: str | None,
                  text: str | None) -> None:
        user_id, guild_id = scope_of(interaction)
        try:
            reply = await profile_text(cog.bot.memory, user_id, guild_id, action, line, text)
        except InvalidInput as exc:
            reply = f"I can't do that: {exc.reason}"
        except TierUnavailable:
            reply = UNAVAILABLE
        await interaction.response.send_message(reply, ephemeral=True)



def embed_of(card: Card) -> discord.Embed:
    """A card as an embed: title, description, one field per section, footer."""
    embed = discord.Embed(title=card.title, description=card.description or None)
    for section in card.sections:
        embed.add_field(name=section.name, value=section.value, inline=False)
    if card.footer:
        embed.set_footer(text=card.footer)
    return embed
