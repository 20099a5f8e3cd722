"""Keep bundled servers running: notice an exit, restart with backoff, count it.

``Supervisor`` runs one asyncio task per server. Each polls its server's
process; when it has exited, it restarts it on the same address (the handle's
``restart``, in a thread) with exponential backoff until it is back, logs the
outage and counts the restart. The tier clients are not touched: redis-py,
asyncpg's pool and the neo4j driver each open a new connection on the next
call once the server answers again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

log = logging.getLogger(__name__)


class Supervised(Protocol):
    """What a bundled-server handle offers the supervisor (see ``memory.bundled``)."""

    def alive(self) -> bool: ...

    def restart(self) -> bool: ...

    def stop(self) -> None: ...


class Supervisor:
    """Watches ``servers`` (name -> handle) from ``start()`` until ``aclose()``.

    ``restarts`` counts, per server name, the restarts this process performed.
    ``stop(name)`` (blocking; call it in a thread) waits for a restart in flight,
    so a server is never started again after it was stopped.
    """

    def __init__(self, servers: Mapping[str, Supervised], *, poll_seconds: float = 0.5,
                 backoff_seconds: float = 0.5, max_backoff_seconds: float = 30.0) -> None:
        self.servers = dict(servers)
        self.poll_seconds = poll_seconds
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.restarts: dict[str, int] = dict.fromkeys(self.servers, 0)
        self._guards = {name: threading.Lock() for name in self.servers}
        self._stopped: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        # restarts block for seconds (a JVM starting): threads of their own, not the loop's default pool
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.servers)),
                                        thread_name_prefix="mnemo-supervisor")

    def start(self) -> None:
        for name in self.servers:
            self._tasks.append(asyncio.create_task(self._watch(name), name=f"mnemo-supervise-{name}"))

    async def aclose(self) -> None:
        """Stop watching (the servers keep running; stop them with ``stop``)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._pool.shutdown(wait=False)  # a restart in flight finishes; stop() waits for it

    def stop(self, name: str) -> None:
        with self._guards[name]:
            self._stopped.add(name)
            self.servers[name].stop()

    async def _watch(self, name: str) -> None:
        server = self.servers[name]
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                if server.alive():  # a look at /proc or a poll() of a child: microseconds
                    continue
            except Exception as exc:  # cannot tell: keep watching rather than restart a live server
                log.warning("bundled %s server: cannot check its process (%s)", name, exc)
                continue
            log.warning("bundled %s server exited; restarting it", name)
            down = time.monotonic()
            delay = self.backoff_seconds
            attempt = 0
            while True:
                attempt += 1
                try:
                    started = await asyncio.get_running_loop().run_in_executor(self._pool, self._restart, name)
                    break
                except Exception as exc:  # any failure to start is retried; the log says why
                    log.warning("bundled %s server: restart attempt %d failed (%s: %s); next in %.1fs",
                                name, attempt, type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)
            if started is None:
                return  # stopped meanwhile
            if started:
                self.restarts[name] += 1
            log.warning("bundled %s server is back after %.1fs (%s)", name, time.monotonic() - down,
                        "restarted" if started else "restarted by another process")

    def _restart(self, name: str) -> bool | None:
        with self._guards[name]:
            if name in self._stopped:
                return None
            return self.servers[name].restart()
