"""Recall under a token budget: does the evidence for each question reach the context?

    python -m bench.recall [--users 5] [--seed 7] [--budgets 500,1000,2000] [--quick]
    python -m bench.recall --dataset realtalk|beam|realmem --path DIR [--half tune|report] [--limit N]
        [--beam-sizes 100K|500K|100K,500K]

Generates conversations (``bench.generator``), or reads a public dataset from
its upstream layout (``bench.datasets``; ``--half`` picks the tuning or the
reporting half of its conversations, ``--limit`` the first N of them), imports them into the memory
(real tiers: bundled servers in a temporary data directory, or the URLs
configured in the environment), waits for the derived tiers (``flush``), then
for every question and budget B asks ``get_conversation_context(max_tokens=B)``
(a question asked mid-history, as RealMemBench's are, is asked once the
exchanges before it are stored and flushed, before any later one: ``schedule``)
and checks which evidence needles are in ``to_context_string(max_tokens=B)``.
The same questions are answered by three baselines packing whole raw
exchanges (recency, BM25, dense MiniLM). Generated runs pool the evidence
exchanges; public datasets score each question by the share of its evidence
found, averaged over questions (``recall_per_evidence_turn`` keeps the pooled
figure). For the ``changed-fact`` and ``profile`` questions (``bench.selfstated``) it also
reports ``answer_found``: the share whose expected answer ("Oslo") is in the context,
since the profile states a current fact without the stating exchange's text.
Prints one JSON object on stdout and
writes ``recall.png`` to bench/out/ (and docs/img/ for a full run).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.baselines import BASELINES, Baselines
from bench.common import OUT_DIR, emit, memory_settings, progress, save_plot, summary_ms
from bench.datasets import DATASETS, HALVES
from bench.datasets import load as load_dataset
from bench.facts import QTYPES as FACT_TYPES
from bench.generator import BenchExchange, Dataset, GenConfig, Question, generate
from bench.selfstated import QTYPES as SELF_TYPES
from memory.tokens import count_tokens

SYSTEM = "mnemo"
QTYPES = FACT_TYPES + SELF_TYPES
QUICK_FACTS = {"single": 3, "multi": 2, "update": 2, "temporal": 2, "distractor": 2}


def normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def found(question: Question, context: str) -> list[bool]:
    """For each evidence exchange of the question: is its needle in the context?"""
    haystack = normalise(context)
    return [normalise(n) in haystack for n in question.needles]


def answer_found(question: Question, context: str) -> bool:
    """Is the question's expected answer anywhere in the context (case and spacing aside)?"""
    return normalise(question.answer) in normalise(context)


class Tally:
    """Evidence found / evidence asked, per system, budget and question type."""

    def __init__(self) -> None:
        self.hit: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
        self.total: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
        self.complete: dict[tuple[str, int], int] = defaultdict(int)
        self.max_tokens: dict[tuple[str, int], int] = defaultdict(int)
        self.sum_tokens: dict[tuple[str, int], int] = defaultdict(int)
        self.asked: dict[tuple[str, int], int] = defaultdict(int)
        self.per_question: dict[tuple[str, int], float] = defaultdict(float)  # share of its evidence found
        self.share: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))  # per type
        self.questions: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
        self.answers: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)  # self-statement types

    def add_answer(self, system: str, budget: int, question: Question, context: str) -> None:
        if question.qtype in SELF_TYPES:
            self.answers[(system, budget)][question.qtype] += answer_found(question, context)

    def answer_rate(self, system: str, budget: int) -> dict[str, float]:
        """Share of the changed-fact and profile questions whose answer is in the context."""
        hit, total = self.answers[(system, budget)], self.questions[(system, budget)]
        asked = {t: total[t] for t in SELF_TYPES if total[t]}
        out = {"overall": round(sum(hit[t] for t in asked) / max(1, sum(asked.values())), 4)}
        out.update({t: round(hit[t] / n, 4) for t, n in asked.items()})
        return out

    def add(self, system: str, budget: int, question: Question, hits: list[bool], tokens: int) -> None:
        key = (system, budget)
        self.hit[key][question.qtype] += sum(hits)
        self.total[key][question.qtype] += len(hits)
        self.complete[key] += all(hits)
        self.max_tokens[key] = max(self.max_tokens[key], tokens)
        self.sum_tokens[key] += tokens
        self.asked[key] += 1
        self.per_question[key] += sum(hits) / max(1, len(hits))
        self.share[key][question.qtype] += sum(hits) / max(1, len(hits))
        self.questions[key][question.qtype] += 1

    def recall(self, system: str, budget: int, *, per_question: bool = False) -> dict[str, float]:
        """Evidence found, overall and per type: pooled over evidence turns, or with
        ``per_question`` each question's share of its evidence averaged over questions."""
        hit: Mapping[str, float]
        if per_question:
            hit, total = self.share[(system, budget)], self.questions[(system, budget)]
        else:
            hit, total = self.hit[(system, budget)], self.total[(system, budget)]
        out = {"overall": round(sum(hit.values()) / max(1, sum(total.values())), 4)}
        types = [t for t in QTYPES if total[t]] + sorted(t for t in total if t not in QTYPES and total[t])
        out.update({t: round(hit[t] / total[t], 4) for t in types})
        return out

    def pooled(self, system: str, budget: int, types: tuple[str, ...]) -> float:
        """Evidence found / evidence asked over the given question types."""
        hit, total = self.hit[(system, budget)], self.total[(system, budget)]
        return round(sum(hit[t] for t in types) / max(1, sum(total[t] for t in types)), 4)


def schedule(dataset: Dataset) -> list[tuple[list[BenchExchange], list[Question]]]:
    """Steps of (exchanges to store, then questions to ask). A question asked mid-history
    (``asked_at``) comes once every exchange of its user older than that moment is stored, and
    before any later one; everything else is stored in one last step (in the dataset's order,
    as a single import), then the other questions are asked."""
    steps: list[tuple[list[BenchExchange], list[Question]]] = []
    stored: set[str] = set()
    for user in dataset.users:
        pending = sorted(dataset.user_exchanges(user), key=lambda e: e.timestamp)
        timed = sorted((q for q in dataset.questions if q.user_id == user and q.asked_at is not None),
                       key=lambda q: q.asked_at or datetime.min)
        for question in timed:
            assert question.asked_at is not None
            cut = next((i for i, e in enumerate(pending) if e.timestamp >= question.asked_at), len(pending))
            if cut or not steps:
                steps.append((pending[:cut], []))
                stored.update(e.id for e in pending[:cut])
            pending = pending[cut:]
            steps[-1][1].append(question)
    steps.append(([e for e in dataset.exchanges if e.id not in stored],
                  [q for q in dataset.questions if q.asked_at is None]))
    return [(batch, asked) for batch, asked in steps if batch or asked]


async def import_dataset(memory: Any, dataset: Dataset | Iterable[BenchExchange], concurrency: int = 4) -> float:
    """Store every exchange with its id and timestamp; returns seconds taken."""
    gate = asyncio.Semaphore(concurrency)

    async def one(e: Any) -> None:
        async with gate:
            await memory.store_conversation(
                e.user_id,
                e.user_message,
                e.bot_response,
                guild_id=e.guild_id,
                channel_id=e.channel_id,
                timestamp=e.timestamp,
                metadata={"speakers": list(e.speakers)} if e.speakers else None,
                exchange_id=e.id,
            )

    start = time.perf_counter()
    exchanges = dataset.exchanges if isinstance(dataset, Dataset) else dataset
    await asyncio.gather(*(one(e) for e in exchanges))
    return time.perf_counter() - start


async def run(
    config: GenConfig | Dataset, budgets: list[int], settings: Any, *, embedder: Any = None
) -> dict[str, Any]:
    """The whole benchmark against the memory ``settings`` name; returns the result object.

    ``config`` generates the conversations; a ``Dataset`` (a public one) is used as given.
    """
    from memory import HierarchicalMemoryManager
    from memory.embedding import OnnxMiniLMEmbedder

    dataset = config if isinstance(config, Dataset) else generate(config)
    public = dataset is config  # public datasets score per question, as the calibration does
    config = dataset.config
    progress(f"generated {len(dataset.exchanges)} exchanges, {len(dataset.questions)} questions")
    tally = Tally()
    misses: list[dict[str, Any]] = []
    query_ms: list[float] = []
    degraded: Counter[str] = Counter()

    async def ask(memory: Any, question: Question) -> None:
        for budget in budgets:
            t0 = time.perf_counter()
            ctx = await memory.get_conversation_context(
                question.user_id, question.text, guild_id=question.guild_id, max_tokens=budget
            )
            query_ms.append((time.perf_counter() - t0) * 1000)
            degraded.update(ctx.degraded)
            text = ctx.to_context_string(max_tokens=budget)
            hits = found(question, text)
            tally.add(SYSTEM, budget, question, hits, count_tokens(text))
            tally.add_answer(SYSTEM, budget, question, text)
            if budget == 1000 and not all(hits):
                misses.append({"type": question.qtype, "kind": question.kind, "question": question.text,
                               "missing": [n for n, h in zip(question.needles, hits, strict=True) if not h]})

    async with HierarchicalMemoryManager.from_env(settings) as memory:
        import_s = flush_s = 0.0
        steps = schedule(dataset)
        for batch, asked in steps:
            if batch:
                import_s += await import_dataset(memory, batch)
                start = time.perf_counter()
                await memory.flush(timeout=1800)
                flush_s += time.perf_counter() - start
            progress(f"imported {len(batch)} in {import_s:.1f}s, flushed in {flush_s:.1f}s so far; "
                     f"asking {len(asked)} questions x {len(budgets)} budgets")
            for question in asked:
                await ask(memory, question)
    progress("memory done; running the baselines")
    baselines = Baselines(dataset, embedder or OnnxMiniLMEmbedder())
    for question in dataset.questions:
        for name in BASELINES:
            for budget in budgets:
                packed = baselines.context(name, question, budget)
                tally.add(name, budget, question, found(question, packed.text), packed.tokens)
                tally.add_answer(name, budget, question, packed.text)
    history = {u: sum(count_tokens(e.formatted()) for e in dataset.user_exchanges(u)) for u in dataset.users}
    mean_history = sum(history.values()) / max(1, len(history))
    systems = (SYSTEM, *BASELINES)
    return {
        "benchmark": "recall",
        "seed": config.seed,
        "users": config.users,
        "exchanges": len(dataset.exchanges),
        "questions": len(dataset.questions),
        "questions_by_type": dict(Counter(q.qtype for q in dataset.questions)),
        "evidence_exchanges": sum(len(q.evidence_ids) for q in dataset.questions),
        "budgets": budgets,
        "scoring": "per question" if public else "per evidence exchange",
        "recall": {s: {str(b): tally.recall(s, b, per_question=public) for b in budgets} for s in systems},
        "answer_found": {s: {str(b): tally.answer_rate(s, b) for b in budgets} for s in systems},
        # the five planted-fact types alone: comparable with runs before the self-statement questions
        "recall_planted_facts": {s: {str(b): tally.pooled(s, b, FACT_TYPES) for b in budgets} for s in systems},
        "recall_per_evidence_turn": {s: {str(b): tally.recall(s, b) for b in budgets} for s in systems},
        "all_evidence_found": {
            s: {str(b): round(tally.complete[(s, b)] / len(dataset.questions), 4) for b in budgets}
            for s in systems
        },
        "per_question_mean": {  # each question's share of its evidence found, averaged over questions
            s: {str(b): round(tally.per_question[(s, b)] / max(1, tally.asked[(s, b)]), 4) for b in budgets}
            for s in systems
        },
        "max_context_tokens": {s: {str(b): tally.max_tokens[(s, b)] for b in budgets} for s in systems},
        "mean_context_tokens": {s: {str(b): round(tally.sum_tokens[(s, b)] / max(1, tally.asked[(s, b)]))
                                    for b in budgets} for s in systems},
        "history_tokens": {
            "per_user": history,
            "mean": round(mean_history),
            "reduction_x": {str(b): round(mean_history / b, 1) for b in budgets},
        },
        "memory_timing": {
            "import_s": round(import_s, 2),
            "flush_s": round(flush_s, 2),
            "exchanges_per_s_through_worker": round(len(dataset.exchanges) / max(flush_s, 1e-9), 1),
            "get_conversation_context_ms": summary_ms(query_ms),
        },
        "degraded_contexts": dict(degraded),  # tier timeouts/failures would lower recall: should be empty
        "misses_at_1000": misses[:40],
    }


def plot(result: dict[str, Any], out_dir: Path, copy_to_docs: bool, name: str = "recall.png") -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = result["budgets"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {SYSTEM: ("o-", 2.5), "bm25": ("s--", 1.5), "dense": ("^--", 1.5), "recent": ("x:", 1.5)}
    for system, (style, width) in styles.items():
        ys = [100 * result["recall"][system][str(b)]["overall"] for b in budgets]
        left.plot(budgets, ys, style, linewidth=width, label=system)
    left.axhline(80, color="grey", linewidth=0.8, linestyle="-.", label="target at 1,000 tokens")
    left.set(
        xlabel="context budget (cl100k tokens)",
        ylabel="evidence exchanges in context (%)",
        title="Recall under a token budget",
        ylim=(0, 100),
        xticks=budgets,
    )
    left.legend(loc="lower right")
    mid = 1000 if 1000 in budgets else budgets[len(budgets) // 2]
    types = [t for t in result["recall"][SYSTEM][str(mid)] if t != "overall"]
    width = 0.2
    for i, system in enumerate(styles):
        ys = [100 * result["recall"][system][str(mid)].get(t, 0.0) for t in types]
        right.bar([x + (i - 1.5) * width for x in range(len(types))], ys, width, label=system)
    right.set(
        xticks=range(len(types)),
        xticklabels=[t.replace("_", " ")[:14] for t in types],
        ylim=(0, 100),
        ylabel="%",
        title=f"By question type at {mid} tokens",
    )
    if len(types) > 4:
        right.tick_params(axis="x", labelrotation=40, labelsize=8)
    right.legend(fontsize=8)
    written = save_plot(fig, name, out_dir, copy_to_docs)
    plt.close(fig)
    return written


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=None, help="users to generate (default 5; quick 2)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budgets", default="500,1000,2000", help="comma-separated token budgets")
    parser.add_argument("--quick", action="store_true", help="small run: 2 users, ~150 exchanges each")
    parser.add_argument("--dataset", choices=DATASETS, default="synthetic",
                        help="synthetic (generated) or a public dataset read from --path")
    parser.add_argument("--path", type=Path, default=None, help="the public dataset's checkout or extract")
    parser.add_argument("--half", choices=HALVES, default="all",
                        help="public datasets: tune on one half of the conversations, report the other")
    parser.add_argument("--limit", type=int, default=None, help="public datasets: first N conversations")
    parser.add_argument("--beam-sizes", default="100K", help="BEAM: which chat sizes, comma-separated "
                        "(100K, 500K)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where to write recall.png")
    parser.add_argument("--no-docs", action="store_true", help="do not copy the plot to docs/img/")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace, namespace: str) -> GenConfig:
    if args.quick:
        return GenConfig(
            users=args.users or 2,
            seed=args.seed,
            exchanges_per_user=120,
            sessions=(12, 16),
            facts=dict(QUICK_FACTS),
            namespace=namespace,
        )
    return GenConfig(users=args.users or 5, seed=args.seed, namespace=namespace)


def beam_sizes(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(s.strip() for s in str(args.beam_sizes).split(",") if s.strip())


async def amain(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    budgets = sorted({int(b) for b in args.budgets.split(",") if b.strip()})
    public = args.dataset != "synthetic"
    if public and args.path is None:
        raise SystemExit("--path DIR is required with --dataset " + args.dataset)
    with memory_settings() as (settings, external, namespace):
        source: GenConfig | Dataset = config_from(args, namespace)
        if public:
            source = load_dataset(args.dataset, args.path, half=args.half, limit=args.limit,
                                  beam_sizes=beam_sizes(args))
        result = await run(source, budgets, settings)
        result["servers"] = "configured" if external else "bundled"
    if public:
        result.update(dataset=args.dataset, half=args.half, limit=args.limit,
                      conversations=len(source.users) if isinstance(source, Dataset) else 0)
        if args.dataset == "beam":
            result["beam_sizes"] = list(beam_sizes(args))
    label = args.dataset
    if args.dataset == "beam" and beam_sizes(args) != ("100K",):  # the 100K plot keeps its name
        label = "beam-" + "-".join(beam_sizes(args))
    name = "recall.png" if not public else f"recall-{label}-{args.half}.png"
    result["plots"] = plot(result, args.out, copy_to_docs=not (args.quick or args.no_docs), name=name)
    return result


def main(argv: list[str] | None = None) -> None:
    emit(asyncio.run(amain(argv)))


if __name__ == "__main__":
    main()
