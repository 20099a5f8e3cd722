"""Three baselines on the same data and budget as the memory: recency, BM25, dense MiniLM.

Each ranks the raw exchanges of the question's scope (one user, DM or one
guild), then ``pack`` fills the token budget with whole exchanges formatted
``[YYYY-MM-DD] User: ... / Bot: ...`` in rank order, skipping any that no
longer fit. Tokens are counted with cl100k_base (``bpe_openai``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.generator import BenchExchange, Dataset, Question, iter_scopes
from memory.tokens import count_tokens

BASELINES = ("recent", "bm25", "dense")


@dataclass(frozen=True, slots=True)
class Packed:
    text: str
    ids: tuple[str, ...]
    tokens: int


def pack(ranked: Sequence[BenchExchange], budget: int) -> Packed:
    """Whole exchanges in rank order while they fit in ``budget`` tokens (joined by newlines)."""
    lines: list[str] = []
    ids: list[str] = []
    used = 0
    for exchange in ranked:
        line = exchange.formatted()
        cost = count_tokens(line) + (1 if lines else 0)
        if used + cost > budget:
            continue
        lines.append(line)
        ids.append(exchange.id)
        used += cost
        if budget - used < 12:  # nothing useful fits any more
            break
    text = "\n".join(lines)
    while lines and count_tokens(text) > budget:  # BPE merges across lines: never exceed the budget
        lines.pop()
        ids.pop()
        text = "\n".join(lines)
    return Packed(text, tuple(ids), count_tokens(text))


class Baselines:
    """Rankers over the dataset's raw exchanges; build once, then ``rank`` per question.

    ``embedder`` is anything with ``embed_sync(texts) -> np.ndarray`` of
    L2-normalised rows (``memory.embedding.OnnxMiniLMEmbedder``).
    """

    def __init__(self, dataset: Dataset, embedder: Any) -> None:
        import bm25s

        self._bm25s = bm25s
        self._embedder = embedder
        self._scopes: dict[tuple[str, str | None], list[BenchExchange]] = {}
        self._bm25: dict[tuple[str, str | None], Any] = {}
        self._vectors: dict[tuple[str, str | None], np.ndarray] = {}
        for key in iter_scopes(dataset):
            exchanges = dataset.scope_exchanges(*key)
            texts = [f"{e.user_message}\n{e.bot_response}" for e in exchanges]
            self._scopes[key] = exchanges
            retriever = bm25s.BM25()
            retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
            self._bm25[key] = retriever
            self._vectors[key] = np.asarray(embedder.embed_sync(texts), dtype=np.float32)

    def rank(self, name: str, question: Question) -> list[BenchExchange]:
        """The scope's exchanges, best first, as baseline ``name`` ranks them for the question."""
        key = (question.user_id, question.guild_id)
        exchanges = self._scopes[key]
        ranked: list[BenchExchange]
        if name == "recent":
            ranked = sorted(exchanges, key=lambda e: e.timestamp, reverse=True)
        elif name == "bm25":
            tokens = self._bm25s.tokenize(
                [question.text], stopwords="en", return_ids=False, show_progress=False
            )
            docs, scores = self._bm25[key].retrieve(tokens, k=len(exchanges), show_progress=False)
            ranked = [exchanges[int(i)] for i, s in zip(docs[0], scores[0], strict=True) if s > 0]
        elif name == "dense":
            query = np.asarray(self._embedder.embed_sync([question.text]), dtype=np.float32)[0]
            order = np.argsort(-(self._vectors[key] @ query), kind="stable")
            ranked = [exchanges[int(i)] for i in order]
        else:
            raise ValueError(f"unknown baseline {name!r}; expected one of {BASELINES}")
        if question.asked_at is not None:  # asked mid-history: only what was said before exists
            ranked = [e for e in ranked if e.timestamp < question.asked_at]
        return ranked

    def context(self, name: str, question: Question, budget: int) -> Packed:
        return pack(self.rank(name, question), budget)
