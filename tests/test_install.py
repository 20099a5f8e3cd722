"""The project as a user installs it: a wheel built from the sources, in a fresh venv, on embedded defaults.

Slow (a wheel build and a venv install; dependency wheels come from pip's
cache after the first run), marked ``slow``, and part of ``make test``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "memory", "bot")  # what the Dockerfile copies, too

# Runs inside the fresh venv, from a directory outside the checkout.
SCRIPT = """
import asyncio, importlib.util, json, sys
import memory
from memory.manager import HierarchicalMemoryManager

async def main():
    async with HierarchicalMemoryManager.from_env() as m:
        eid = await m.store_conversation("installer", "My parrot Kiwi speaks three words.",
                                         "Clever bird!", channel_id="c1")
        ctx = await m.get_conversation_context("installer", "what does my parrot say?")
        return eid, ctx.to_context_string(500), [e.id for e in ctx.recent], ctx.tiers["embedding"].status

eid, text, recent, embedding = asyncio.run(main())
print(json.dumps({"module": memory.__file__, "exchange": eid, "context": text, "recent": recent,
                  "embedding": embedding,
                  "torch": importlib.util.find_spec("torch") is not None,
                  "sentence_transformers": importlib.util.find_spec("sentence_transformers") is not None}))
"""


def _run(cmd: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False,
                          **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder other OS users can traverse: as root, embedded PostgreSQL runs its
    binaries (inside the venv) as its own user, which cannot enter pytest's private tmp folders."""
    path = Path(tempfile.mkdtemp(prefix="mnemo-install-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_built_wheel_works_in_a_clean_venv(open_tmp: Path) -> None:
    tmp_path = open_tmp
    # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, src / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, src])
    wheel = next(dist.glob("mnemo-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        assert {"memory/assets/all-MiniLM-L6-v2/tokenizer.json", "memory/assets/all-MiniLM-L6-v2/NOTICE.md",
                "memory/sql/001_init.sql"} <= set(archive.namelist())

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])  # no system or shared site-packages
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "--no-compile", wheel])  # no .pyc of every dependency: faster

    run_dir = tmp_path / "run"  # not the checkout: the installed package must be the one imported
    run_dir.mkdir()
    ours = ("LLM__", "REDIS__", "POSTGRES__", "NEO4J__", "CHROMA__", "EMBEDDING__", "RETRIEVAL__", "WORKER__",
            "BOT__", "METRICS__", "MEMORY_", "PYTHON", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update({"MEMORY_DATA_DIR": str(tmp_path / "data"),
                # a cold JVM and a fresh embedded PostgreSQL: give every tier time, this is not a latency test
                "RETRIEVAL__GRAPH_TIMEOUT_MS": "10000", "RETRIEVAL__SUMMARIES_TIMEOUT_MS": "10000",
                "RETRIEVAL__ARCHIVE_TIMEOUT_MS": "10000", "RETRIEVAL__CACHE_TIMEOUT_MS": "10000"})
    done = _run([python, "-c", SCRIPT], cwd=run_dir, env=env, timeout=600)
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert Path(result["module"]).is_relative_to(venv)
    assert result["recent"] == [result["exchange"]]
    assert "My parrot Kiwi speaks three words." in result["context"]
    assert result["embedding"] == "ok"  # the query was embedded by the local model, tokenizer included
    assert result["torch"] is False and result["sentence_transformers"] is False
