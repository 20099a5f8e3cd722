"""Composition root: ``python -m bot`` (Discord) or ``python -m bot console`` (terminal).

Reads ``BotSettings`` once, opens the memory manager and the LLM client in one
``AsyncExitStack``, and hands them to the Discord bot or the console. Exit
status: 0 normal, 2 configuration problem (token, intents, settings), 130
interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import warnings

import discord
from pydantic import ValidationError

from bot.llm import ChatLLM, LLMUnavailable
from bot.logs import configure_logging
from bot.settings import BotSettings
from memory.errors import ConfigurationError
from memory.manager import HierarchicalMemoryManager
from memory.metrics import Metrics, serve_metrics

log = logging.getLogger("bot")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


async def _open_memory(stack: contextlib.AsyncExitStack, settings: BotSettings,
                       metrics: Metrics) -> HierarchicalMemoryManager:
    """The memory manager, and the metrics endpoint when ``METRICS__PORT`` is set."""
    memory = await stack.enter_async_context(HierarchicalMemoryManager.from_env(settings, metrics))
    server = serve_metrics(settings.metrics, metrics, memory.stats)
    if server is not None:
        stack.push_async_callback(server.aclose)
        print(f"metrics on http://{server.host}:{server.port}/metrics", file=sys.stderr)
    return memory


async def _open_llm(stack: contextlib.AsyncExitStack, settings: BotSettings, metrics: Metrics) -> ChatLLM | None:
    """The LLM client, checked with a one-token request; an unreachable LLM is a warning, not fatal."""
    if settings.llm.base_url is None:
        log.warning("no LLM configured (LLM__BASE_URL unset): replies will show the context instead")
        return None
    llm = await stack.enter_async_context(ChatLLM(settings.llm, metrics=metrics))
    try:
        await llm.ping(request_timeout=min(10.0, settings.llm.timeout_seconds))
    except LLMUnavailable as exc:
        log.warning("the LLM at %s (model %s) is not answering: %s. The bot starts anyway and "
                    "apologises until it answers.", settings.llm.base_url, settings.llm.model, exc.reason)
    return llm


async def run_console(settings: BotSettings, user_id: str) -> int:
    from bot.chat import ChatHandler
    from bot.console import run_console as console_loop

    async with contextlib.AsyncExitStack() as stack:
        metrics = Metrics()
        memory = await _open_memory(stack, settings, metrics)
        llm = await _open_llm(stack, settings, metrics)
        return await console_loop(ChatHandler(memory, llm, settings), user_id=user_id)


async def run_discord(settings: BotSettings) -> int:
    from bot.client import MnemoBot

    assert settings.discord_token is not None
    async with contextlib.AsyncExitStack() as stack:
        metrics = Metrics()
        memory = await _open_memory(stack, settings, metrics)
        llm = await _open_llm(stack, settings, metrics)
        bot = await stack.enter_async_context(MnemoBot(memory, llm, settings, sync_commands=True))
        try:
            await bot.start(settings.discord_token.get_secret_value())
        except discord.LoginFailure:
            return _fail("Discord rejected DISCORD_TOKEN. Copy the bot token again from the developer "
                         "portal (Applications -> your app -> Bot -> Reset Token).")
        except discord.PrivilegedIntentsRequired:
            return _fail("the bot needs the privileged Message Content intent. Enable it in the developer "
                         "portal (Applications -> your app -> Bot -> Privileged Gateway Intents).")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="mnemo: a Discord bot that remembers")
    parser.add_argument("mode", nargs="?", choices=("discord", "console"), default="discord",
                        help="discord (default, needs DISCORD_TOKEN) or console (chat in this terminal)")
    parser.add_argument("--user", help="console only: the user id to chat as (default BOT__CONSOLE_USER_ID)")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    parser.add_argument("--log-format", default="text", choices=("text", "json"),
                        help="text (default) or one JSON object per line; both carry each message's request id")
    args = parser.parse_args(argv)
    # platformdirs warns on every start when XDG_RUNTIME_DIR is unset (containers); it is harmless here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    configure_logging(args.log_level, args.log_format)
    try:
        settings = BotSettings()
    except ValidationError as exc:
        return _fail(f"invalid settings:\n{exc}")
    if args.mode == "discord" and settings.discord_token is None:
        return _fail("DISCORD_TOKEN is not set. Put it in .env or the environment (see config/.env.example), "
                     "or try the bot without Discord: python -m bot console")
    try:
        if args.mode == "console":
            return asyncio.run(run_console(settings, args.user or settings.bot.console_user_id))
        return asyncio.run(run_discord(settings))
    except ConfigurationError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
