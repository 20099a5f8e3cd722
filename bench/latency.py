"""Latency and throughput with all four tiers on real servers on loopback.

    python -m bench.latency [--archive 5000] [--users 50] [--levels 1,5,10,25,50] [--think-ms 1000] [--quick]

1. Import: one user with ``--archive`` exchanges (timestamps spread over a
   year) and ``--users`` users with ``--history`` exchanges each, through
   ``store_conversation``; then ``flush``. Worker throughput = exchanges /
   (import + flush wall time): the worker runs during the whole import.
2. ``store_conversation`` p50/p95: sequential stores once the worker is idle.
3. ``get_conversation_context`` alone: sequential queries for the big user
   (after a warm-up), with the time of each tier and of the query embedding.
4. Concurrency sweep: at each level c, c asyncio tasks, each a different user,
   closed loop for a fixed number of requests: c requests always in flight.
5. Users at a chat pace: ``--paced-users`` users, each pausing ``--think-ms`` on
   average (exponential) between getting a context and asking again.
6. Open loop: ``--open-requests`` contexts for the big user, one every
   1/``--open-rate`` s whether or not the earlier ones finished (the issue's
   setting: ``--archive 3000 --users 40 --open-rate 20``).
Every query text is distinct, so no embedding cache hides the model's cost.
A context's latency runs to the packed text (``get_conversation_context`` then
``to_context_string(1000)``, what the bot waits for); ``pack`` among the tiers is
the packing alone.
Prints one JSON object; writes latency.png to bench/out/ (and docs/img/ for a full run).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    OUT_DIR,
    emit,
    memory_settings,
    percentile,
    process_memory,
    progress,
    save_plot,
    summary_ms,
)
from bench.facts import KINDS, POOLS
from bench.filler import fill, filler_exchange

TARGETS = {
    "context_p50_ms_at_50": 15.0,
    "context_p95_ms_at_50": 40.0,
    "store_p95_ms": 10.0,
    "worker_exchanges_per_s": 100.0,
}


def queries(seed: int) -> Iterator[str]:
    """An endless stream of distinct, plausible user queries."""
    rng = random.Random(f"queries:{seed}")
    seen: set[str] = set()
    templates = [q for k in KINDS for q in k.questions]
    while True:
        template = rng.choice(templates)
        values = {name: rng.choice(pool) for name, pool in POOLS.items()}
        values.update(x=rng.choice(POOLS["city"]), y=rng.choice(POOLS["city"]), said="sister", asked="sister")
        text = template.format(**values)
        if rng.random() < 0.6:
            text = filler_exchange(rng)[0] + ". " + text
        if text not in seen:
            seen.add(text)
            yield text


def history(user_id: str, count: int, seed: int, guild_id: str | None = None) -> Iterator[dict[str, Any]]:
    """``count`` chit-chat exchanges for one user, oldest first, spread over a year."""
    rng = random.Random(f"history:{seed}:{user_id}")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    step = timedelta(days=365) / max(1, count)
    for i in range(count):
        user, bot = filler_exchange(rng)
        if rng.random() < 0.2:
            user += ". " + fill("my friend {fname} says hi from {bigcity}", rng)
        yield {
            "user_id": user_id,
            "user_message": user,
            "bot_response": bot,
            "guild_id": guild_id,
            "timestamp": start + step * i,
        }


class RssSampler:
    """Samples process memory every ``interval`` seconds; keeps the peak totals."""

    def __init__(self, data_dir: Path, interval: float = 1.0) -> None:
        self.data_dir, self.interval = data_dir, interval
        self.peak_self = 0.0
        self.peak_total = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def sample(self) -> dict[str, Any]:
        snap = process_memory(self.data_dir)
        self.peak_self = max(self.peak_self, snap["self_mib"])
        self.peak_total = max(self.peak_total, snap["total_mib"])
        return snap

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def timed_context(memory: Any, user_id: str, query: str, tiers: dict[str, list[float]]) -> float:
    """Milliseconds to the text the LLM gets: the context assembled, then packed to 1,000 tokens
    (the packing is also reported alone, as ``pack``)."""
    start = time.perf_counter()
    ctx = await memory.get_conversation_context(user_id, query, max_tokens=1000)
    packed = time.perf_counter()
    ctx.to_context_string(1000)
    ms = (time.perf_counter() - start) * 1000
    tiers["pack"].append((time.perf_counter() - packed) * 1000)
    for name, report in ctx.tiers.items():
        if report.status == "ok":
            tiers[name].append(report.ms)
        else:
            tiers[f"{name}:{report.status}"].append(report.ms)
    return ms


async def paced(memory: Any, who: list[str], stream: Iterator[str], args: argparse.Namespace) -> dict[str, Any]:
    """Closed loop with think time: each user pauses an exponential time (mean ``--think-ms``)
    between getting a context and asking again, so the load is what the users offer
    rather than as much as the machine takes. Pauses are seeded."""
    rng = random.Random(f"think:{args.seed}")
    tiers: dict[str, list[float]] = defaultdict(list)
    latencies: list[float] = []

    async def user(user_id: str, pauses: list[float]) -> None:
        for pause in pauses:
            await asyncio.sleep(pause)
            latencies.append(await timed_context(memory, user_id, next(stream), tiers))

    plans = [[rng.expovariate(1000.0 / args.think_ms) for _ in range(args.paced_requests)] for _ in who]
    t0 = time.perf_counter()
    await asyncio.gather(*(user(u, plan) for u, plan in zip(who, plans, strict=True)))
    wall = time.perf_counter() - t0
    return {
        "users": len(who),
        "think_ms_mean": args.think_ms,
        "requests": len(latencies),
        "throughput_per_s": round(len(latencies) / wall, 1),
        "latency_ms": summary_ms(latencies),
        "tiers_ms": tier_summary(tiers),
    }


async def open_loop(memory: Any, user_id: str, stream: Iterator[str], args: argparse.Namespace) -> dict[str, Any]:
    """Open loop: a new request for ``user_id`` every 1/``--open-rate`` s whether or not the earlier
    ones have finished, so queueing shows in the latency instead of slowing the offered load."""
    tiers: dict[str, list[float]] = defaultdict(list)
    latencies: list[float] = []
    interval = 1.0 / args.open_rate

    async def one(query: str) -> None:
        latencies.append(await timed_context(memory, user_id, query, tiers))

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    tasks = []
    for i in range(args.open_requests):
        await asyncio.sleep(max(0.0, t0 + i * interval - loop.time()))
        tasks.append(asyncio.create_task(one(next(stream))))
    late = loop.time() - (t0 + (args.open_requests - 1) * interval)  # how far the sender itself fell behind
    await asyncio.gather(*tasks)
    wall = loop.time() - t0
    return {"rate_per_s": args.open_rate, "requests": len(latencies), "sender_late_s": round(late, 3),
            "throughput_per_s": round(len(latencies) / wall, 1), "latency_ms": summary_ms(latencies),
            "tiers_ms": tier_summary(tiers)}


async def busy_import(memory: Any, user_id: str, stream: Iterator[str], args: argparse.Namespace,
                      namespace: str) -> dict[str, Any]:
    """Contexts for ``user_id`` at ``--open-rate`` (open loop) while ``--busy-import`` exchanges of a
    new user are stored back to back and the worker derives them: what a user waits for while
    another one imports a history, and what the import gets meanwhile."""
    tiers: dict[str, list[float]] = defaultdict(list)
    latencies: list[float] = []
    store_ms: list[float] = []
    interval = 1.0 / args.open_rate
    loop = asyncio.get_running_loop()
    importing = True

    async def one(query: str) -> None:
        latencies.append(await timed_context(memory, user_id, query, tiers))

    async def reader() -> None:
        tasks, t0, i = [], loop.time(), 0
        while importing:
            tasks.append(asyncio.create_task(one(next(stream))))
            i += 1
            await asyncio.sleep(max(0.0, t0 + i * interval - loop.time()))
        await asyncio.gather(*tasks)

    reading = asyncio.create_task(reader())
    t0 = time.perf_counter()
    for row in history(f"{namespace}-busy", args.busy_import, args.seed + 2):
        start = time.perf_counter()
        await memory.store_conversation(**row)
        store_ms.append((time.perf_counter() - start) * 1000)
    await memory.flush(timeout=3600)
    wall = time.perf_counter() - t0
    importing = False
    await reading
    return {"exchanges": args.busy_import, "rate_per_s": args.open_rate,
            "worker_exchanges_per_s": round(args.busy_import / wall, 1),
            "context_ms": summary_ms(latencies), "store_ms": summary_ms(store_ms), "tiers_ms": tier_summary(tiers)}


def tier_summary(tiers: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {name: summary_ms(values) for name, values in sorted(tiers.items())}


async def run(args: argparse.Namespace, settings: Any, namespace: str) -> dict[str, Any]:
    from memory import HierarchicalMemoryManager
    from memory.embedding import create_embedder

    big = f"{namespace}-big"
    users = [f"{namespace}-c{i}" for i in range(args.users)]
    stream = queries(args.seed)
    result: dict[str, Any] = {"benchmark": "latency", "targets": TARGETS}
    async with HierarchicalMemoryManager.from_env(settings) as memory:
        with RssSampler(settings.data_dir) as rss:
            # 1. import + worker throughput
            rows = list(history(big, args.archive, args.seed))
            for u in users:
                rows += history(u, args.history, args.seed)
            import_ms: list[float] = []
            start = time.perf_counter()
            for i, row in enumerate(rows):
                t0 = time.perf_counter()
                await memory.store_conversation(**row)
                import_ms.append((time.perf_counter() - t0) * 1000)
                if i % 1000 == 999:
                    progress(f"stored {i + 1}/{len(rows)}")
            import_s = time.perf_counter() - start
            pending = await memory.pending()
            progress(f"imported {len(rows)} in {import_s:.1f}s ({pending} pending); flushing")
            t0 = time.perf_counter()
            await memory.flush(timeout=3600)
            flush_s = time.perf_counter() - t0
            result["import"] = {
                "exchanges": len(rows),
                "import_s": round(import_s, 2),
                "pending_after_import": pending,
                "flush_after_import_s": round(flush_s, 2),
                "worker_exchanges_per_s": round(len(rows) / (import_s + flush_s), 1),
                "store_ms_during_import": summary_ms(import_ms),
            }
            # 2. store latency with the worker idle at the start
            store_ms: list[float] = []
            for row in history(f"{namespace}-store", args.stores, args.seed + 1):
                t0 = time.perf_counter()
                await memory.store_conversation(**row)
                store_ms.append((time.perf_counter() - t0) * 1000)
            result["store_conversation_ms"] = summary_ms(store_ms)
            await memory.flush(timeout=600)
            # 3. context assembly alone, for the big user
            progress("context assembly, sequential")
            warm_ms = [
                await timed_context(memory, big, next(stream), defaultdict(list)) for _ in range(args.warmup)
            ]
            tiers: dict[str, list[float]] = defaultdict(list)
            alone = [await timed_context(memory, big, next(stream), tiers) for _ in range(args.requests)]
            result["context_alone"] = {
                "user_exchanges": args.archive,
                "warmup_ms": summary_ms(warm_ms),
                "latency_ms": summary_ms(alone),
                "tiers_ms": tier_summary(tiers),
            }
            # 4. concurrency sweep
            sweep: list[dict[str, Any]] = []
            for level in args.levels:
                per_task = max(args.min_per_task, math.ceil(args.requests / level))
                tiers = defaultdict(list)
                latencies: list[float] = []

                async def client(
                    user_id: str,
                    n: int,
                    tiers: dict[str, list[float]] = tiers,
                    latencies: list[float] = latencies,
                ) -> None:
                    for _ in range(n):
                        latencies.append(await timed_context(memory, user_id, next(stream), tiers))

                who = ([big, *users])[:level]
                t0 = time.perf_counter()
                await asyncio.gather(*(client(u, per_task) for u in who))
                wall = time.perf_counter() - t0
                sweep.append(
                    {
                        "concurrency": len(who),
                        "requests": len(latencies),
                        "throughput_per_s": round(len(latencies) / wall, 1),
                        "latency_ms": summary_ms(latencies),
                        "tiers_ms": tier_summary(tiers),
                    }
                )
                progress(
                    f"c={len(who)}: p50 {percentile(latencies, 50):.1f} ms, "
                    f"p95 {percentile(latencies, 95):.1f} ms"
                )
            result["concurrency"] = sweep
            # 5. users at a chat pace: each sends, waits for its context, pauses, sends again
            if args.paced_users:
                result["paced"] = await paced(memory, [big, *users][: args.paced_users], stream, args)
                row = result["paced"]
                progress(f"{row['users']} users pausing ~{args.think_ms} ms: p50 {row['latency_ms']['p50']} ms, "
                         f"p95 {row['latency_ms']['p95']} ms, {row['throughput_per_s']} req/s")
            # 6. open loop at a fixed rate for the big user
            if args.open_requests:
                result["open_loop"] = row = await open_loop(memory, big, stream, args)
                progress(f"open loop {args.open_rate:g} req/s: p50 {row['latency_ms']['p50']} ms, "
                         f"p95 {row['latency_ms']['p95']} ms")
            # 7. the same reads while another user's history is imported (opt-in)
            if args.busy_import:
                result["busy_import"] = row = await busy_import(memory, big, stream, args, namespace)
                progress(f"open loop during an import: p50 {row['context_ms']['p50']} ms, "
                         f"p95 {row['context_ms']['p95']} ms; worker {row['worker_exchanges_per_s']}/s")
            result["rss_mib"] = {
                "at_end": rss.sample(),
                "peak_self": rss.peak_self,
                "peak_total": rss.peak_total,
            }
    embedder = create_embedder(settings.embedding)
    embedder.load()  # type: ignore[attr-defined]  # the local models only (bench runs them)
    embed_ms = []
    for _ in range(args.requests):
        t0 = time.perf_counter()
        embedder.embed_sync([next(stream)], query=True)  # type: ignore[attr-defined]
        embed_ms.append((time.perf_counter() - t0) * 1000)
    result["embedding_standalone_ms"] = summary_ms(embed_ms)
    return result


def _log_axes(ax: Any, xs: list[int], ylabel: str, title: str) -> None:
    """Log-log axes over the concurrency levels."""
    ax.set(xscale="log", yscale="log", xticks=xs, xticklabels=[str(x) for x in xs],
           xlabel="concurrent users", ylabel=ylabel, title=title)


def plot(result: dict[str, Any], out_dir: Path, copy_to_docs: bool) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = result["concurrency"]
    xs = [row["concurrency"] for row in sweep]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, style in (("p50", "o-"), ("p95", "s-"), ("p99", "^-")):
        left.plot(xs, [row["latency_ms"][key] for row in sweep], style, label=f"{key}, all users always waiting")
    paced_row = result.get("paced")
    if paced_row:
        label = f"{paced_row['users']} users pausing ~{paced_row['think_ms_mean'] / 1000:g} s"
        left.plot([paced_row["users"]], [paced_row["latency_ms"]["p50"]], "D", color="tab:blue", mfc="white",
                  label=f"p50, {label}")
        left.plot([paced_row["users"]], [paced_row["latency_ms"]["p95"]], "D", color="tab:orange", mfc="white",
                  label=f"p95, {label}")
    left.axhline(TARGETS["context_p50_ms_at_50"], color="tab:blue", linestyle=":", label="target p50 (15 ms)")
    left.axhline(
        TARGETS["context_p95_ms_at_50"], color="tab:orange", linestyle=":", label="target p95 (40 ms)"
    )
    _log_axes(left, xs, "get_conversation_context (ms)", "Context assembly latency, four tiers on loopback")
    left.legend(fontsize=8)
    names = sorted({n for row in sweep for n in row["tiers_ms"] if ":" not in n})
    for name in names:
        right.plot(
            xs, [row["tiers_ms"].get(name, {}).get("p50", float("nan")) for row in sweep], "o-", label=name
        )
    _log_axes(right, xs, "p50 (ms)", "Time per tier (p50)")
    right.legend(fontsize=8)
    written = save_plot(fig, "latency.png", out_dir, copy_to_docs)
    plt.close(fig)
    return written


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archive", type=int, default=5000, help="exchanges of the big user")
    parser.add_argument("--users", type=int, default=50, help="other users, each with --history exchanges")
    parser.add_argument("--history", type=int, default=40)
    parser.add_argument("--stores", type=int, default=300, help="sequential stores timed")
    parser.add_argument("--requests", type=int, default=300, help="context requests per measurement")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--min-per-task", type=int, default=6, help="closed-loop requests per task, at least")
    parser.add_argument("--levels", default="1,5,10,25,50")
    parser.add_argument("--paced-users", type=int, default=50, help="users at a chat pace (0 = skip)")
    parser.add_argument("--think-ms", type=float, default=1000.0, help="their mean pause between requests")
    parser.add_argument("--paced-requests", type=int, default=12, help="requests per paced user")
    parser.add_argument("--open-rate", type=float, default=20.0, help="open loop: requests per second")
    parser.add_argument("--open-requests", type=int, default=400, help="open-loop requests (0 = skip)")
    parser.add_argument("--busy-import", type=int, default=0,
                        help="then the open loop again while this many exchanges of a new user are imported (0 = skip)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="tiny run for tests")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--no-docs", action="store_true", help="do not copy the plot to docs/img/")
    args = parser.parse_args(argv)
    if args.quick:
        args.archive, args.users, args.history, args.stores = 120, 4, 5, 10
        args.requests, args.warmup, args.min_per_task, args.levels = 8, 2, 2, "1,2,5"
        args.paced_users, args.think_ms, args.paced_requests = 3, 20.0, 2
        args.open_requests = 4
        args.busy_import = min(args.busy_import, 20)
    args.levels = sorted({int(x) for x in str(args.levels).split(",") if x.strip()})
    return args


async def amain(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    with memory_settings() as (settings, external, namespace):
        result = await run(args, settings, namespace)
        result["servers"] = "configured" if external else "bundled"
        result["machine"] = {"cpus": os.cpu_count()}
    result["plots"] = plot(result, args.out, copy_to_docs=not (args.quick or args.no_docs))
    return result


def main(argv: list[str] | None = None) -> None:
    emit(asyncio.run(amain(argv)))


if __name__ == "__main__":
    main()
