"""Split a reply into Discord-sized messages without breaking code blocks.

``split_message`` cuts at line ends where it can, then at spaces, and only
cuts inside a word when a word is longer than a whole message. A chunk that
ends inside a fenced code block is closed with a fence and the next chunk
reopens it with the same opening line (language tag included), so every
chunk renders on its own.
"""

from __future__ import annotations

DISCORD_LIMIT = 2000
_FENCE = "```"
_CLOSE = "\n" + _FENCE


def _toggles_fence(line: str) -> bool:
    stripped = line.strip()
    # "```py" opens or closes; "```x```" on one line is inline and changes nothing.
    return stripped.startswith(_FENCE) and stripped.count(_FENCE) % 2 == 1


def _break_line(line: str, size: int) -> list[str]:
    """Cut one over-long line into pieces of at most ``size``, at spaces where possible."""
    pieces: list[str] = []
    while len(line) > size:
        cut = line.rfind(" ", 0, size)
        cut = size if cut <= 0 else cut + 1  # keep the space on the left piece
        pieces.append(line[:cut])
        line = line[cut:]
    if line:
        pieces.append(line)
    return pieces


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """Return ``text`` as chunks of at most ``limit`` characters, each with balanced code fences.

    Empty or whitespace-only text gives an empty list. ``limit`` must leave
    room for a reopened fence (at least 40 characters).
    """
    if limit < 40:
        raise ValueError("limit must be at least 40 characters")
    if not text.strip():
        return []
    if len(text) <= limit:
        return [text]

    chunks: list[str] = []
    current = ""
    fence: str | None = None  # the opening line of the code block we are inside, if any

    def reopen() -> str:
        return fence + "\n" if fence is not None else ""

    def flush() -> None:
        nonlocal current
        body = current.rstrip("\n")
        if fence is not None:
            body += _CLOSE
        if body.strip() and body.strip() != (fence or "") + _CLOSE.strip():
            chunks.append(body)
        current = reopen()

    for line in text.splitlines(keepends=True):
        toggles = _toggles_fence(line)
        if toggles and fence is None and len(line.strip()) > limit // 4:
            line = _FENCE + "\n"  # an absurd language tag is not worth repeating in every chunk
        room = limit - (len(_CLOSE) + len(reopen()) if fence is not None else 0)
        for piece in _break_line(line, max(room, 1)):
            if len(current) + len(piece) + (len(_CLOSE) if fence is not None else 0) > limit:
                flush()
            current += piece
        if toggles:
            fence = line.strip() if fence is None else None
    if fence is not None:
        fence = None  # an unclosed block in the source stays unclosed in its last chunk
    body = current.rstrip("\n")
    if body.strip():
        chunks.append(body)
    return chunks
