"""The memory CLI run as a user runs it: ``python -m memory ...`` subprocesses on real servers.

Every tier is pointed at the session's servers through the environment
(REDIS__URL, POSTGRES__DSN with a database of the test's own, CHROMA__URL,
NEO4J__*), so nothing is launched and nothing is written into the checkout:
the subprocess runs in ``tmp_path`` with the worktree on PYTHONPATH. The test
checks what the command did through a manager of its own on the same servers.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memory import HierarchicalMemoryManager
from memory.launcher import Addresses
from memory.models import ForgetTarget
from tests.memory.conftest import ManagerFactory, settings_for

ROOT = Path(__file__).resolve().parents[2]


class Cli:
    """Runs ``python -m memory`` against fixed servers; returns (exit code, stdout, stderr)."""

    def __init__(self, addresses: Addresses, workdir: Path) -> None:
        auth = addresses.neo4j_auth or ("neo4j", "")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("REDIS__", "POSTGRES__", "CHROMA__", "NEO4J__", "MEMORY_", "WORKER__"))}
        env.update({
            "PYTHONPATH": str(ROOT), "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb",
            "MEMORY_DATA_DIR": str(workdir / "data"), "REDIS__URL": addresses.redis_url,
            "POSTGRES__DSN": addresses.postgres_dsn, "CHROMA__URL": addresses.chroma_url or "",
            "NEO4J__URI": addresses.neo4j_uri, "NEO4J__USER": auth[0], "NEO4J__PASSWORD": auth[1],
            "NEO4J__DATABASE": addresses.neo4j_database or "",
        })
        self.env = env
        self.workdir = workdir

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        def run() -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "memory", *args], env=self.env, cwd=self.workdir,
                                  capture_output=True, text=True, timeout=300)

        done = await asyncio.to_thread(run)
        return done.returncode, done.stdout, done.stderr


@pytest.fixture
def addresses(bundled: Addresses, own_postgres_dsn: str, chroma_http_url: str) -> Addresses:
    # Chroma over HTTP: the CLI process and the test's manager use it at the same time
    return replace(bundled, postgres_dsn=own_postgres_dsn, chroma_url=chroma_http_url, chroma_path=None)


@pytest.fixture
def cli(addresses: Addresses, tmp_path: Path) -> Cli:
    return Cli(addresses, tmp_path)


@pytest.fixture
async def memory(addresses: Addresses, make_manager: ManagerFactory, tmp_path: Path) -> HierarchicalMemoryManager:
    return await make_manager(settings_for(addresses, tmp_path / "verify"))


def _jsonl(rows: list[object]) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"


async def test_import_stores_good_lines_reports_bad_ones_and_exits_2(
        cli: Cli, memory: HierarchicalMemoryManager, tmp_path: Path, uid: Callable[[str], str]) -> None:
    ana, bo = uid("ana"), uid("bo")
    good = [
        {"user_id": ana, "user_message": "My cat Miso hates the vacuum.", "bot_response": "Poor Miso!",
         "timestamp": "2024-02-03T10:00:00Z", "id": "imp-1", "metadata": {"source": "test"}},
        {"user_id": ana, "user_message": "I work as a welder in Gdansk.", "bot_response": "Hot work.",
         "timestamp": 1_710_000_000, "guild_id": "g1", "channel_id": "c9"},
        {"user_id": bo, "user_message": "Learning the cello.", "bot_response": "Lovely instrument."},
    ]
    bad = [
        "{not json",                                                         # line 2
        json.dumps(["a", "list"]),                                           # line 4
        json.dumps({"user_id": ana, "user_message": "no answer"}),           # line 5
        json.dumps({"user_id": ana, "user_message": "x", "bot_response": "y", "timestamp": "yesterday"}),
        json.dumps({"user_id": ana, "user_message": "nul \u0000 here", "bot_response": "y"}),
        json.dumps({"user_id": "not valid!", "user_message": "x", "bot_response": "y"}),
    ]
    lines = [good[0], bad[0], "", bad[1], bad[2], good[1], bad[3], bad[4], bad[5], good[2]]
    path = tmp_path / "history.jsonl"
    path.write_text(_jsonl(lines), encoding="utf-8")

    code, out, err = await cli("import", str(path))

    assert code == 2, err
    assert "imported 3 exchanges, skipped 6 lines" in out
    for expected in ("line 2: not JSON", "line 4: expected an object", "line 5: missing bot_response",
                     "line 7: bad timestamp 'yesterday'", "user_message: contains a NUL byte",
                     "user_id: must be 1-100 characters"):
        assert expected in err
    exported = (await memory.export(ana))["exchanges"]
    assert [(e["user_message"], e["guild_id"], e["channel_id"]) for e in exported] == [
        ("My cat Miso hates the vacuum.", None, None), ("I work as a welder in Gdansk.", "g1", "c9")]
    assert exported[0]["id"] == "imp-1" and exported[0]["metadata"] == {"source": "test"}
    assert datetime.fromisoformat(exported[0]["timestamp"]) == datetime(2024, 2, 3, 10, 0, tzinfo=UTC)
    assert datetime.fromisoformat(exported[1]["timestamp"]) == datetime.fromtimestamp(1_710_000_000, UTC)
    # the import drained the derived work before it returned
    assert await memory.pending() == 0
    assert (await memory.counts(ana))["summaries"] == 2 and (await memory.counts(bo))["summaries"] == 1

    clean = tmp_path / "clean.jsonl"
    clean.write_text(_jsonl([{"user_id": bo, "user_message": "Bach suites next.", "bot_response": "Ambitious!"}]))
    code, out, _ = await cli("import", str(clean))
    assert code == 0 and "imported 1 exchanges, skipped 0 lines" in out
    assert (await memory.counts(bo))["archive"] == 2


async def test_export_to_a_file_round_trips_through_import(
        cli: Cli, memory: HierarchicalMemoryManager, tmp_path: Path, uid: Callable[[str], str]) -> None:
    user = uid("round")
    await memory.store_conversation(user, "My sister Ines lives in Porto.", "Porto is lovely.",
                                    timestamp=datetime(2024, 5, 1, 9, 30, tzinfo=UTC), metadata={"k": [1, 2]})
    await memory.store_conversation(user, "Ünïcödé 🧠 and 'quotes' \"too\"", "ok", guild_id="g2",
                                    channel_id="c1", timestamp=datetime(2024, 5, 2, 9, 30, tzinfo=UTC))
    await memory.remember_fact(user, "Vegetarian")
    await memory.flush()
    out_file = tmp_path / "export.json"

    code, out, err = await cli("export", user, "--out", str(out_file))

    assert code == 0 and f"wrote {out_file}" in err and out == ""
    data = json.loads(out_file.read_text(encoding="utf-8"))
    expected = await memory.export(user)
    for key in ("user_id", "exchanges", "facts", "usage", "summaries", "graph"):
        assert data[key] == expected[key], key
    assert [f["text"] for f in data["facts"]] == ["Vegetarian"]

    # forget the user, then import the exported exchanges: the same exchanges come back
    await memory.forget(user)
    assert (await memory.counts(user))["archive"] == 0
    back = tmp_path / "back.jsonl"
    back.write_text(_jsonl(data["exchanges"]), encoding="utf-8")
    code, out, _ = await cli("import", str(back))
    assert code == 0 and "imported 2 exchanges, skipped 0 lines" in out
    assert (await memory.export(user))["exchanges"] == data["exchanges"]


async def _seed_scopes(memory: HierarchicalMemoryManager, user: str) -> dict[str, str]:
    ids = {
        "dm-dog": await memory.store_conversation(user, "My beagle Biscuit loves carrots.", "Cute!",
                                                  timestamp=datetime(2024, 1, 1, tzinfo=UTC)),
        "dm-job": await memory.store_conversation(user, "I started a job at a bakery.", "Congrats!",
                                                  timestamp=datetime(2024, 1, 2, tzinfo=UTC)),
        "g1-game": await memory.store_conversation(user, "Chess club every Tuesday.", "Nice.", guild_id="g1",
                                                   timestamp=datetime(2024, 1, 3, tzinfo=UTC)),
        "g1-dog": await memory.store_conversation(user, "Biscuit chewed my chess board.", "Oh no.",
                                                  guild_id="g1", timestamp=datetime(2024, 1, 4, tzinfo=UTC)),
        "g2-music": await memory.store_conversation(user, "I sing in a choir.", "Lovely.", guild_id="g2",
                                                    timestamp=datetime(2024, 1, 5, tzinfo=UTC)),
    }
    await memory.flush()
    return ids


async def _left(memory: HierarchicalMemoryManager, user: str) -> set[str]:
    return {e["id"] for e in (await memory.export(user))["exchanges"]}


async def test_forget_flags_narrow_what_is_forgotten_and_conflicts_are_refused(
        cli: Cli, memory: HierarchicalMemoryManager, uid: Callable[[str], str]) -> None:
    user, other = uid("forgetful"), uid("bystander")
    ids = await _seed_scopes(memory, user)
    await memory.store_conversation(other, "Biscuit is my dog too.", "Two Biscuits!")
    await memory.flush()

    for conflicting in (["--guild", "g1", "--dm"], ["--last", "--topic", "chess"],
                        ["--exchange", ids["dm-dog"], "--last"]):
        code, _, err = await cli("forget", user, *conflicting)
        assert code == 2 and "not allowed with argument" in err
    assert await _left(memory, user) == set(ids.values())

    code, out, _ = await cli("forget", user, "--dm", "--last")
    assert code == 0 and f"forgot for {user}" in out
    assert await _left(memory, user) == set(ids.values()) - {ids["dm-job"]}

    code, _, _ = await cli("forget", user, "--topic", "Biscuit")  # every scope
    assert code == 0
    assert await _left(memory, user) == {ids["g1-game"], ids["g2-music"]}
    assert (await memory.counts(other))["archive"] == 1  # another user's Biscuit stays

    code, _, _ = await cli("forget", user, "--exchange", ids["g2-music"])
    assert code == 0 and await _left(memory, user) == {ids["g1-game"]}

    code, _, _ = await cli("forget", user, "--guild", "g1")
    assert code == 0
    assert await memory.counts(user) == {"archive": 0, "cache": 0, "summaries": 0, "graph": 0, "facts": 0}
    assert (await memory.counts(other))["archive"] == 1

    code, _, err = await cli("forget", "bad user!")
    assert code == 1 and "error: user_id: must be 1-100 characters" in err


async def test_rebuild_stats_and_context(cli: Cli, memory: HierarchicalMemoryManager,
                                         uid: Callable[[str], str]) -> None:
    user = uid("cli")
    await _seed_scopes(memory, user)
    before = await memory.counts(user)
    for tier in (memory.cache, memory.summaries, memory.graph):
        await tier.forget(ForgetTarget(user))
    emptied = await memory.counts(user)
    assert (emptied["summaries"], emptied["graph"]) == (0, 0)

    code, out, _ = await cli("rebuild", "--user", user)
    assert code == 0 and "rebuilt cache, summaries and graph from 5 archived exchanges" in out
    after = await memory.counts(user)
    assert (after["archive"], after["summaries"], after["graph"]) == (5, 5, before["graph"])

    code, out, _ = await cli("stats")
    assert code == 0
    assert "exchanges 5, users 1, pending derived work 0, queued forgets 0, tokens 0+0" in out
    rows = [line.replace("│", " ").split() for line in out.splitlines()]
    for name in ("cache", "archive", "summaries", "graph"):
        assert any(row[:2] == [name, "yes"] for row in rows), (name, out)

    code, out, _ = await cli("context", user, "what is my dog called?", "--max-tokens", "300")
    assert code == 0
    assert "Biscuit loves carrots" in out and "[2024-01-01]" in out
    assert "Chess club" not in out  # the guild's exchanges are another scope
    code, out, _ = await cli("context", user, "which club do I go to?", "--guild", "g1")
    assert code == 0 and "Chess club every Tuesday" in out and "bakery" not in out
