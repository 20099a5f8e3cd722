"""``python -m bot console``: end to end as a subprocess fed through stdin, and its commands in-process."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from rich.console import Console

from bot.chat import CONTEXT_BEGIN, NO_LLM_NOTICE, ChatHandler
from bot.console import run_console
from bot.llm import ChatLLM
from memory.launcher import Addresses
from memory.manager import HierarchicalMemoryManager
from tests.bot.conftest import bot_settings
from tests.bot.fake_llm import FakeLLM

ROOT = Path(__file__).resolve().parents[2]


def _env(bundled: Addresses, data_dir: Path, llm_url: str | None) -> dict[str, str]:
    ours = ("LLM__", "REDIS__", "POSTGRES__", "NEO4J__", "CHROMA__", "BOT__", "DISCORD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update({"MEMORY_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT),
                "REDIS__URL": bundled.redis_url, "POSTGRES__DSN": bundled.postgres_dsn,
                "NEO4J__URI": bundled.neo4j_uri, "RETRIEVAL__GRAPH_TIMEOUT_MS": "5000",
                "RETRIEVAL__SUMMARIES_TIMEOUT_MS": "5000", "RETRIEVAL__ARCHIVE_TIMEOUT_MS": "5000"})
    if bundled.neo4j_auth:
        env["NEO4J__USER"], env["NEO4J__PASSWORD"] = bundled.neo4j_auth
    if bundled.neo4j_database:
        env["NEO4J__DATABASE"] = bundled.neo4j_database
    if llm_url:
        env["LLM__BASE_URL"] = llm_url
    return env


async def _run(env: dict[str, str], cwd: Path, stdin: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console", *args, cwd=cwd, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 90)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_console_without_llm_remembers_across_runs(bundled: Addresses, tmp_path: Path) -> None:
    env = _env(bundled, tmp_path / "data", None)
    first = await _run(env, tmp_path, "My favourite colour is teal.\n/quit\nnot read after quit\n")
    assert NO_LLM_NOTICE not in first  # the console says it once, in its own words, at start
    assert first.count("No LLM is configured") == 1
    assert "not read after quit" not in first
    second = await _run(env, tmp_path, "What is my favourite colour?\n")  # ends with EOF, no /quit
    assert CONTEXT_BEGIN in second
    context = second.split(CONTEXT_BEGIN, 1)[1]
    assert "My favourite colour is teal." in context
    assert "What is my favourite colour?" in context


async def test_console_with_llm_sends_the_memory(bundled: Addresses, tmp_path: Path,
                                                 fake_llm: FakeLLM) -> None:
    env = _env(bundled, tmp_path / "data", fake_llm.base_url)
    user = f"console-{tmp_path.name[-12:].replace('_', '-')}"
    first = await _run(env, tmp_path, "I keep bees on my roof\n/remember my bees are Buckfast bees\n",
                       "--user", user)
    assert "ECHO: I keep bees on my roof" in first
    assert "Saved fact" in first
    fake_llm.reset("prompt")
    second = await _run(env, tmp_path, "what do I keep on my roof?\n/quit\n", "--user", user)
    messages = fake_llm.requests[-1]["messages"]
    system, turns = messages[0]["content"], [m["content"] for m in messages[1:-1]]
    assert "my bees are Buckfast bees" in system
    # the last exchange of this channel comes back as a chat turn (and so not again in the notes)
    assert "I keep bees on my roof" in turns and "I keep bees on my roof" not in system
    assert "my bees are Buckfast bees" in second  # the fake LLM echoed the prompt back to the terminal


# ---- the Discord commands in the console, driven in-process with scripted stdin ----------------------

async def _drive(memory: HierarchicalMemoryManager, tmp_path: Path, user: str, script: str) -> str:
    """Run the console loop on ``script`` as stdin; returns everything it printed."""
    screen = io.StringIO()
    out = Console(file=screen, width=400, soft_wrap=True, highlight=False, color_system=None)
    handler = ChatHandler(memory, None, bot_settings(None, tmp_path))
    assert await run_console(handler, user_id=user, stdin=io.StringIO(script), console=out) == 0
    return screen.getvalue()


async def test_help_lists_every_discord_command(memory: HierarchicalMemoryManager, tmp_path: Path,
                                                uid: str) -> None:
    printed = await _drive(memory, tmp_path, uid, "/help\n/memory\n/shout\n")
    for command in ("/memory show", "/memory search <query>", "/memory export", "/memory pause | resume",
                    "/forget all|here|last",
                    "/forget topic <topic>", "/remember <fact>", "/forget-fact <id>", "/memory profile",
                    "/memory timezone [zone]", "/quit"):
        assert f"\n  {command} " in printed
    assert ("Usage: /memory show | search <query> | export | pause | resume | timezone [zone|reset] | profile"
            " | forget\n") in printed
    assert "Unknown command /shout. /help lists the commands.\n" in printed


async def test_profile_shows_removes_and_replaces_lines_in_the_dm_scope(
        memory: HierarchicalMemoryManager, tmp_path: Path, uid: str) -> None:
    await memory.store_conversation(uid, "Hi, I'm Lena. I live in Graz and my cat Mochi says hi.",
                                    "Hello Lena and Mochi!", channel_id="console")
    await memory.store_conversation(uid, "I live in Linz", "Nice", guild_id="9001", channel_id="g")
    await memory.flush()
    printed = await _drive(memory, tmp_path, uid,
                           "/memory profile\n/memory profile replace home Lives in Vienna\n"
                           "/memory profile remove pets\n/memory profile remove shoes\n/memory profile replace home\n")
    shown, replaced, removed = printed.split("Your profile in your DMs with me:\n")[1:4]
    assert "name Name: Lena" in shown and "pets Pets: cat Mochi" in shown and "home Lives in Graz" in shown
    assert "home Lives in Vienna (your correction)" in replaced
    assert "Line pets removed." in replaced.splitlines()[-1] and "Mochi" not in removed
    assert "I can't do that: your profile has no line 'shoes'" in printed
    assert printed.endswith("Name the line (its key, e.g. home) and, to replace it, the new text.\nbye\n")
    assert [ln.key for ln in (await memory.user_profile(uid)).lines] == ["name", "home"]
    # the guild's profile is another scope: the console (DM scope) never touched it
    [linz] = (await memory.user_profile(uid, "9001")).lines
    assert linz.key == "home" and linz.text.startswith("Lives in Linz") and not linz.corrected


async def test_an_empty_profile_says_what_was_just_said_may_still_be_on_its_way(
        memory: HierarchicalMemoryManager, tmp_path: Path, uid: str) -> None:
    printed = await _drive(memory, tmp_path, uid, "/memory profile\n")
    assert "Your profile in your DMs with me:\nNothing yet: tell me about yourself" in printed
    assert "may still be on its way" in printed  # the worker reads a message a moment after it is said


async def test_show_and_search_print_what_the_slash_commands_show(
        memory: HierarchicalMemoryManager, tmp_path: Path, uid: str) -> None:
    await memory.store_conversation(uid, "I adopted a greyhound named Comet", "Lovely!", channel_id="console",
                                    timestamp=datetime.now(UTC) - timedelta(minutes=5))
    await memory.store_conversation(uid, "Comet  sleeps\n on my bed", "Of course", channel_id="console")
    await memory.store_conversation(uid, "I work night shifts", "Take care", guild_id="9001", channel_id="g")
    await memory.flush()  # the counts shown below are read after the derived tiers caught up
    printed = await _drive(memory, tmp_path, uid,
                           "/remember I grow tomatoes on my balcony\n/memory show\n/memory search greyhound\n")
    [fact] = await memory.facts(uid)
    assert f"Saved fact {fact.id}: I grow tomatoes on my balcony\n" in printed
    show = printed.split("What I remember about you in your DMs with me\n", 1)[1].split("Memories for", 1)[0]
    # one exchange a line, newest first; white space inside a message folded
    assert re.search(r"Recent exchanges:\n  \d{4}-\d\d-\d\d Comet sleeps on my bed\n"
                     r"  \d{4}-\d\d-\d\d I adopted a greyhound named Comet\n", show)
    assert f"Facts (/remember):\n  {fact.id} I grow tomatoes on my balcony\n" in show
    counts = await memory.counts(uid, dm=True)
    assert f"Stored per tier (-1: tier down):\n  archive 2 · cache 2 · summaries {counts['summaries']}" in show
    assert "night shifts" not in printed  # the guild's exchange stays out of the DM scope
    search = printed.split("Memories for “greyhound”\n", 1)[1]
    assert "I adopted a greyhound named Comet" in search
    assert re.search(r"Best matches \(score, sources\):\n  \d\.\d{3} \[[a-z, ]+\] I adopted a greyhound named Comet",
                     search)


async def test_export_writes_the_json_under_the_data_dir(memory: HierarchicalMemoryManager, tmp_path: Path,
                                                         uid: str) -> None:
    exchange_id = await memory.store_conversation(uid, "my bike is a green Brompton", "Nice", channel_id="console")
    printed = await _drive(memory, tmp_path, uid, "/memory export\n")
    match = re.search(r"is in (\S+\.json)\n", printed)
    assert match, printed
    path = Path(match.group(1))
    assert path.parent == memory.settings.data_dir / "exports"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["user_id"] == uid
    assert [(e["id"], e["user_message"]) for e in data["exchanges"]] == [(exchange_id,
                                                                         "my bike is a green Brompton")]

    # the export is a copy of what a forget erases: a cancelled forget keeps it, a confirmed one takes it
    someone_else = path.with_name("mnemo-export-someone-else-20261201T000000000000Z.json")
    someone_else.write_text("{}")
    printed = await _drive(memory, tmp_path, uid, "/forget topic Lisbon\n")
    assert "Nothing I remember in your DMs with me mentions “Lisbon”, so there is nothing to forget.\n" in printed
    printed = await _drive(memory, tmp_path, uid, "/forget topic Brompton\nn\n")
    assert "Forget our exchanges about “Brompton” in your DMs with me (1 exchange so far)? [y/N]" in printed
    assert path.exists() and "export file" not in printed
    printed = await _drive(memory, tmp_path, uid, "/forget topic Brompton\ny\n")
    assert f"Also deleted 1 export file of yours from {path.parent}, which held it.\n" in printed
    assert not path.exists() and someone_else.exists()


async def test_forget_asks_first_and_only_yes_forgets(memory: HierarchicalMemoryManager, tmp_path: Path,
                                                      uid: str) -> None:
    older = await memory.store_conversation(uid, "I live in Ghent", "Nice city", channel_id="console")
    newer = await memory.store_conversation(uid, "I moved to Leuven", "Congrats", channel_id="console")
    await memory.flush()
    printed = await _drive(memory, tmp_path, uid, "/forget last\nn\n/forget topic\n/forget last\n")
    assert printed.count("Forget our last exchange in your DMs with me? [y/N]\n") == 2
    assert printed.count("Cancelled: nothing was forgotten.\n") == 2  # "n", then end of input
    assert "Usage: /forget all | here | last | topic <topic>\n" in printed
    assert (await memory.counts(uid, dm=True))["archive"] == 2

    printed = await _drive(memory, tmp_path, uid, "/forget last\ny\n")
    assert re.search(r"Forgotten\. Removed per tier: archive 1 · cache \d+ · summaries 1 · graph \d+ · facts 0\n",
                     printed)
    left = await memory.export(uid)
    assert [e["id"] for e in left["exchanges"]] == [older]
    assert newer not in {s["exchange_id"] for s in left["summaries"]}

    # the one-time notice says "/memory forget" (Discord's name): the console takes that spelling too
    printed = await _drive(memory, tmp_path, uid, "/memory forget last\ny\n")
    assert "Forget our last exchange in your DMs with me? [y/N]\n" in printed
    assert (await memory.counts(uid, dm=True))["archive"] == 0


async def test_forget_fact_by_id(memory: HierarchicalMemoryManager, tmp_path: Path, uid: str) -> None:
    fact = await memory.remember_fact(uid, "I am left-handed")
    printed = await _drive(memory, tmp_path, uid, f"/forget-fact\n/forget-fact {fact.id}\n/forget-fact {fact.id}\n")
    assert "Usage: /forget-fact <id> (/memory show lists the ids)\n" in printed
    assert "Forgotten.\n" in printed
    assert f"I have no fact with id '{fact.id}'. /memory show lists them.\n" in printed
    assert await memory.facts(uid) == []


async def test_json_logs_carry_one_request_id_per_message_to_the_stored_exchange(
        bundled: Addresses, tmp_path: Path, fake_llm: FakeLLM) -> None:
    env = _env(bundled, tmp_path / "data", fake_llm.base_url)
    user = f"console-{tmp_path.name[-12:].replace('_', '-')}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console", "--user", user, "--log-level", "INFO", "--log-format", "json",
        cwd=tmp_path, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(b"my kayak is red\nmy tent is green\n"), 90)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "request_id", "message"} <= set(line) for line in lines)
    stored = [line for line in lines if line["message"].startswith("stored exchange")]
    assert len(stored) == 2 and stored[0]["request_id"] != stored[1]["request_id"]
    conn = await asyncpg.connect(bundled.postgres_dsn)
    try:
        rows = await conn.fetch("SELECT id, user_message, metadata FROM exchanges WHERE user_id = $1", user)
    finally:
        await conn.close()
    by_id = {r["id"]: (r["user_message"], json.loads(r["metadata"])["request_id"]) for r in rows}
    assert {by_id[line["exchange_id"]] for line in stored} == {
        ("my kayak is red", stored[0]["request_id"]), ("my tent is green", stored[1]["request_id"])}
    # the LLM request of each message was logged under that message's id too
    for line in stored:
        assert any(other["request_id"] == line["request_id"] and "chat/completions" in other["message"]
                   for other in lines)


async def test_timezone_shows_sets_and_resets_the_users_zone(memory: HierarchicalMemoryManager, tmp_path: Path,
                                                              uid: str) -> None:
    printed = await _drive(memory, tmp_path, uid, "/memory timezone\n/memory timezone Mars/Olympus\n"
                           "/memory timezone europe/berlin\nwhat did I say yesterday?\n/memory timezone\n")
    assert "I use UTC for you. Tell me your time zone (/memory timezone Europe/Berlin)" in printed
    assert 'I don\'t know a time zone called "Mars/Olympus". Use a name like Europe/Berlin' in printed
    assert "Your time zone is now Europe/Berlin (it's " in printed
    # without an LLM the reply is the prompt it would send: the model is told the user's time
    assert "where the user is (Europe/Berlin); the dates and times in your memories are in that time zone" in printed
    assert printed.count("Your time zone is Europe/Berlin (it's ") == 1
    assert await memory.time_zone(uid) == "Europe/Berlin"
    printed = await _drive(memory, tmp_path, uid, "/memory timezone reset\nand today?\n")
    assert "Back to UTC" in printed and "(UTC)." in printed
    assert await memory.time_zone(uid) is None


async def test_pause_stops_remembering_until_resume(memory: HierarchicalMemoryManager, tmp_path: Path,
                                                    uid: str) -> None:
    printed = await _drive(memory, tmp_path, uid, "/memory pause\n/memory pause\nmy locker code is 4411\n"
                           "/memory resume\n/memory resume\nmy bike lock is blue\n")
    assert "Paused: I won't remember anything new you say in your DMs with me." in printed
    assert "Already paused: I won't remember" in printed
    assert "Resumed: I remember our conversations in your DMs with me again.\n" in printed
    assert "I wasn't paused in your DMs with me: I remember our conversations here.\n" in printed
    exported = await memory.export(uid)
    assert [e["user_message"] for e in exported["exchanges"]] == ["my bike lock is blue"]
    assert printed.count("I remember our conversations in our DMs, so I can pick up where we left off.") == 1


async def test_leaving_takes_in_what_was_just_said_first(memory: HierarchicalMemoryManager, tmp_path: Path,
                                                         uid: str) -> None:
    # Said and quit at once: the profile used to be empty at the next start until the worker caught up.
    printed = await _drive(memory, tmp_path, uid, "Hi, I'm Noor and I'm allergic to latex.\n/quit\n")
    assert printed.endswith("bye\n")
    assert await memory.pending() == 0  # (the line "Taking in what you said" shows while it waits)
    profile = await memory.user_profile(uid)
    assert [ln.text for ln in profile.lines] == ["Name: Noor", "Allergic to: latex"]
    assert (await memory.counts(uid, dm=True))["summaries"] == 1


async def test_asking_in_chat_to_forget_asks_y_n_before_anything_goes(
        memory: HierarchicalMemoryManager, chat_llm: ChatLLM, fake_llm: FakeLLM, tmp_path: Path, uid: str) -> None:
    await memory.store_conversation(uid, "my ex is called Jordan", "Noted.", channel_id="console")
    await memory.store_conversation(uid, "I moved to Leuven", "Congrats", channel_id="console")
    call = {"tool_calls": [("forget_memories", '{"what": "topic", "topic": "Jordan"}')]}
    answer = {"content": "Press y and I'll forget Jordan."}

    async def chat(script: str) -> str:
        screen = io.StringIO()
        out = Console(file=screen, width=400, soft_wrap=True, highlight=False, color_system=None)
        handler = ChatHandler(memory, chat_llm, bot_settings(fake_llm, tmp_path, memory_notice=False))
        assert await run_console(handler, user_id=uid, stdin=io.StringIO(script), console=out) == 0
        return screen.getvalue()

    fake_llm.reset("script")
    fake_llm.script = [call, answer]
    printed = await chat("please forget everything about Jordan\nn\n")
    assert "Press y and I'll forget Jordan.\n" in printed
    assert ("Forget our exchanges about “Jordan” in your DMs with me (1 exchange so far)? [y/N]\n"
            "Cancelled: nothing was forgotten.\n") in printed
    assert len((await memory.export(uid))["exchanges"]) == 3

    fake_llm.reset("script")
    fake_llm.script = [call, answer]
    printed = await chat("forget Jordan\ny\n")
    assert "Forgotten. Removed per tier: archive 3" in printed  # both requests named Jordan too
    assert [e["user_message"] for e in (await memory.export(uid))["exchanges"]] == ["I moved to Leuven"]


async def test_a_message_of_several_lines_is_one_message(memory: HierarchicalMemoryManager, tmp_path: Path,
                                                         uid: str) -> None:
    # pasting code used to send each line as a message of its own
    script = ("why does this fail? ```py\ndef f(x):\n    return x +\n```\n"
              "my dog is called Biscuit \\\nand my cat Miso\n"
              "inline ```code``` stays one line\n"
              "```\nunclosed at the end")
    await _drive(memory, tmp_path, uid, script)
    said = [e["user_message"] for e in (await memory.export(uid))["exchanges"]]
    assert said == ["why does this fail? ```py\ndef f(x):\n    return x +\n```",
                    "my dog is called Biscuit \nand my cat Miso",
                    "inline ```code``` stays one line",
                    "```\nunclosed at the end"]
