"""``python -m memory stats`` lists active conversations; ``python -m memory retention`` runs retention now.

Both run as real subprocesses of the CLI, configured through the environment
like an operator would, against the session's servers and a database of this
module's own.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from memory import HierarchicalMemoryManager
from memory.launcher import Addresses
from tests.memory.conftest import ManagerFactory, settings_for

ROOT = Path(__file__).resolve().parents[2]


async def run_cli(addresses: Addresses, data_dir: Path, *args: str, **env: str) -> str:
    auth = addresses.neo4j_auth or ("neo4j", "")
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250", "MEMORY_DATA_DIR": str(data_dir),
               "REDIS__URL": addresses.redis_url, "POSTGRES__DSN": addresses.postgres_dsn,
               "NEO4J__URI": addresses.neo4j_uri, "NEO4J__USER": auth[0], "NEO4J__PASSWORD": auth[1],
               "NEO4J__DATABASE": addresses.neo4j_database or "", **env}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "memory", *args, cwd=str(data_dir),
                                                env=environ, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_stats_lists_active_conversations_and_retention_removes_old_ones(
        bundled: Addresses, own_postgres_dsn: str, make_manager: ManagerFactory, tmp_path: Path,
        uid: Callable[[str], str]) -> None:
    addresses = replace(bundled, postgres_dsn=own_postgres_dsn)
    memory: HierarchicalMemoryManager = await make_manager(settings_for(addresses, tmp_path / "lib"))
    talker, quiet = uid("talker"), uid("quiet")
    await memory.store_conversation(talker, "hello", "hi", guild_id="g-live", channel_id="c-live")
    await memory.store_conversation(talker, "hello again", "hi", guild_id="g-live", channel_id="c-live")
    await memory.store_conversation(quiet, "a chat from last spring", "ok", guild_id="g-live", channel_id="c-old",
                                    timestamp=datetime.now(UTC) - timedelta(days=200))

    stats = await run_cli(addresses, tmp_path, "stats")
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in stats.splitlines()
            if talker in line or quiet in line]
    assert [r[:4] for r in rows] == [[talker, "guild g-live", "c-live", "2"]]
    assert "1 active users in 1 channels; retention removed 0 exchanges in total" in stats

    report = await run_cli(addresses, tmp_path, "retention", MEMORY__RETENTION_DAYS="180")
    assert "retention removed 1 expired exchanges: archive 1 · " in report
    assert (await memory.counts(quiet))["archive"] == 0 and (await memory.counts(talker))["archive"] == 2
    assert "retention removed 1 exchanges in total" in await run_cli(addresses, tmp_path, "stats")
