"""Real servers for the test suite, started once per session on free ports.

System servers: Debian's ``redis-server`` and PostgreSQL 15 (``initdb``/``pg_ctl``
as the ``postgres`` OS user when run as root), and ``chroma run`` for Chroma's
HTTP mode. Bundled servers come from ``memory.launcher`` exactly as users get
them. Every helper returns an address and a stop function.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memory.bundled import BoltServerProcess
from memory.launcher import free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def have_system_redis() -> bool:
    return shutil.which("redis-server") is not None


def have_system_postgres() -> bool:
    return (PG_BIN / "initdb").exists()


def start_system_redis(port: int | None = None) -> tuple[str, Callable[[], None]]:
    port = port or free_port()
    d = tempfile.mkdtemp(prefix="mnemo-redis-")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, 20)

    def stop() -> None:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)

    return f"redis://127.0.0.1:{port}/0", stop


def system_redis() -> Iterator[str]:
    """A fixture body: a Debian redis-server on a free port while the generator lives; skips without one."""
    if not have_system_redis():
        pytest.skip("redis-server is not installed (.ci/run installs Debian's redis-server)")
    url, stop = start_system_redis()
    try:
        yield url
    finally:
        stop()


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start_system_postgres(port: int | None = None) -> tuple[str, Callable[[], None]]:
    port = port or free_port()
    d = Path(tempfile.mkdtemp(prefix="mnemo-pg-"))
    data = d / "data"
    if os.geteuid() == 0:
        shutil.chown(d, "postgres", "postgres")
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                                 "--encoding=UTF8", "--no-sync"]), check=True, capture_output=True)
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(d / "log"), "-w",
                                 "-o", f"-p {port} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off "
                                       "-c max_connections=200", "start"]), check=True, capture_output=True)

    def stop() -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(d, ignore_errors=True)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


def start_chroma_server(port: int | None = None, path: Path | None = None) -> tuple[str, Callable[[], None]]:
    """A ``chroma run`` server; its data is deleted on stop unless ``path`` (kept, for restarts) is given."""
    port = port or free_port()
    d = str(path) if path is not None else tempfile.mkdtemp(prefix="mnemo-chroma-")
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen([str(chroma), "run", "--path", d, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_port(port, 60)

    def stop() -> None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        if path is None:
            shutil.rmtree(d, ignore_errors=True)

    return f"http://127.0.0.1:{port}", stop


async def create_database(dsn: str) -> str:
    """Create a fresh database on the server of ``dsn`` and return its DSN.

    Each test manager gets its own database so no other manager's in-process
    worker can claim its outbox rows (they would land in another Chroma).
    """
    import uuid

    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, query = dsn.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


class OwnBolt:
    """A Bolt graph server of one test's own, which the test may stop and start again (same data
    directory and port, so a driver finds it again)."""

    def __init__(self, root: Path) -> None:
        self.server = BoltServerProcess(root, port=free_port())

    @property
    def addresses(self) -> dict[str, Any]:
        """The ``Addresses`` fields that point the graph tier at this server."""
        return {"neo4j_uri": f"bolt://127.0.0.1:{self.server.port}", "neo4j_auth": ("root", self.server.password),
                "neo4j_database": "memory"}

    async def start(self) -> None:
        await asyncio.to_thread(self.server.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.stop)
