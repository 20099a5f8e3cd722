"""Token counting with a real tokenizer (cl100k_base via bpe-openai, offline)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _encoding() -> Any:
    import bpe_openai

    return bpe_openai.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in ``text``."""
    return len(_encoding().encode(text)) if text else 0


def truncate_tokens(text: str, max_tokens: int, *, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``max_tokens`` tokens (ellipsis included) at a token boundary."""
    if max_tokens <= 0:
        return ""
    enc = _encoding()
    tokens = enc.encode(text)
    if len(tokens) <= max_tokens:
        return text
    keep = max(0, max_tokens - len(enc.encode(ellipsis)))
    cut = enc.decode(tokens[:keep])
    while cut and count_tokens(cut + ellipsis) > max_tokens:
        cut = cut[:-1]
    return cut + ellipsis


def split_tokens(text: str, size: int, overlap: int = 32) -> list[str]:
    """Split ``text`` into windows of at most ``size`` tokens overlapping by ``overlap``."""
    enc = _encoding()
    tokens = enc.encode(text)
    if len(tokens) <= size:
        return [text]
    step = max(1, size - overlap)
    return [enc.decode(tokens[i:i + size]) for i in range(0, len(tokens), step)
            if i == 0 or i + overlap < len(tokens)]
