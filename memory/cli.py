"""The memory CLI: context, import, export, forget, rebuild, worker, stats, migrate.

This is a composition root: it reads settings once, opens the manager and
passes it to the command. Output goes through rich; errors are one line with a
non-zero exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from memory.errors import ForgetPending, InvalidInput, MemoryStoreError
from memory.manager import HierarchicalMemoryManager
from memory.metrics import serve_metrics
from memory.settings import MemorySettings
from memory.stack import MemoryStats

console = Console()
err = Console(stderr=True)
Command = Callable[[argparse.Namespace, HierarchicalMemoryManager], Awaitable[int]]


def _scope_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--guild", help="a guild id (default: the user's DMs)")


async def cmd_context(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    ctx = await memory.get_conversation_context(args.user, args.query, guild_id=args.guild,
                                                max_tokens=args.max_tokens)
    text = ctx.to_context_string()
    console.print(Panel(text or "(nothing remembered yet)", title=f"context for {args.user}: {args.query!r}",
                        subtitle=f"{len(ctx.exchange_ids)} exchanges"))
    table = Table(title="tiers")
    for col in ("tier", "status", "ms", "hits", "detail"):
        table.add_column(col)
    for name, r in ctx.tiers.items():
        table.add_row(name, r.status, f"{r.ms:.1f}", str(r.hits), r.detail[:80])
    console.print(table)
    return 0


def _parse_line(line: str, number: int) -> dict[str, Any]:
    """One import line as keyword arguments of ``store_conversation``; raises InvalidInput.

    ``timestamp`` is ISO 8601 (naive = UTC) or epoch seconds; whether it lies in the
    accepted window is checked by ``store_conversation``. Ids are strings or integers.
    """
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"line {number}: not JSON ({exc.msg})") from exc
    except RecursionError as exc:
        raise InvalidInput(f"line {number}: nested too deeply") from exc
    if not isinstance(row, dict):
        raise InvalidInput(f"line {number}: expected an object")
    missing = [k for k in ("user_id", "user_message", "bot_response") if k not in row]
    if missing:
        raise InvalidInput(f"line {number}: missing {', '.join(missing)}")
    out: dict[str, Any] = {"user_message": row["user_message"], "bot_response": row["bot_response"],
                           "metadata": row.get("metadata")}
    for key, arg in (("user_id", "user_id"), ("guild_id", "guild_id"), ("channel_id", "channel_id"),
                     ("id", "exchange_id")):
        value = row.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            raise InvalidInput(f"line {number}: must be a string or an integer", field=key)
        out[arg] = None if value is None else str(value)
    out["timestamp"] = _parse_timestamp(row.get("timestamp"), number)
    return out


def _parse_timestamp(ts: object, number: int) -> datetime | None:
    if ts is None:
        return None
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        try:
            return datetime.fromtimestamp(ts, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidInput(f"line {number}: epoch seconds out of range ({ts!r})", field="timestamp") from exc
    if isinstance(ts, str):
        try:
            return datetime.fromisoformat(ts.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(f"line {number}: bad timestamp {ts[:40]!r}", field="timestamp") from exc
    raise InvalidInput(f"line {number}: must be an ISO 8601 string or epoch seconds", field="timestamp")


async def cmd_import(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    """Import JSON lines {user_id, user_message, bot_response, timestamp?, guild_id?, channel_id?,
    metadata?, id?}; bad lines are reported and skipped, the rest are stored."""
    path = Path(args.file)
    # split on newlines only: str.splitlines() also breaks at U+2028, U+0085 ..., which JSON
    # strings may hold unescaped; bytes that are not UTF-8 become lone surrogates, refused per line
    lines = path.read_text(encoding="utf-8", errors="surrogateescape").split("\n")
    stored = bad = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("archiving", total=len(lines))
        for number, line in enumerate(lines, start=1):
            progress.advance(task)
            if not line.strip():
                continue
            try:
                await memory.store_conversation(**_parse_line(line, number))
                stored += 1
            except InvalidInput as exc:
                bad += 1
                err.print(f"[yellow]skipped[/] line {number}: {escape(str(exc)[:300])}")
        pending = await memory.pending()
        task2 = progress.add_task("summaries + graph", total=pending)
        flush = asyncio.create_task(memory.flush(timeout=3600))
        while not flush.done():
            progress.update(task2, completed=pending - await memory.pending())
            await asyncio.wait({flush}, timeout=0.25)
        await flush
        progress.update(task2, completed=pending)
    console.print(f"imported {stored} exchanges, skipped {bad} lines")
    return 0 if bad == 0 else 2


async def cmd_export(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    data = json.dumps(await memory.export(args.user), ensure_ascii=False, indent=2)
    if args.out:
        Path(args.out).write_text(data, encoding="utf-8")
        err.print(f"wrote {args.out}")
    else:
        sys.stdout.write(data + "\n")
    return 0


async def cmd_forget(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    try:
        removed = await memory.forget(args.user, guild_id=args.guild, dm=args.dm, exchange_id=args.exchange,
                                      topic=args.topic, last=args.last)
    except ForgetPending as exc:
        removed = exc.removed
        err.print(f"[yellow]{', '.join(exc.pending)} unavailable:[/] queued; the worker removes it when it is back")
    left = await memory.counts(args.user, guild_id=args.guild, dm=args.dm)
    table = Table(title=f"forgot for {args.user}")
    for col in ("tier", "removed", "left"):
        table.add_column(col)
    for name in removed:
        table.add_row(name, str(removed[name]), str(left.get(name, "")))
    console.print(table)
    return 0


async def cmd_scrub(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    done = await memory.scrub()
    for tier, steps in done.items():
        console.print(f"{tier}: {'; '.join(steps)}")
    return 0


async def cmd_rebuild(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    queued = await memory.rebuild(args.user)
    err.print(f"rebuilding {queued} exchanges ...")
    await memory.flush(timeout=3600)
    console.print(f"rebuilt cache, summaries and graph from {queued} archived exchanges")
    return 0


async def cmd_stats(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    stats = await memory.stats()
    table = Table(title="tiers")
    for col in ("tier", "ok", "ping ms", "detail"):
        table.add_column(col)
    for name, h in stats.tiers.items():
        table.add_row(name, "yes" if h.ok else "[red]no[/]", f"{h.ms:.1f}", h.detail[:80])
    console.print(table)
    console.print(f"exchanges {stats.exchanges}, users {stats.users}, pending derived work {stats.pending}, "
                  f"queued forgets {stats.pending_forgets}, "
                  f"tokens {stats.prompt_tokens}+{stats.completion_tokens}; "
                  f"dead letters {stats.dead_letters} (python -m memory dead-letters); "
                  f"bundled servers: {', '.join(stats.bundled) or 'none'}")
    _print_extraction(stats)
    if stats.restarts:
        console.print("restarts of bundled servers: "
                      + ", ".join(f"{name} {count}" for name, count in sorted(stats.restarts.items())))
    _print_activity(stats)
    return 0


def _print_extraction(stats: MemoryStats) -> None:
    """LLM extraction and session-summary counters: every process's (from Redis) and this one's."""
    shared, here = stats.extraction_total, stats.extraction
    table = Table(title="LLM extraction (calls and tokens include the session summaries)")
    for col in ("counter", "all processes", "this process"):
        table.add_column(col)
    for name in dict.fromkeys([*shared, *here]):
        table.add_row(name, str(shared.get(name, "-")), str(here.get(name, "-")))
    console.print(table)


def _print_activity(stats: MemoryStats) -> None:
    """Active conversations and what retention removed (``stats``)."""
    minutes = stats.active_minutes
    active = Table(title=f"active conversations (an exchange in the last {minutes:g} min)")
    for col in ("user", "scope", "channel", "exchanges", "last"):
        active.add_column(col)
    for a in stats.active:
        active.add_row(a.user_id, "DMs" if a.guild_id is None else f"guild {a.guild_id}", a.channel_id or "-",
                       str(a.exchanges), f"{a.last_at:%Y-%m-%d %H:%M:%S}")
    console.print(active)
    console.print(f"{len({a.user_id for a in stats.active})} active users in "
                  f"{len({(a.guild_id, a.channel_id) for a in stats.active})} channels; retention removed "
                  f"{stats.retention_removed} exchanges in total"
                  + (f", last run {stats.retention_last_run:%Y-%m-%d %H:%M}" if stats.retention_last_run else ""))


async def cmd_retention(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    report = await memory.apply_retention(force=True)
    assert report is not None  # forced runs always report
    console.print(f"retention removed {report.exchanges} expired exchanges: "
                  + " · ".join(f"{k} {v}" for k, v in sorted(report.removed.items()))
                  + (f"; queued for {', '.join(report.pending)} (down)" if report.pending else ""))
    return 0


async def cmd_dead_letters(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    if args.retry is not None:
        queued = await memory.retry_dead_letters(args.retry or None)
        if args.retry and queued == 0:
            err.print(f"[red]error:[/] no dead letter {escape(args.retry)}")
            return 1
        err.print(f"queued {queued} exchanges again; waiting for the worker ...")
        await memory.flush(timeout=args.timeout)
        left = (await memory.stats()).dead_letters
        console.print(f"retried {queued}; dead letters now {left}")
        return 0
    letters = await memory.dead_letter_list(args.limit)
    table = Table(title=f"dead letters ({(await memory.stats()).dead_letters})")
    for col in ("exchange", "user", "failures", "failed at", "error"):
        table.add_column(col)
    for d in letters:
        table.add_row(d.exchange_id, d.user_id, str(d.attempts), d.failed_at.isoformat(timespec="seconds"),
                      escape(d.error[:120]))
    console.print(table)
    return 0


async def cmd_worker(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = serve_metrics(memory.settings.metrics, memory.metrics, memory.stats)
    err.print("worker running; Ctrl-C to stop" + (f"; metrics on port {server.port}" if server else ""))
    try:
        await memory.worker.run_forever(stop)
    finally:
        if server is not None:
            await server.aclose()
    err.print(f"worker stopped after {memory.worker.processed} exchanges")
    return 0


async def cmd_migrate(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    from memory.migration import run_migrate_command

    return int(await run_migrate_command(args, memory))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m memory", description="mnemo's four-tier memory")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("context", help="print the context assembled for a query, with per-tier timings")
    p.add_argument("user")
    p.add_argument("query")
    p.add_argument("--max-tokens", type=int, default=1500)
    _scope_args(p)
    p.set_defaults(func=cmd_context)
    p = sub.add_parser("import", help="bulk import exchanges from a JSON-lines file")
    p.add_argument("file")
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("export", help="everything held about a user, as JSON")
    p.add_argument("user")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("forget", help="forget a user, a scope, an exchange or a topic in every tier")
    p.add_argument("user")
    where = p.add_mutually_exclusive_group()  # [--guild G | --dm]
    where.add_argument("--guild", help="only this guild")
    where.add_argument("--dm", action="store_true", help="only the user's DMs")
    what = p.add_mutually_exclusive_group()  # [--exchange ID | --topic T | --last]
    what.add_argument("--exchange", help="one exchange id")
    what.add_argument("--topic", help="exchanges mentioning this entity or topic")
    what.add_argument("--last", action="store_true", help="the newest exchange")
    p.set_defaults(func=cmd_forget)
    p = sub.add_parser("scrub", help="after forgetting: clear the deleted records from the storage files "
                                     "too (VACUUM, old log segments, the on-disk Chroma file)")
    p.set_defaults(func=cmd_scrub)
    p = sub.add_parser("rebuild", help="regenerate cache, summaries and graph from the archive")
    p.add_argument("--user")
    p.set_defaults(func=cmd_rebuild)
    p = sub.add_parser("worker", help="run the derived-tier worker in this process until stopped")
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("stats", help="tier health, totals, queue depth, active conversations, retention")
    p.set_defaults(func=cmd_stats)
    p = sub.add_parser("dead-letters", help="list the exchanges the worker gave up on, or queue them again")
    p.add_argument("--retry", nargs="?", const="", metavar="ID",
                   help="queue this dead letter again (no ID: all of them) and wait for the worker")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the retried work")
    p.set_defaults(func=cmd_dead_letters)
    p = sub.add_parser("retention", help="remove exchanges past MEMORY__RETENTION_DAYS (or their guild's) now")
    p.set_defaults(func=cmd_retention)
    from memory.migration import add_migrate_parser

    add_migrate_parser(sub)
    sub.choices["migrate"].set_defaults(func=cmd_migrate)
    return parser


async def run(args: argparse.Namespace) -> int:
    settings = MemorySettings()
    if args.command not in ("worker",):
        # one-shot commands drain the queue themselves; a long-running worker elsewhere is fine too
        settings.worker.in_process = True
    async with HierarchicalMemoryManager.from_env(settings) as memory:
        func: Command = args.func
        return await func(args, memory)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run(args))
    except MemoryStoreError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
