"""The whole prompt under one budget: persona, notes, rolling summary, recent turns and the message.

``plan_prompt`` decides how much of each part goes in so that the prompt plus
the reply (``LLM__MAX_TOKENS``) fit ``LLM__CONTEXT_TOKENS``. The least useful
part is trimmed first: memory notes beyond a floor, then the oldest verbatim
turns, then the oldest lines of the rolling summary, then the notes' floor,
and last the message itself (its end is cut). Tokens are counted with the
same tokenizer as the memory library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.llm import Turn
from memory.tokens import count_tokens, truncate_tokens

MESSAGE_OVERHEAD = 4  # role and separators of one chat message
NOTES_FLOOR = 200


@dataclass(frozen=True, slots=True)
class PromptPlan:
    turns: tuple[Turn, ...]
    summary: str
    notes_tokens: int
    message: str


def _keep_end(text: str, tokens: int) -> str:
    """The newest lines of ``text`` within ``tokens`` (a rolling summary grows at its end)."""
    lines = text.splitlines()
    while lines and count_tokens("\n".join(lines)) > tokens:
        lines.pop(0)
    return "\n".join(lines)


def plan_prompt(budget: int, fixed: str, message: str, turns: Sequence[Turn], summary: str,
                notes_max: int) -> PromptPlan:
    """Fit everything into ``budget`` tokens; ``fixed`` is the system text that always goes in."""
    room = budget - count_tokens(fixed) - 2 * MESSAGE_OVERHEAD
    message_cost = count_tokens(message)
    if message_cost > max(room // 2, 1):  # a huge message: keep its start, leave room for the rest
        message = truncate_tokens(message, max(room // 2, 1))
        message_cost = count_tokens(message)
    room -= message_cost
    floor = min(notes_max, NOTES_FLOOR)
    kept = list(turns)
    costs = [count_tokens(t.content) + MESSAGE_OVERHEAD for t in kept]
    summary_cost = count_tokens(summary) + 8 if summary.strip() else 0
    while kept and floor + summary_cost + sum(costs) > room:
        drop = 2 if len(kept) >= 2 and kept[0].role == "user" else 1  # a whole exchange at a time
        del kept[:drop], costs[:drop]
    if floor + summary_cost + sum(costs) > room and summary:
        summary = _keep_end(summary, max(0, room - floor - sum(costs) - 8))
        summary_cost = count_tokens(summary) + 8 if summary.strip() else 0
    notes = max(0, min(notes_max, room - summary_cost - sum(costs)))
    return PromptPlan(tuple(kept), summary, notes, message)
