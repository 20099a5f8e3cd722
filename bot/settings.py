"""The bot's settings: the memory library's settings plus Discord and chat sections.

Read from the environment and ``.env`` like ``MemorySettings``: ``DISCORD_TOKEN``,
``DISCORD_TEST_GUILD``, and the ``BOT__*`` section (persona, rate limits,
listening channels, history window). The LLM endpoint is the ``LLM__*``
section of ``MemorySettings``. Only ``bot/__main__.py`` builds this object.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from memory.settings import MemorySettings

DEFAULT_PERSONA = (
    "You are mnemo, a friendly and concise assistant in a Discord server. You remember what each "
    "person told you in earlier conversations; the memory notes below come from those conversations. "
    "Use them when they help, never invent memories, and say so when you do not know. "
    "Keep answers short unless asked for detail. When the user explicitly asks you to remember "
    "something about them, call the remember_fact tool with that fact."
)


class ChatSettings(BaseModel):
    """How the bot talks and when it listens (env prefix ``BOT__``)."""

    persona: str = Field(DEFAULT_PERSONA, min_length=1, description="system prompt sent before the memory")
    rate_limit_per_user: int = Field(30, ge=1, description="messages per user per window")
    rate_limit_global: int = Field(10_000, ge=1, description="messages over all users per window")
    rate_limit_window_seconds: int = Field(60, ge=1, le=3600)
    history_exchanges: int = Field(
        4, ge=0, le=20,
        description="last exchanges of the channel sent verbatim; older ones fold into a rolling summary")
    summary_max_chars: int = Field(1500, ge=200, le=20_000, description="size cap of the rolling summary")
    context_max_tokens: int = Field(1000, ge=50, le=100_000, description="budget of the memory notes")
    # NoDecode: the env value may be "1,2" rather than JSON; _split_ids parses both.
    listen_channels: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), description="channel ids where mentions are answered; empty = every channel")
    always_on_channels: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), description="channel ids where every message is answered, mention or not")
    owner_ids: Annotated[frozenset[int], NoDecode] = Field(
        frozenset(), description="Discord user ids of the bot's operators, besides the application's owner "
                                 "or team (migration, bot-wide stats)")
    attachment_max_bytes: int = Field(
        65_536, ge=0, le=200_000,
        description="text read from a message's text files (a long paste Discord turns into message.txt, code, "
                    "logs), in bytes over all of them; other attachments are named only; 0 reads none")
    remember_tool: bool = Field(True, description="offer the remember_fact tool to the LLM")
    memory_notice: bool = Field(True, description="tell each user once per guild (and in DMs) that the bot "
                                                  "remembers conversations, and how to see, pause or forget that")
    guild_settings_ttl_seconds: float = Field(
        30.0, ge=0, le=3600, description="how long a process reuses a guild's always-on channels before "
                                         "reading them again (changes made elsewhere show up within this)")
    console_user_id: str = Field("console-user", pattern=r"^[A-Za-z0-9_.@-]{1,100}$")

    @field_validator("listen_channels", "always_on_channels", "owner_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        # Accept "123,456" and "123 456" as well as a JSON list, for hand-written .env files.
        if isinstance(value, str) and value.strip().startswith("["):
            return json.loads(value)
        if isinstance(value, str):
            return [part for part in value.replace(",", " ").split() if part]
        if isinstance(value, int):
            return [value]
        return value


class BotSettings(MemorySettings):
    """Everything ``python -m bot`` needs: memory tiers, LLM, Discord and chat behaviour."""

    discord_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DISCORD_TOKEN", "discord_token"),
        description="bot token from the Discord developer portal; needed for Discord, not for console")
    discord_test_guild: int | None = Field(
        None, validation_alias=AliasChoices("DISCORD_TEST_GUILD", "discord_test_guild"),
        description="guild id where slash commands sync instantly; unset = global sync")
    bot: ChatSettings = ChatSettings()
