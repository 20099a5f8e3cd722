"""Reply splitting at Discord's limit: sizes, code fences, and preserved content."""

from __future__ import annotations

import re

import pytest

from bot.split import DISCORD_LIMIT, split_message


def _fence_lines(chunk: str) -> int:
    return sum(1 for line in chunk.splitlines()
               if line.strip().startswith("```") and line.strip().count("```") % 2 == 1)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"\s+", text.replace("```python", " ").replace("```", " ")) if w]


def test_short_text_is_one_chunk_unchanged() -> None:
    text = "hello\n\n```py\nprint(1)\n```\n"
    assert split_message(text) == [text]


def test_blank_text_gives_no_chunks() -> None:
    assert split_message("  \n ") == []


def test_prose_splits_at_line_ends_within_limit() -> None:
    lines = [f"line {i} " + "word " * 30 for i in range(40)]
    text = "\n".join(lines)
    chunks = split_message(text)
    assert len(chunks) > 1
    assert all(len(c) <= DISCORD_LIMIT for c in chunks)
    # each chunk ends where a source line ends: no line is cut in two
    for chunk in chunks:
        assert chunk.splitlines()[-1].rstrip() in {line.rstrip() for line in lines}
    assert _words("\n".join(chunks)) == _words(text)


def test_long_word_without_spaces_is_cut_hard() -> None:
    text = "x" * 4500
    chunks = split_message(text)
    assert [len(c) for c in chunks] == [2000, 2000, 500]
    assert "".join(chunks) == text


def test_long_line_is_cut_at_spaces() -> None:
    text = " ".join(f"w{i:04d}" for i in range(1200))  # one 7,199-character line
    chunks = split_message(text)
    assert all(len(c) <= DISCORD_LIMIT for c in chunks)
    assert all(re.fullmatch(r"w\d{4}", c.split()[-1]) for c in chunks)
    assert _words(" ".join(chunks)) == _words(text)


@pytest.mark.parametrize("limit", [DISCORD_LIMIT, 120])
def test_code_block_is_closed_and_reopened_with_its_language(limit: int) -> None:
    code = "\n".join(f"    value_{i} = compute({i})  # step {i}" for i in range(150))
    text = "Here is the script:\n```python\n" + code + "\n```\nThat is all."
    chunks = split_message(text, limit)
    assert len(chunks) > 2
    assert all(len(c) <= limit for c in chunks)
    assert all(_fence_lines(c) % 2 == 0 for c in chunks)
    for chunk in chunks[1:-1]:
        assert chunk.startswith("```python\n") and chunk.endswith("\n```")
    assert chunks[-1].endswith("That is all.")
    # the code survives intact once the added fences are removed
    rejoined = [line for c in chunks for line in c.splitlines() if line.startswith("    value_")]
    assert rejoined == code.splitlines()


def test_inline_triple_backticks_do_not_open_a_block() -> None:
    text = ("```inline``` text\n" + "a " * 999 + "\nafter")
    chunks = split_message(text)
    assert all(len(c) <= DISCORD_LIMIT for c in chunks)
    assert not any(c.endswith("\n```") for c in chunks)
