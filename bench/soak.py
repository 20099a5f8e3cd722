"""Soak: the whole message flow for many users while every bundled server is killed in turn.

    python -m bench.soak [--users 50] [--min-messages 8] [--max-messages 40] [--max-seconds 600]

On loopback only: bundled Redis, PostgreSQL and Bolt server (started and
supervised by the launcher, as in production), a ``chroma run`` server (a
separate worker process shares it), a fake OpenAI-compatible chat endpoint
(``bench.fake_chat``), and a separate ``python -m memory worker`` process.

Simulated users send messages through ``bot.chat.ChatHandler`` (rate limit,
context, LLM, store), each pausing ``--think-ms`` on average. Meanwhile each
bundled server is SIGKILLed in turn (Redis, PostgreSQL, Bolt), waiting each
time until it answers again; then the worker process is SIGKILLed and
restarted. Each user sends at least ``--min-messages`` and goes on until the
chaos is over, at most ``--max-messages`` and ``--max-seconds`` in all. Then
the queue is flushed and audited: every acknowledged exchange must be in the
archive once (lost, duplicated), with its summary in Chroma and its node in
the graph (missing). Prints one JSON object; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, emit, progress, summary_ms
from bench.fake_chat import FakeChatServer

PLACES = ["Porto", "Leeds", "Osaka", "Quito", "Tartu", "Perth", "Accra", "Bergen", "Cusco", "Hanoi"]
PEOPLE = ["sister Alma", "friend Bruno", "cousin Chidi", "neighbour Dana", "colleague Emeka", "uncle Farid"]
HOBBIES = ["bouldering", "sourdough baking", "chess", "birdwatching", "pottery", "trail running"]
CHAOS = ("cache", "archive", "graph")  # the bundled servers, killed in this order


@dataclass
class Tally:
    """What the simulated users saw."""

    messages: int = 0
    replies: int = 0
    acknowledged: dict[str, str] = field(default_factory=dict)  # exchange id -> user id
    failed: Counter[str] = field(default_factory=Counter)
    degraded: Counter[str] = field(default_factory=Counter)
    reply_ms: list[float] = field(default_factory=list)


def message(user: int, n: int, rng: random.Random) -> str:
    templates = [
        f"My {rng.choice(PEOPLE)} just moved to {rng.choice(PLACES)}.",
        f"I spent the weekend on {rng.choice(HOBBIES)} again.",
        f"Do you remember where my {rng.choice(PEOPLE)} lives?",
        f"I am planning a trip to {rng.choice(PLACES)} for {rng.choice(HOBBIES)}.",
    ]
    return f"[{user}:{n}] {rng.choice(templates)}"  # the prefix makes every text unique, to count duplicates


def user_id(i: int) -> str:
    return f"soak-u{i:03d}"


async def user_loop(i: int, handler: Any, args: argparse.Namespace, chaos_done: asyncio.Event,
                    deadline: float, tally: Tally) -> None:
    from bot.chat import IncomingMessage

    rng = random.Random(f"soak:{args.seed}:{i}")
    guild = None if i % 2 == 0 else "soak-g1"
    channel = f"dm-{i}" if guild is None else f"c{i % 3}"
    n = 0
    await asyncio.sleep(rng.random() * args.think_ms / 1000)  # users do not all start at once
    while n < args.max_messages and time.monotonic() < deadline and (n < args.min_messages
                                                                      or not chaos_done.is_set()):
        n += 1
        tally.messages += 1
        start = time.perf_counter()
        try:
            reply = await handler.handle(IncomingMessage(user_id(i), message(i, n, rng), guild, channel))
        except Exception as exc:  # counted: the soak reports every way a message can fail
            tally.failed[f"exception: {type(exc).__name__}"] += 1
            reply = None
        else:
            tally.reply_ms.append((time.perf_counter() - start) * 1000)
            if reply is None:
                tally.failed["silenced (rate limited)"] += 1
            else:
                tally.replies += 1
                tally.degraded.update(reply.degraded)
                if reply.kind != "answer":
                    tally.failed[reply.kind] += 1
                elif reply.exchange_id is None:
                    tally.failed["answered, not stored (archive down)"] += 1
                else:
                    tally.acknowledged[reply.exchange_id] = user_id(i)
        await asyncio.sleep(args.think_ms / 1000 * (0.5 + rng.random()))


class WorkerProcess:
    """``python -m memory worker`` on the given servers, in its own process."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = cwd / "worker.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "memory", "worker"], env=self.env, cwd=self.cwd,
                                         stdout=subprocess.DEVNULL, stderr=log)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


def worker_env(addresses: Any, data_dir: Path, lease_seconds: float) -> dict[str, str]:
    """The worker process gets the soak's servers as configured URLs (it starts no server of its own)."""
    auth = addresses.neo4j_auth or ("", "")
    env = {k: v for k, v in os.environ.items() if "__" not in k and k != "MEMORY_DATA_DIR"}
    return dict(env, PYTHONPATH=str(ROOT), MEMORY_DATA_DIR=str(data_dir / "worker"),
                WORKER__LEASE_SECONDS=str(lease_seconds),
                REDIS__URL=addresses.redis_url, POSTGRES__DSN=addresses.postgres_dsn,
                CHROMA__URL=addresses.chroma_url, NEO4J__URI=addresses.neo4j_uri, NEO4J__USER=auth[0],
                NEO4J__PASSWORD=auth[1], NEO4J__DATABASE=addresses.neo4j_database or "")


def start_chroma(path: Path, port: int) -> subprocess.Popen[bytes]:
    chroma = Path(sys.executable).with_name("chroma")
    env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
    return subprocess.Popen([str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


async def wait_port(port: int, timeout: float) -> None:
    from memory.bundled import port_open

    deadline = time.monotonic() + timeout
    while not port_open(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {port} after {timeout:.0f}s")
        await asyncio.sleep(0.2)


async def recovered(memory: Any, tier: str, restarts_before: int, timeout: float) -> float | None:
    """Seconds until ``tier`` answers a ping again after a restart by the supervisor; None if not in time."""
    from memory.stack import tier_health

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        health = await tier_health(memory.t)
        if health[tier].ok and memory.t.servers.restarts.get(tier, 0) > restarts_before:
            return round(time.monotonic() - start, 2)
        await asyncio.sleep(0.2)
    return None


async def chaos(memory: Any, worker: WorkerProcess, args: argparse.Namespace, done: asyncio.Event,
                report: dict[str, Any]) -> None:
    """Kill each bundled server in turn, then the worker process; record the time each takes to recover."""
    try:
        await asyncio.sleep(args.warmup_seconds)
        for tier in CHAOS:
            pid = memory.t.servers.server_pids()[tier]
            before = memory.t.servers.restarts.get(tier, 0)
            progress(f"SIGKILL {tier} server (pid {pid})")
            os.kill(pid, signal.SIGKILL)
            report[tier] = await recovered(memory, tier, before, args.recover_timeout)
            progress(f"{tier} back after {report[tier]}s")
            await asyncio.sleep(args.settle_seconds)
        progress("SIGKILL worker process")
        pending_at_kill = await memory.pending()
        await asyncio.to_thread(worker.kill)
        await asyncio.sleep(args.settle_seconds)
        worker.start()
        restarted = time.monotonic()
        while await memory.pending() > 0 and time.monotonic() - restarted < args.recover_timeout:  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # another process's progress, seen through the archive
        report["worker"] = {"pending_at_kill": pending_at_kill, "down_seconds": args.settle_seconds,
                            "drained_after_restart_seconds": round(time.monotonic() - restarted, 2)}
        progress(f"worker restarted: {report['worker']}")
    finally:
        done.set()


async def audit(memory: Any, tally: Tally, users: Sequence[str]) -> dict[str, Any]:
    """Compare what users were told was stored with what every tier holds."""
    archived: dict[str, str] = {}  # id -> user message
    for user in users:
        for e in (await memory.export(user))["exchanges"]:
            archived[e["id"]] = e["user_message"]
    texts = Counter(archived.values())
    summarised: set[str] = set()
    for user in users:
        summarised |= {r.exchange_id for r in await memory.summaries.records(user)}
    ids = sorted(archived)
    in_graph: set[str] = set()
    for k in range(0, len(ids), 500):
        in_graph |= await memory.graph.existing(ids[k:k + 500])
    return {
        "archived": len(archived),
        "lost": len(set(tally.acknowledged) - set(archived)),
        "duplicated": sum(n - 1 for n in texts.values() if n > 1),
        "stored_but_not_acknowledged": len(set(archived) - set(tally.acknowledged)),
        "missing_after_recovery": {"summaries": len(set(ids) - summarised), "graph": len(set(ids) - in_graph)},
    }


def leftover_servers(data_dir: Path) -> int:
    """Server processes still running for ``data_dir`` (must be 0 after a clean close)."""
    import psutil

    count = 0
    for proc in psutil.process_iter(["cmdline", "cwd", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if str(data_dir) in " ".join(proc.info["cmdline"] or []) or (proc.info["cwd"] or "").startswith(
                str(data_dir)):
            count += 1
    return count


def soak_settings(data_dir: Path, chroma_url: str, llm_url: str, args: argparse.Namespace) -> Any:
    from bot.settings import BotSettings

    timeout = args.tier_timeout_ms
    return BotSettings(  # explicit: bundled servers whatever the environment says, since they get killed
        _env_file=None, data_dir=data_dir, redis={"url": None}, postgres={"dsn": None}, neo4j={"uri": None},
        chroma={"url": chroma_url}, llm={"base_url": llm_url, "timeout_seconds": 30},
        worker={"in_process": False},
        retrieval={"cache_timeout_ms": timeout, "archive_timeout_ms": timeout, "summaries_timeout_ms": timeout,
                   "graph_timeout_ms": timeout},
        bot={"rate_limit_per_user": 100_000, "rate_limit_global": 1_000_000, "remember_tool": False})


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bot.chat import ChatHandler
    from bot.llm import ChatLLM
    from memory.bundled import free_port
    from memory.manager import HierarchicalMemoryManager

    started = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix="mnemo-soak-"))
    chroma_port = free_port()
    chroma = start_chroma(data_dir / "chroma-server", chroma_port)
    worker: WorkerProcess | None = None
    memory: HierarchicalMemoryManager | None = None
    report: dict[str, Any] = {}
    tally = Tally()
    users = [user_id(i) for i in range(args.users)]
    try:
        await wait_port(chroma_port, 120)
        async with FakeChatServer() as llm_server:
            settings = soak_settings(data_dir, f"http://127.0.0.1:{chroma_port}", llm_server.base_url, args)
            progress(f"starting the bundled servers in {data_dir} ...")
            memory = await HierarchicalMemoryManager.create(settings)
            (data_dir / "worker").mkdir()
            worker = WorkerProcess(worker_env(memory.t.addresses, data_dir, args.lease_seconds),
                                   data_dir / "worker")
            worker.start()
            async with ChatLLM(settings.llm) as llm:
                handler = ChatHandler(memory, llm, settings)
                done = asyncio.Event()
                deadline = time.monotonic() + args.max_seconds
                progress(f"{args.users} users talking; killing servers after {args.warmup_seconds:.0f}s")
                load_start = time.monotonic()
                await asyncio.gather(chaos(memory, worker, args, done, report),
                                     *(user_loop(i, handler, args, done, deadline, tally)
                                       for i in range(args.users)))
                load_seconds = time.monotonic() - load_start
            progress("flushing the derived tiers ...")
            await memory.flush(timeout=args.recover_timeout)
            result = await audit(memory, tally, users)
            stats = await memory.stats()
    finally:
        if worker is not None:
            await asyncio.to_thread(worker.stop)
        if memory is not None:
            await memory.aclose()
        chroma.terminate()
        chroma.wait(30)
    left = leftover_servers(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "users": args.users,
        "messages": tally.messages,
        "replies": tally.replies,
        "acknowledged": len(tally.acknowledged),
        **result,
        "failed_replies": dict(tally.failed.most_common()),
        "degraded_replies_by_tier": dict(tally.degraded.most_common()),
        "recover_seconds": {tier: report.get(tier) for tier in CHAOS},
        "worker_kill": report.get("worker"),
        "restarts": stats.restarts,
        "reply_ms": summary_ms(tally.reply_ms),
        "load_seconds": round(load_seconds, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "servers_left_running": left,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--min-messages", type=int, default=8, help="per user, whether or not the chaos is over")
    p.add_argument("--max-messages", type=int, default=40, help="per user, at most")
    p.add_argument("--max-seconds", type=float, default=600.0, help="the load stops after this, chaos or not")
    p.add_argument("--think-ms", type=float, default=1500.0, help="mean pause between a user's messages")
    p.add_argument("--warmup-seconds", type=float, default=10.0, help="normal load before the first kill")
    p.add_argument("--settle-seconds", type=float, default=5.0, help="normal load between kills")
    p.add_argument("--recover-timeout", type=float, default=300.0, help="longest wait for a server or a flush")
    p.add_argument("--tier-timeout-ms", type=int, default=2000, help="per-tier read timeout (shared CPUs)")
    p.add_argument("--lease-seconds", type=float, default=10.0,
                   help="the worker's lease: a killed worker's batch is taken up again after this")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.users < 1 or args.min_messages < 1 or args.max_messages < args.min_messages:
        p.error("need --users >= 1 and 1 <= --min-messages <= --max-messages")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    emit(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
