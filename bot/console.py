"""Chat with the bot in a terminal, through the same ChatHandler Discord uses.

One fixed user (``BOT__CONSOLE_USER_ID``, default ``console-user``) in DM
scope, on the same memory tiers (bundled ones by default), so it remembers
across runs. Reads lines from stdin (a terminal or a pipe); ``/quit`` or end
of input exits. ``/remember <fact>`` saves a fact, ``/help`` lists commands.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from rich.console import Console
from rich.text import Text

from bot.chat import ChatHandler, IncomingMessage
from memory.errors import InvalidInput, TierUnavailable

CHANNEL_ID = "console"
HELP = "Type a message and press Enter. /remember <fact> saves a fact, /quit (or Ctrl-D) exits."


async def run_console(handler: ChatHandler, *, user_id: str, stdin: TextIO | None = None,
                      console: Console | None = None) -> int:
    """Read messages until /quit or end of input; print each reply. Returns an exit status (0)."""
    stdin = stdin or sys.stdin
    out = console or Console(soft_wrap=True, highlight=False)
    interactive = stdin.isatty()
    out.print(Text(f"mnemo console: you are '{user_id}' (DM scope). {HELP}", style="dim"))
    if handler.llm is None:
        out.print(Text("No LLM is configured (LLM__BASE_URL is unset): replies show the context that "
                       "would be sent.", style="yellow"))
        handler.suppress_no_llm_notice()
    while True:
        if interactive:
            out.print(Text("you> ", style="bold cyan"), end="")
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            break
        if text == "/help":
            out.print(Text(HELP, style="dim"))
            continue
        if text.startswith("/remember"):
            await _remember(handler, user_id, text.removeprefix("/remember").strip(), out)
            continue
        reply = await handler.handle(IncomingMessage(user_id=user_id, text=text, guild_id=None,
                                                     channel_id=CHANNEL_ID, user_name=None))
        if reply is None:
            continue
        out.print(Text("mnemo> ", style="bold green"), Text(reply.text))
    out.print(Text("bye", style="dim"))
    return 0


async def _remember(handler: ChatHandler, user_id: str, fact: str, out: Console) -> None:
    try:
        saved = await handler.memory.remember_fact(user_id, fact)
    except InvalidInput as exc:
        out.print(Text(f"Not saved: {exc.reason}", style="red"))
    except TierUnavailable as exc:
        out.print(Text(f"Not saved, memory unavailable: {exc}", style="red"))
    else:
        out.print(Text(f"Saved fact {saved.id}: {saved.text}", style="green"))
