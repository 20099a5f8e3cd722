"""Chat with the bot in a terminal, through the same ChatHandler Discord uses.

One fixed user (``BOT__CONSOLE_USER_ID``, default ``console-user``) in DM
scope, on the same memory tiers (bundled ones by default), so it remembers
across runs. Reads lines from stdin (a terminal or a pipe); ``/quit`` or end
of input exits. The user's commands are those of Discord, answered by the same
functions (``bot.reports``): ``/memory show``, ``/memory search <query>``,
``/memory export`` (a JSON file under the data directory), ``/memory pause|resume``,
``/forget`` (asks y/N first), ``/remember <fact>``, ``/forget-fact <id>``; ``/help``
lists them.
"""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.text import Text

from bot.chat import ChatHandler, IncomingMessage
from bot.logs import new_request
from bot.reports import (
    UNAVAILABLE,
    Card,
    ForgetRequest,
    counted,
    export_json,
    forget_now,
    forget_request,
    nothing_about,
    pause_message,
    profile_text,
    resume_message,
    search_card,
    show_card,
    time_zone_text,
)
from memory.errors import InvalidInput, TierUnavailable

CHANNEL_ID = "console"
HELP = ("Type a message and press Enter (a line ending in \\ goes on on the next one, and a ``` code "
        "block is one message until it closes). /help lists the commands, /quit (or Ctrl-D) exits.")
COMMANDS = """Commands (what Discord's slash commands do, for you in DM scope):
  /memory show              what I remember about you
  /memory search <query>    the memories I would use to answer <query>
  /memory export            write everything I hold about you to a JSON file
  /memory pause | resume    stop remembering what you say (I still answer) | start again
  /memory timezone [zone]   your time zone (Europe/Berlin...), so "yesterday" is yours; reset: UTC
  /memory profile           your profile; /memory profile remove <key> | replace <key> <text>
  /forget all|here|last     forget everything, these DMs, or our last exchange (asks y/N first)
  /forget topic <topic>     forget our exchanges about one topic (asks y/N first)
  /remember <fact>          save a fact I should always keep in mind
  /forget-fact <id>         remove one saved fact (ids are in /memory show)
  /help                     this list
  /quit                     leave (so does Ctrl-D)"""
MEMORY_USAGE = ("Usage: /memory show | search <query> | export | pause | resume | timezone [zone|reset] | profile"
                " | forget")
FORGET_USAGE = "Usage: /forget all | here | last | topic <topic>"


class _Session:
    """One console run: the handler, who is chatting, where input comes from and output goes."""

    def __init__(self, handler: ChatHandler, user_id: str, stdin: TextIO, out: Console) -> None:
        self.handler = handler
        self.user_id = user_id
        self.stdin = stdin
        self.out = out
        self.interactive = stdin.isatty()
        self.exports = Path(handler.memory.settings.data_dir) / "exports"  # /memory export writes here

    async def readline(self, prompt: str) -> str | None:
        """The next input line without its newline, or None at end of input."""
        if self.interactive:
            self.out.print(Text(prompt, style="bold cyan"), end="")
        line = await asyncio.to_thread(self.stdin.readline)
        return None if not line else line.rstrip("\n")

    async def whole_message(self, line: str) -> str:
        """The message that starts with ``line``: it goes on while a ``` code block is open or a line
        ends with a backslash (which is dropped), as a message of several lines is typed here."""
        lines = [line]
        while True:
            in_code = "\n".join(lines).count("```") % 2 == 1
            if not in_code and not lines[-1].endswith("\\"):
                return "\n".join(lines)
            if not in_code:
                lines[-1] = lines[-1][:-1]
            more = await self.readline("... ")
            if more is None:  # end of input inside a block: what was typed is the message
                return "\n".join(lines)
            lines.append(more)

    def say(self, text: str, style: str = "") -> None:
        self.out.print(Text(_plain(text), style=style))

    def card(self, card: Card) -> None:
        self.out.print(Text(_plain(card.title), style="bold"))
        if card.description:
            self.out.print(Text(_plain(card.description)))
        for section in card.sections:
            self.out.print(Text(section.name + ":", style="bold"))
            self.out.print(Text("\n".join("  " + line for line in _plain(section.value).splitlines())))
        if card.footer:
            self.out.print(Text(_plain(card.footer), style="dim"))

    async def command(self, text: str) -> bool:
        """Run one slash command; False for /quit."""
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/help":
            self.say(COMMANDS, "dim")
        elif name == "/remember":
            await self.remember(arg)
        elif name == "/forget-fact":
            await self.forget_fact(arg)
        elif name == "/forget":
            await self.forget(arg)
        elif name == "/memory":
            sub, _, rest = arg.partition(" ")
            if sub == "show":
                await self.show()
            elif sub == "search" and rest.strip():
                await self.search(rest.strip())
            elif sub == "export":
                await self.export()
            elif sub in ("pause", "resume"):
                await self.pause(sub == "pause")
            elif sub == "profile":
                await self.profile(rest.strip())
            elif sub == "timezone":
                await self.time_zone(rest.strip())
            elif sub == "forget":  # Discord's spelling, which the one-time notice gives
                await self.forget(rest.strip())
            else:
                self.say(MEMORY_USAGE, "yellow")
        else:
            self.say(f"Unknown command {name}. /help lists the commands.", "yellow")
        return True

    async def show(self) -> None:
        try:
            self.card(await show_card(self.handler.memory, self.user_id, None))
        except TierUnavailable:
            self.say(UNAVAILABLE, "red")

    async def profile(self, arg: str) -> None:
        """``/memory profile [remove <key> | replace <key> <text>]``, as the slash command does."""
        words: list[str | None] = [*arg.split(maxsplit=2), None, None, None]
        action, line, text = words[0] or "show", words[1], words[2]
        try:
            self.say(await profile_text(self.handler.memory, self.user_id, None, action, line, text))
        except InvalidInput as exc:
            self.say(f"I can't do that: {exc.reason}", "red")
        except TierUnavailable:
            self.say(UNAVAILABLE, "red")

    async def time_zone(self, arg: str) -> None:
        """``/memory timezone [zone | reset]``, as the slash command does."""
        try:
            self.say(await time_zone_text(self.handler.memory, self.user_id,
                                          None if arg in ("", "reset") else arg, reset=arg == "reset"))
        except TierUnavailable:
            self.say(UNAVAILABLE, "red")

    async def search(self, query: str) -> None:
        try:
            self.card(await search_card(self.handler.memory, self.user_id, None, query,
                                        self.handler.settings.bot.context_max_tokens))
        except TierUnavailable:
            self.say(UNAVAILABLE, "red")
        except InvalidInput as exc:
            self.say(f"I can't search for that: {exc}", "red")

    async def export(self) -> None:
        try:
            payload = await export_json(self.handler.memory, self.user_id)
        except TierUnavailable:
            self.say(UNAVAILABLE, "red")
            return
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.exports / f"mnemo-export-{_safe(self.user_id)}-{stamp}.json"
        await asyncio.to_thread(_write, path, payload)
        self.say(f"Everything I hold about you, in every server and DMs, is in {path}", "green")

    async def pause(self, pause: bool) -> None:
        memory = self.handler.memory
        try:
            changed = await (memory.pause(self.user_id) if pause else memory.resume(self.user_id))
        except TierUnavailable:
            self.say(UNAVAILABLE, "red")
            return
        self.say((pause_message if pause else resume_message)(changed, None))

    async def forget(self, arg: str) -> None:
        what, _, topic = arg.partition(" ")
        try:
            request = forget_request(what, None, topic)
        except InvalidInput:
            self.say(FORGET_USAGE, "yellow")
            return
        asked = await counted(self.handler.memory, self.user_id, request)
        if asked is None:
            self.say(nothing_about(topic.strip(), None))
            return
        await self.confirm_forget(asked)

    async def confirm_forget(self, request: ForgetRequest) -> None:
        question = f"{_plain(request.question)} [y/N] "
        if not self.interactive:
            self.say(question.rstrip())  # from a pipe the prompt is not shown: print the question
        answer = await self.readline(question)
        if (answer or "").strip().lower() not in ("y", "yes"):
            self.say("Cancelled: nothing was forgotten.")
            return
        self.say(await forget_now(self.handler.memory, self.user_id, request))
        # an export written here is a copy of what was just forgotten: it goes too
        removed = await asyncio.to_thread(_remove_exports, self.exports, self.user_id)
        if removed:
            self.say(f"Also deleted {removed} export file{'s' if removed != 1 else ''} of yours from {self.exports}, "
                     "which held it.")

    async def remember(self, fact: str) -> None:
        try:
            saved = await self.handler.memory.remember_fact(self.user_id, fact)
        except InvalidInput as exc:
            self.say(f"Not saved: {exc.reason}", "red")
        except TierUnavailable as exc:
            self.say(f"Not saved, memory unavailable: {exc}", "red")
        else:
            self.say(f"Saved fact {saved.id}: {saved.text}", "green")

    async def forget_fact(self, fact_id: str) -> None:
        if not fact_id:
            self.say("Usage: /forget-fact <id> (/memory show lists the ids)")
            return
        try:
            removed = await self.handler.memory.forget_fact(self.user_id, fact_id)
        except InvalidInput:
            removed = False
        except TierUnavailable:
            self.say(UNAVAILABLE, "red")
            return
        self.say("Forgotten." if removed else f"I have no fact with id {fact_id!r}. /memory show lists them.")


def _plain(text: str) -> str:
    """Discord markdown (bold, inline code) as plain terminal text."""
    return text.replace("**", "").replace("`", "")


def _safe(user_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", user_id)


def _remove_exports(folder: Path, user_id: str) -> int:
    """Delete the user's export files in ``folder``; returns how many."""
    removed = 0
    for path in folder.glob(f"mnemo-export-{_safe(user_id)}-*.json"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def _write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)


async def run_console(handler: ChatHandler, *, user_id: str, stdin: TextIO | None = None,
                      console: Console | None = None) -> int:
    """Read messages and commands until /quit or end of input; print each reply. Returns 0."""
    session = _Session(handler, user_id, stdin or sys.stdin,
                       console or Console(soft_wrap=True, highlight=False))
    out = session.out
    out.print(Text(f"mnemo console: you are '{user_id}' (DM scope). {HELP}", style="dim"))
    if handler.llm is None:
        out.print(Text("No LLM is configured (LLM__BASE_URL is unset): replies show the context that "
                       "would be sent.", style="yellow"))
        handler.suppress_no_llm_notice()
    while (line := await session.readline("you> ")) is not None:
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            if not await session.command(text):
                break
            continue
        text = (await session.whole_message(line)).strip()
        new_request()
        reply = await handler.handle(IncomingMessage(user_id=user_id, text=text, guild_id=None,
                                                     channel_id=CHANNEL_ID, user_name=None))
        if reply is None:
            continue
        out.print(Text("mnemo> ", style="bold green"), Text(reply.text))
        if reply.notice:  # the one-time "I remember our conversations" notice Discord shows too
            out.print(Text(_plain(reply.notice.removeprefix("-# ")), style="dim"))
        if reply.forget is not None:  # the model proposed forgetting something: only a "y" does it
            await session.confirm_forget(reply.forget)
    await _finish_pending(handler, out)
    out.print(Text("bye", style="dim"))
    return 0


FINISH_SECONDS = 15.0


async def _finish_pending(handler: ChatHandler, out: Console) -> None:
    """Before leaving, let this process's worker take what was just said to the derived tiers
    (profile, summaries, graph), so the next start shows it at once. Nothing is lost either way:
    the work waits in the archive's queue for the next start or any other worker."""
    memory = handler.memory
    if not memory.settings.worker.in_process:
        return
    try:
        pending = await memory.pending()
    except TierUnavailable:
        return
    if pending == 0:
        return
    out.print(Text(f"Taking in what you said ({pending} exchange{'s' if pending != 1 else ''} "
                   "still being processed)...", style="dim"))
    try:
        await memory.flush(timeout=FINISH_SECONDS)
    except TierUnavailable:
        out.print(Text("Not all of it was done: the rest is kept and finished at the next start.", style="yellow"))
