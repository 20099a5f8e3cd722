"""Token counting with a real tokenizer (cl100k_base via bpe-openai, offline).

Text is encoded as ordinary text: a user who writes a special token's spelling
("<|endoftext|>") gets it counted as the characters it is, never an error (the
library's ``encode`` raises on it) and never a special token.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in ``text``."""
    return len(_encoding().encode_ordinary(text)) if text else 0


def truncate_tokens(text: str, max_tokens: int, *, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``max_tokens`` tokens (ellipsis included) at a token boundary."""
    if max_tokens <= 0:
        return ""
    enc = _encoding()
    tokens = enc.encode_ordinary(text)
    if len(tokens) <= max_tokens:
        return text
    keep = max(0, max_tokens - count_tokens(ellipsis))
    cut = enc.decode(tokens[:keep])
    while cut and count_tokens(cut + ellipsis) > max_tokens:
        cut = cut[:-1]
    return cut + ellipsis


def split_tokens(text: str, size: int, overlap: int = 32) -> list[str]:
    """Split ``text`` into windows of at most ``size`` tokens overlapping by ``overlap``.

    Window edges move off the middle of a multi-byte character, so every chunk
    is a faithful substring (no U+FFFD replacement characters).
    """
    enc = _encoding()
    tokens = enc.encode_ordinary(text)
    if len(tokens) <= size:
        return [text]
    clean = "\ufffd" not in text

    def faithful(a: int, b: int) -> bool:
        return not clean or "\ufffd" not in enc.decode(tokens[a:b])

    chunks: list[str] = []
    start, step = 0, max(1, size - overlap)
    while start < len(tokens):
        while start > 0 and start < len(tokens) and not faithful(start, min(len(tokens), start + 4)):
            start += 1  # the window began inside a character
        end = min(len(tokens), start + size)
        while end < len(tokens) and end > start + 1 and not faithful(start, end):
            end -= 1
        chunks.append(enc.decode(tokens[start:end]))
        if end >= len(tokens):
            break
        start = max(start + 1, min(end, start + step))
    return chunks
