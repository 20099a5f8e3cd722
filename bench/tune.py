"""Development loop for retrieval on a public dataset: import once, score many settings.

    python -m bench.tune --dataset realtalk --path DIR --half tune \
        --variant base --variant "c50:candidates=50" --variant "k30:rrf_k=30,weight_graph=1.0"

Each ``--variant NAME[:key=value,...]`` overrides ``RetrievalSettings`` fields for its pass
(values parsed as JSON, else kept as text). Every question is asked once at the largest
budget and its context packed at each budget, so a pass costs one query per question. Tier
timeouts are raised to 10 s so machine load cannot drop a tier. Besides the recall per type
it prints where the evidence was lost: not among the fused candidates, or a candidate that was
not packed. Prints one JSON object; ``--misses FILE`` writes the missed evidence per question.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import memory.manager as manager_module
from bench.common import emit, memory_settings, progress, summary_ms
from bench.datasets import DATASETS, HALVES
from bench.datasets import load as load_dataset
from bench.recall import beam_sizes, found, import_dataset

_seen: dict[str, Any] = {}
_fuse = manager_module.fuse


def _capturing_fuse(lists: Any, **kwargs: Any) -> Any:
    out = _fuse(lists, **kwargs)
    _seen["lists"] = {name: [h.exchange_id for h in hits] for name, hits in lists.items()}
    _seen["fused"] = [f.exchange_id for f in out]
    return out


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = text.partition(":")
    overrides: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return name, overrides


async def score(memory: Any, dataset: Any, budgets: list[int], misses: list[dict[str, Any]]) -> dict[str, Any]:
    r = memory.settings.retrieval
    share: dict[int, dict[str, float]] = {b: defaultdict(float) for b in budgets}
    asked: Counter[str] = Counter()
    lost: dict[str, Counter[str]] = defaultdict(Counter)  # type -> where each evidence turn went
    ms: list[float] = []
    expand_ms: list[float] = []
    for q in dataset.questions:
        t0 = time.perf_counter()
        ctx = await memory.get_conversation_context(q.user_id, q.text, guild_id=q.guild_id,
                                                    max_tokens=max(budgets))
        ms.append((time.perf_counter() - t0) * 1000)
        if "expansion" in ctx.tiers:
            expand_ms.append(ctx.tiers["expansion"].ms)
        asked[q.qtype] += 1
        hits_by_budget = {}
        for b in budgets:
            hits = found(q, ctx.to_context_string(max_tokens=b))
            hits_by_budget[b] = hits
            share[b][q.qtype] += sum(hits) / max(1, len(hits))
        candidates = set(_seen.get("fused", [])[: r.candidates]) | {e.id for e in ctx.recent}
        mid = sorted(budgets)[len(budgets) // 2]
        for xid, hit in zip(q.evidence_ids, hits_by_budget[mid], strict=True):
            fate = "packed" if hit else ("candidate" if xid in candidates else "absent")
            lost[q.qtype][fate] += 1
            lost["all"][fate] += 1
        if not all(hits_by_budget[mid]):
            misses.append({"q": q.text, "type": q.qtype, "evidence": list(q.evidence_ids),
                           "hits": hits_by_budget[mid],
                           "ranks": {xid: (_seen["fused"].index(xid) + 1 if xid in _seen.get("fused", []) else None)
                                     for xid in q.evidence_ids},
                           "lists": {name: [ids.index(x) + 1 if x in ids else None for x in q.evidence_ids]
                                     for name, ids in _seen.get("lists", {}).items()}})
    total = sum(asked.values())
    recall = {str(b): {"overall": round(100 * sum(share[b].values()) / max(1, total), 1)}
              | {t: round(100 * share[b][t] / n, 1) for t, n in sorted(asked.items())} for b in budgets}
    where = {t: {k: round(100 * v / max(1, sum(c.values())), 1) for k, v in c.items()} for t, c in lost.items()}
    return {"recall": recall, "evidence_at_mid_budget": where, "query_ms": summary_ms(ms),
            "second_round_ms": summary_ms(expand_ms) if expand_ms else None}


async def tune(dataset: Any, budgets: list[int], variants: list[tuple[str, dict[str, Any]]],
               settings: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Import ``dataset`` once into a manager on ``settings``, then score each variant; returns the
    result object and the misses of each variant."""
    from memory import HierarchicalMemoryManager

    if any(q.asked_at is not None for q in dataset.questions):  # one import would show them later turns
        raise ValueError("questions asked mid-history (RealMemBench) need bench.recall, which asks each "
                         "at its moment; bench.tune imports everything first")
    manager_module.fuse = _capturing_fuse
    out: dict[str, Any] = {"questions": len(dataset.questions), "variants": {}}
    all_misses: dict[str, Any] = {}
    for name in ("archive_timeout_ms", "summaries_timeout_ms", "graph_timeout_ms", "cache_timeout_ms"):
        setattr(settings.retrieval, name, 10_000)
    defaults = settings.retrieval.model_dump()
    try:
        async with HierarchicalMemoryManager.from_env(settings) as memory:
            await import_dataset(memory, dataset)
            start = time.perf_counter()
            await memory.flush(timeout=3600)
            progress(f"imported and flushed ({time.perf_counter() - start:.0f}s flush)")
            for name, overrides in variants:
                for key, value in defaults.items():
                    setattr(memory.settings.retrieval, key, overrides.get(key, value))
                misses: list[dict[str, Any]] = []
                out["variants"][name] = {"overrides": overrides, **await score(memory, dataset, budgets, misses)}
                all_misses[name] = misses
                progress(f"{name}: {json.dumps(out['variants'][name]['recall'])}")
    finally:
        manager_module.fuse = _fuse
    return out, all_misses


async def amain(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS[1:], default="realtalk")
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--half", choices=HALVES, default="tune")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--beam-sizes", default="100K", help="BEAM: which chat sizes, comma-separated (100K, 500K)")
    parser.add_argument("--budgets", default="500,1000,2000")
    parser.add_argument("--variant", action="append", default=[], help="NAME[:key=value,...]")
    parser.add_argument("--misses", type=Path, default=None, help="write the misses of each variant here (JSON)")
    args = parser.parse_args(argv)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    variants = [parse_variant(v) for v in args.variant or ["base"]]
    dataset = load_dataset(args.dataset, args.path, half=args.half, limit=args.limit,
                           beam_sizes=beam_sizes(args))
    with memory_settings() as (settings, _, _):
        out, all_misses = await tune(dataset, budgets, variants, settings)
    out.update(dataset=args.dataset, half=args.half)
    if args.misses:
        args.misses.write_text(json.dumps(all_misses, indent=1))
    return out


def main(argv: list[str] | None = None) -> None:
    emit(asyncio.run(amain(argv)))


if __name__ == "__main__":
    main()
