"""The ``migrate`` subcommand of the memory CLI: a progress bar and the verification report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.errors import ConfigurationError, InvalidInput, TierUnavailable
from memory.migration.run import MigrationProgress, migrate_from_chroma

if TYPE_CHECKING:
    from memory.manager import HierarchicalMemoryManager

_PHASES = {"exchanges": "reading legacy records", "conversations": "pairing messages",
           "verifying": "verifying"}


def add_migrate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``migrate`` to the memory CLI's subcommands; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "migrate", help="import a legacy single-Chroma memory store into the four tiers",
        description="Read a legacy Chroma collection page by page and store every record as an "
                    "exchange with its original timestamp. Safe to re-run: migrated records are skipped.")
    parser.add_argument("--from-chroma", required=True, metavar="PATH_OR_URL", dest="from_chroma",
                        help="a Chroma directory or an http(s)://host:port Chroma server")
    parser.add_argument("--collection", default="user_memories",
                        help="legacy collection (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=500, dest="batch_size",
                        help="records per page and per stored batch (default %(default)s)")
    parser.add_argument("--dry-run", action="store_true", dest="dry_run",
                        help="report what would be migrated; write nothing")
    parser.add_argument("--unmappable-file", type=Path, default=None, dest="unmappable_file", metavar="PATH",
                        help="JSONL file for records that cannot be mapped "
                             "(default ./migration-unmappable-<collection>.jsonl; none in a dry run)")
    return parser


async def run_migrate_command(args: argparse.Namespace, memory: HierarchicalMemoryManager) -> int:
    """Run ``migrate`` with a progress bar, print the report; 0 done, 1 a store failed, 2 bad arguments."""
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
                memory, args.from_chroma, collection=args.collection, batch_size=args.batch_size,
                dry_run=args.dry_run, unmappable_path=args.unmappable_file, progress=show)
        except (ConfigurationError, InvalidInput) as exc:
            console.print(f"[red]migrate: {exc}[/red]")
            return 2
        except TierUnavailable as exc:
            console.print(f"[red]migrate: {exc}; run the same command again to resume[/red]")
            return 1
    for line in report.lines():
        console.print(line, highlight=False, markup=False)
    return 0
