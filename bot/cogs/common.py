"""Helpers shared by the cogs: who is asking, where, and how to say it briefly."""

from __future__ import annotations

from collections.abc import Mapping

import discord

TIERS = ("archive", "cache", "summaries", "graph", "facts")


def scope_of(interaction: discord.Interaction) -> tuple[str, str | None]:
    """(user id, guild id or None for DMs) of the person running a command."""
    guild_id = interaction.guild_id
    return str(interaction.user.id), (str(guild_id) if guild_id is not None else None)


def where(guild_id: str | None) -> str:
    return "in your DMs with me" if guild_id is None else "in this server"


def format_counts(counts: Mapping[str, int]) -> str:
    """Per-tier counts as one line, known tiers first: ``archive 3 · cache 3 · ...``."""
    names = [t for t in TIERS if t in counts] + sorted(set(counts) - set(TIERS))
    return " · ".join(f"{name} {counts[name]}" for name in names) or "nothing"


def clip(text: str, limit: int, *, lines: bool = False) -> str:
    """``text`` with its white space folded, cut to ``limit`` characters with an ellipsis when cut.

    ``lines=True`` keeps its line breaks (a list shown one item a line), folding within each line.
    """
    if lines:
        text = "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    else:
        text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_admin(interaction: discord.Interaction) -> bool:
    """Server admins: the Manage Server permission, in a guild."""
    return interaction.guild_id is not None and bool(interaction.permissions.manage_guild)
