"""Bundled servers on real processes: restarted when killed, nothing left after a crash or a failed start."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from memory import ConfigurationError, HierarchicalMemoryManager, MemorySettings
from memory.cli import cmd_stats
from memory.errors import TierUnavailable
from memory.launcher import Addresses, EmbeddedServers
from memory.stack import open_tiers
from memory.tiers.archive import create_pool
from memory.tiers.cache import create_redis
from tests.memory.conftest import ManagerFactory

ROOT = Path(__file__).resolve().parents[2]
GENEROUS = {"cache_timeout_ms": 3000, "archive_timeout_ms": 3000, "summaries_timeout_ms": 3000,
            "graph_timeout_ms": 3000}

# Starts the bundled servers for the data directory in argv[1], prints their PIDs, then waits to be killed.
_STARTER = """
import asyncio, json, sys
from pathlib import Path
from memory.launcher import EmbeddedServers
from memory.settings import MemorySettings

async def main():
    launcher = EmbeddedServers(MemorySettings(data_dir=Path(sys.argv[1])))
    await launcher.start()
    print(json.dumps(launcher.server_pids()), flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def _env() -> dict[str, str]:
    """This environment without tier URLs, so the child bundles every server."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REDIS__", "POSTGRES__", "NEO4J__", "CHROMA__", "MEMORY_DATA_DIR"))}
    return dict(env, PYTHONPATH=str(ROOT))


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def server_processes(data_dir: Path) -> list[int]:
    """PIDs of live processes serving ``data_dir``: run from it (redis-server, PostgreSQL's
    backends) or naming it on their command line (postmaster, Bolt server)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline or (proc.info["cwd"] or "").startswith(str(data_dir)):
            found.append(proc.pid)
    return found


async def _until(check: Callable[[], object], what: str, timeout: float = 150.0) -> None:
    """Poll ``check`` (sync or async) until it is truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.5)
    pytest.fail(f"not within {timeout:.0f}s: {what}")



@pytest.mark.timeout(420)
async def test_killed_bundled_servers_come_back_and_are_counted(
        data_dir: Path, make_manager: ManagerFactory, uid: Callable[[str], str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL the bundled Redis, the Bolt server, then PostgreSQL: each comes back on its own."""
    memory = await make_manager(MemorySettings(data_dir=data_dir, retrieval=GENEROUS))
    assert memory.t.servers is not None
    user = uid("sup")
    first = await memory.store_conversation(user, "My sister Alma lives in Porto.", "Nice city!")
    await memory.flush(timeout=60)

    for tier in ("cache", "graph", "archive"):
        old = memory.t.servers.server_pids()[tier]
        os.kill(old, signal.SIGKILL)

        async def recovered(tier: str = tier, old: int = old) -> bool:
            ctx = await memory.get_conversation_context(user, "where does my sister live?")
            try:
                stats = await memory.stats()
            except TierUnavailable:  # the stats read the outbox in PostgreSQL: while it is down, not back yet
                return False
            return (ctx.tiers[tier].status == "ok" and stats.restarts.get(tier) == 1
                    and stats.tiers[tier].ok and memory.t.servers is not None
                    and memory.t.servers.server_pids().get(tier) not in (None, old))

        await _until(recovered, f"the {tier} server back and counted")
        assert not _alive(old)

    stats = await memory.stats()
    assert stats.restarts == {"cache": 1, "archive": 1, "graph": 1}
    capsys.readouterr()
    assert await cmd_stats(argparse.Namespace(), memory) == 0
    assert "restarts of bundled servers: archive 1, cache 1, graph 1" in capsys.readouterr().out
    # the restarted servers serve the write path and the derived tiers again
    second = await memory.store_conversation(user, "Alma is a marine biologist.", "Fascinating.")
    await memory.flush(timeout=120)
    assert {e["id"] for e in (await memory.export(user))["exchanges"]} == {first, second}
    counts = await memory.counts(user)
    assert counts["archive"] == 2 and counts["summaries"] == 2 and counts["graph"] > 0
    ctx = await memory.get_conversation_context(user, "what does Alma do?")
    assert ctx.degraded == [] and "marine biologist" in ctx.to_context_string()


@pytest.mark.timeout(420)
async def test_start_after_a_crash_adopts_the_leftovers_and_a_clean_close_stops_everything(
        data_dir: Path) -> None:
    """A process that started the bundled servers is SIGKILLed; the next start in the same
    data directory takes over, and its clean close leaves no server running and no stale PID."""
    child = subprocess.Popen([sys.executable, "-c", _STARTER, str(data_dir)], cwd=ROOT, env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert child.stdout is not None
        line = await asyncio.to_thread(child.stdout.readline)
        crashed: dict[str, int] = json.loads(line)
        assert set(crashed) == {"cache", "archive", "graph"}
        assert set(crashed.values()) <= set(server_processes(data_dir))  # the probe sees the servers
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    # what the crash leaves: redis-server and PostgreSQL run on, the dead PID is a holder of PostgreSQL
    assert _alive(crashed["cache"]) and _alive(crashed["archive"])
    assert child.pid in json.loads((data_dir / "postgres" / ".handle_pids.json").read_text())
    redis_registry = data_dir / "redis" / "cache.rdb.settings"
    crashed_redis_folder = Path(json.loads(redis_registry.read_text())["pidfile"]).parent

    launcher = EmbeddedServers(MemorySettings(data_dir=data_dir))
    addresses = await launcher.start()
    try:
        assert json.loads((data_dir / "postgres" / ".handle_pids.json").read_text()) == [os.getpid()]
        redis = await create_redis(addresses.redis_url)
        await redis.set("mnemo:probe", "1")
        await redis.aclose()
        pool = await create_pool(addresses.postgres_dsn)
        assert await pool.fetchval("SELECT 41 + 1") == 42
        await pool.close()
        now = launcher.server_pids()
        assert now["cache"] == crashed["cache"] and now["archive"] == crashed["archive"]  # adopted
        assert now["graph"] != crashed["graph"] and not _alive(crashed["graph"])  # died with its owner
    finally:
        await launcher.aclose()

    assert [pid for pid in (*crashed.values(), *now.values()) if _alive(pid)] == []
    assert server_processes(data_dir) == []
    assert json.loads((data_dir / "postgres" / ".handle_pids.json").read_text()) == []
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert not (data_dir / "graph" / "server.json").exists()
    assert not redis_registry.exists() and not crashed_redis_folder.exists()


def _ran_and_stopped(data_dir: Path) -> None:
    """The bundled Redis and PostgreSQL did run in ``data_dir``, and no server process is left."""
    assert "ready to accept connections" in (data_dir / "postgres" / "log").read_text()
    assert (data_dir / "redis" / "cache.rdb").exists()  # written by redis-server as it stopped
    assert server_processes(data_dir) == []
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
    assert not (data_dir / "redis" / "cache.rdb.settings").exists()


@pytest.mark.timeout(300)
async def test_a_failed_open_stops_the_bundled_servers_it_started(data_dir: Path) -> None:
    """A bad Chroma URL fails the start after Redis and PostgreSQL came up (the graph is never reached)."""
    settings = MemorySettings(data_dir=data_dir, chroma={"url": "ftp://not-a-chroma"},
                              neo4j={"uri": "bolt://127.0.0.1:9"})
    with pytest.raises(ConfigurationError, match=r"chroma\.url"):
        await open_tiers(settings)
    _ran_and_stopped(data_dir)


@pytest.mark.timeout(300)
async def test_a_failed_manager_start_stops_the_bundled_servers_it_started(
        data_dir: Path, bundled: Addresses, tmp_path: Path) -> None:
    """The embedding model cannot be built (its cache folder is under a file): the manager fails
    to start after the tiers opened, and takes the bundled Redis and PostgreSQL down with it."""
    (tmp_path / "a-file").write_text("")
    auth = bundled.neo4j_auth or ("", "")
    settings = MemorySettings(data_dir=data_dir, retrieval=GENEROUS,
                              neo4j={"uri": bundled.neo4j_uri, "user": auth[0], "password": auth[1],
                                     "database": bundled.neo4j_database},
                              embedding={"model_cache_dir": tmp_path / "a-file" / "models"})
    with pytest.raises(ConfigurationError, match="model_cache_dir"):
        await HierarchicalMemoryManager.create(settings)
    _ran_and_stopped(data_dir)
