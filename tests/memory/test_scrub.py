"""``scrub``: after a forget, the forgotten text is gone from the storage files too (bundled servers)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from memory import HierarchicalMemoryManager, MemorySettings
from memory.cli import cmd_scrub
from memory.tiers import chroma_client

SECRET = "Quetzalmarrow"  # a word no server writes on its own


def holding(root: Path) -> list[str]:
    """Every file under ``root`` whose bytes contain the secret, relative to ``root``."""
    needle = SECRET.encode()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and not p.is_symlink() and needle in p.read_bytes())



@pytest.mark.timeout(300)
async def test_forgotten_text_leaves_no_bytes_in_the_bundled_servers_files(
        data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    async with HierarchicalMemoryManager.from_env(MemorySettings(data_dir=data_dir)) as memory:
        for i in range(3):
            await memory.store_conversation("u1", f"my bank password is {SECRET}{i}", "I'll keep it safe.")
        await memory.store_conversation("u2", "I like tea", "Noted.")
        await memory.flush(timeout=120)
        await memory.forget("u1")
        assert (await memory.counts("u1")) == {k: 0 for k in await memory.counts("u1")}
        # unreachable through every tier, yet still on disk: the archive's log and pages, Chroma's file
        left = holding(data_dir)
        assert any(p.startswith("postgres/") for p in left), left
        assert "chroma/chroma.sqlite3" in left, left

        assert await cmd_scrub(None, memory) == 0  # type: ignore[arg-type]
        printed = capsys.readouterr().out
        assert "archive: VACUUM FULL; write-ahead log switched, old segments deleted" in printed
        assert "summaries: VACUUM of the on-disk store" in printed
        assert [p for p in holding(data_dir) if not p.startswith("graph/")] == []
        # the tiers work on, with everyone else's memories
        await memory.store_conversation("u2", "and coffee", "Noted.")
        await memory.flush(timeout=120)
        assert (await memory.counts("u2"))["summaries"] == 2
        assert "tea" in (await memory.get_conversation_context("u2", "what do I drink?")).to_context_string()
    assert holding(data_dir) == []  # the bundled graph server cleared its transaction log on stopping

    # a writer holding the on-disk store past the wait: said, not a crash, and the archive still scrubbed
    monkeypatch.setattr(chroma_client, "VACUUM_WAIT_SECONDS", 0.2)
    async with HierarchicalMemoryManager.from_env(MemorySettings(data_dir=data_dir)) as memory:
        with contextlib.closing(sqlite3.connect(data_dir / "chroma" / "chroma.sqlite3")) as writer:
            writer.execute("BEGIN EXCLUSIVE")
            done = await memory.scrub()
        assert done["archive"][0] == "VACUUM FULL"
        assert done["summaries"][0].startswith("not rewritten (database is locked)")
