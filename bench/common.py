"""Helpers shared by the benchmarks: settings, percentiles, progress, plots, process memory."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
DOCS_IMG = ROOT / "docs" / "img"


def progress(message: str) -> None:
    """Progress goes to stderr; stdout carries only the final JSON object."""
    print(message, file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2, sort_keys=False))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    data = sorted(values)
    k = (len(data) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (k - lo))


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
        "mean": round(sum(values) / max(1, len(values)), 2),
    }


@contextlib.contextmanager
def memory_settings(data_dir: Path | None = None) -> Iterator[tuple[Any, bool, str]]:
    """(MemorySettings, external, namespace) for a benchmark run.

    Tiers with a URL in the environment or ``.env`` use it (``external`` is then
    True and ids get a random prefix so runs never collide); every other tier
    runs on a bundled server in a temporary ``MEMORY_DATA_DIR`` removed on exit.
    """
    from memory.settings import MemorySettings

    owned = data_dir is None
    path = Path(tempfile.mkdtemp(prefix="mnemo-bench-")) if data_dir is None else data_dir
    try:
        settings = MemorySettings(data_dir=path)
        external = any((settings.redis.url, settings.postgres.dsn, settings.chroma.url, settings.neo4j.uri))
        namespace = f"bench{secrets.token_hex(3)}" if external else "bench"
        yield settings, external, namespace
    finally:
        if owned:
            shutil.rmtree(path, ignore_errors=True)


def save_plot(fig: Any, name: str, out_dir: Path, copy_to_docs: bool) -> list[str]:
    """Write ``name`` into ``out_dir`` (and docs/img when asked); return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    written = [str(path)]
    if copy_to_docs:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / name)
        written.append(str(DOCS_IMG / name))
    return written


def process_memory(data_dir: Path | None = None) -> dict[str, Any]:
    """RSS of this process and of its servers, in MiB.

    Servers are the child processes plus, when ``data_dir`` is given, any
    process whose command line names it (embedded PostgreSQL daemonises).
    """
    import psutil

    me = psutil.Process()
    procs = {p.pid: p for p in me.children(recursive=True)}
    if data_dir is not None:
        marker = str(data_dir)
        for p in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error, TypeError):
                if p.pid != me.pid and marker in " ".join(p.info["cmdline"] or ()):
                    procs[p.pid] = p
    children: dict[str, float] = {}
    for child in procs.values():
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(child.cmdline()[:3])
            name = _server_name(child.name(), cmd)
            children[name] = children.get(name, 0.0) + child.memory_info().rss / 2**20
    own = me.memory_info().rss / 2**20
    return {
        "self_mib": round(own, 1),
        "children_mib": {k: round(v, 1) for k, v in sorted(children.items())},
        "total_mib": round(own + sum(children.values()), 1),
    }


def _server_name(name: str, cmd: str) -> str:
    if "redis" in name or "redis" in cmd:
        return "redis"
    if "postgres" in name or "postgres" in cmd:
        return "postgres"
    if "java" in name or "_bolt_server" in cmd or "arcadedb" in cmd:
        return "graph (ArcadeDB Bolt)"
    if "chroma" in cmd:
        return "chroma"
    return name
