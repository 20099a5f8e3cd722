"""The ``migrate`` subcommand of the memory CLI: a progress bar and the verification report."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from memory.errors import ConfigurationError, InvalidInput, TierUnavailable
from memory.migration.run import MigrationProgress, migrate_from_chroma

if TYPE_CHECKING:
    from memory.manager import HierarchicalMemoryManager

DEFAULT_COLLECTION = "user_memories"
_PHASES = {"exchanges": "reading legacy records", "conversations": "pairing messages",
           "verifying": "verifying"}


def add_migrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``migrate`` to the memory CLI's subcommands; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "migrate", help="import a legacy single-Chroma memory store into the four tiers",
        description="Read a legacy Chroma collection page by page and store every record as an "
                    "exchange with its original timestamp. Safe to re-run: migrated records are skipped.")
    parser.add_argument("--from-chroma", metavar="PATH_OR_URL", dest="from_chroma",
                        help="a Chroma directory or an http(s)://host:port Chroma server (only read: a "
                             "directory is copied to a temporary folder and the copy is opened)")
    parser.add_argument("--collection", default=None,
                        help=f"legacy collection (default {DEFAULT_COLLECTION})")
    parser.add_argument("--batch-size", type=int, default=500, dest="batch_size",
                        help="records per page and per stored batch (default %(default)s)")
    parser.add_argument("--dry-run", action="store_true", dest="dry_run",
                        help="report what would be migrated; write nothing")
    parser.add_argument("--list-unmappable", action="store_true", dest="list_unmappable",
                        help="print the records earlier runs could not map (kept in the archive) as JSON "
                             "lines, of --collection if given, and exit")
    return parser


async def run_migrate_command(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    """Run ``migrate`` with a progress bar, print the report; 0 done, 1 a store failed, 2 bad arguments."""
    if args.list_unmappable:
        for item in await memory.set_aside_records(collection=args.collection):
            print(json.dumps({"collection": item.collection, "source": item.source, "legacy_id": item.legacy_id,
                              "reason": item.reason, "user_id": item.user_id, "scope": item.scope_key,
                              "record": dict(item.record)}, default=str))  # ASCII: lone surrogates print too
        return 0
    if not args.from_chroma:
        print("migrate: give --from-chroma PATH_OR_URL (or --list-unmappable)", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[status]}"), console=console, transient=True) as bar:
        task = bar.add_task("reading legacy records", total=None, status="")

        def show(p: MigrationProgress) -> None:
            verb = "would create" if args.dry_run else "created"
            bar.update(task, completed=p.records_read, total=p.records_total or None,
                       description=_PHASES[p.phase],
                       status=f"{verb} {p.exchanges_created}, skipped {p.skipped_existing}, "
                              f"unmappable {p.unmappable}")

        try:
            report = await migrate_from_chroma(
                memory, args.from_chroma, collection=args.collection or DEFAULT_COLLECTION,
                batch_size=args.batch_size, dry_run=args.dry_run, progress=show)
        except (ConfigurationError, InvalidInput) as exc:
            console.print(f"[red]migrate: {exc}[/red]")
            return 2
        except TierUnavailable as exc:
            console.print(f"[red]migrate: {exc}; run the same command again to resume[/red]")
            return 1
    for line in report.lines():
        console.print(line, highlight=False, markup=False)
    return 0
