"""``/remember`` with text the memory refuses: a clear ephemeral answer and nothing saved (real tiers)."""

from __future__ import annotations

import uuid
from pathlib import Path
from unittest.mock import AsyncMock, MagicMock

import discord

from bot.client import MnemoBot
from bot.cogs.facts import FactsCog
from memory.manager import HierarchicalMemoryManager
from tests.bot.conftest import bot_settings


def _interaction(user_id: int, guild_id: int | None) -> MagicMock:
    it = MagicMock(spec=discord.Interaction)
    it.user = MagicMock(spec=discord.Member)
    it.user.id = user_id
    it.guild_id = guild_id
    it.response = MagicMock()
    it.response.send_message = AsyncMock()
    return it


async def test_over_long_and_empty_remember_are_refused(memory: HierarchicalMemoryManager,
                                                        tmp_path: Path) -> None:
    cog = FactsCog(MnemoBot(memory, None, bot_settings(None, tmp_path)))
    user = uuid.uuid4().int % 10**17
    for text, reason in (("x" * 2001, "is 2001 characters; the limit is 2000"),
                         ("  \n ", "must not be empty or whitespace only"),
                         ("nul\x00", "contains a NUL byte, which cannot be stored")):
        it = _interaction(user, 7001)
        await FactsCog.remember.callback(cog, it, text)  # type: ignore[call-arg, arg-type]
        it.response.send_message.assert_awaited_once_with(f"I can't save that: {reason}.", ephemeral=True)
    assert await memory.facts(str(user), guild_id="7001") == []

    it = _interaction(user, None)
    await FactsCog.remember.callback(cog, it, "y" * 2000)  # type: ignore[call-arg, arg-type]
    [saved] = await memory.facts(str(user))
    assert saved.text == "y" * 2000
    assert it.response.send_message.await_args.args[0].startswith("Saved in your DMs with me: “yyy")
