"""Tiny end-to-end runs of both benchmarks against the real bundled servers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench import latency, recall
from bench.generator import GenConfig
from memory.launcher import Addresses
from memory.settings import MemorySettings, Neo4jSettings, PostgresSettings, RedisSettings, RetrievalSettings
from tests import servers


def _nonempty(path: str) -> bool:
    return os.path.getsize(path) > 0


def settings_for(bundled: Addresses, data_dir: Path, postgres_dsn: str | None = None,
                 retrieval: RetrievalSettings | None = None) -> MemorySettings:
    user, password = bundled.neo4j_auth or ("neo4j", "")
    return MemorySettings(
        data_dir=data_dir,
        redis=RedisSettings(url=bundled.redis_url),
        postgres=PostgresSettings(dsn=postgres_dsn or bundled.postgres_dsn),
        neo4j=Neo4jSettings(
            uri=bundled.neo4j_uri, user=user, password=password, database=bundled.neo4j_database
        ),
        retrieval=retrieval or RetrievalSettings(),
    )


async def test_recall_smoke_run(bundled: Addresses, tmp_path: Path) -> None:
    config = GenConfig(
        users=1,
        exchanges_per_user=50,
        sessions=(6, 8),
        namespace="smokerecall",
        facts={"single": 1, "multi": 1, "update": 1, "temporal": 1, "distractor": 1},
    )
    dsn = await servers.create_database(bundled.postgres_dsn)
    # every exchange of a scope is a candidate (50 in all), and 20,000 tokens hold the whole history:
    # then every system must find every piece of evidence, so the scoring itself is checked exactly
    wide = RetrievalSettings(candidates=200, recent=50, cache_timeout_ms=5000, archive_timeout_ms=5000,
                             summaries_timeout_ms=5000, graph_timeout_ms=5000)
    result = await recall.run(config, [300, 20_000], settings_for(bundled, tmp_path, dsn, wide))
    json.dumps(result)  # one JSON object
    # 5 planted facts (6 evidence exchanges) and 6 self-statement questions (one exchange each)
    assert result["questions"] == 11 and result["evidence_exchanges"] == 12
    assert 1000 < result["history_tokens"]["mean"] < 20_000
    for system in ("mnemo", "recent", "dense"):
        assert result["recall"][system]["20000"]["overall"] == 1.0, system
        assert result["all_evidence_found"][system]["20000"] == 1.0, system
        assert result["recall_planted_facts"][system]["20000"] == 1.0, system
        assert result["answer_found"][system]["20000"] == {
            "overall": 1.0, "changed-fact": 1.0, "profile": 1.0
        }, system
    # BM25 ranks only exchanges sharing a word with the question, so some evidence is never offered
    assert 0.0 < result["recall"]["bm25"]["20000"]["overall"] < 1.0
    for system in ("mnemo", "recent", "bm25", "dense"):
        assert 0 < result["max_context_tokens"][system]["300"] <= 300
    assert result["degraded_contexts"] == {}
    written = recall.plot(result, tmp_path / "out", copy_to_docs=False)
    assert [Path(p).name for p in written] == ["recall.png"] and _nonempty(written[0])


async def test_latency_smoke_run(bundled: Addresses, tmp_path: Path) -> None:
    args = latency.parse_args(
        [
            "--archive",
            "30",
            "--users",
            "2",
            "--history",
            "3",
            "--stores",
            "3",
            "--requests",
            "3",
            "--warmup",
            "1",
            "--min-per-task",
            "2",
            "--levels",
            "1,3",
            "--paced-users",
            "3",
            "--think-ms",
            "5",
            "--paced-requests",
            "2",
            "--open-rate",
            "40",
            "--open-requests",
            "5",
            "--busy-import",
            "12",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    dsn = await servers.create_database(bundled.postgres_dsn)
    result = await latency.run(args, settings_for(bundled, tmp_path, dsn), "smokelat")
    json.dumps(result)
    assert result["import"]["exchanges"] == 30 + 2 * 3
    assert result["store_conversation_ms"]["n"] == 3
    assert result["context_alone"]["latency_ms"]["n"] == 3
    assert "embedding" in result["context_alone"]["tiers_ms"]
    assert [row["concurrency"] for row in result["concurrency"]] == [1, 3]
    assert result["concurrency"][1]["requests"] == 3 * 2
    assert result["paced"]["users"] == 3 and result["paced"]["latency_ms"]["n"] == 3 * 2
    assert result["open_loop"]["requests"] == 5 and result["open_loop"]["latency_ms"]["n"] == 5
    busy = result["busy_import"]
    assert busy["store_ms"]["n"] == 12 and busy["context_ms"]["n"] >= 1 and busy["worker_exchanges_per_s"] > 0
    assert result["rss_mib"]["peak_total"] >= result["rss_mib"]["peak_self"] > 0
    written = latency.plot(result, tmp_path / "out", copy_to_docs=False)
    assert Path(written[0]).name == "latency.png" and _nonempty(written[0])


async def test_recall_on_a_public_dataset_layout(bundled: Addresses, tmp_path: Path) -> None:
    from bench.datasets import load

    data = tmp_path / "rt" / "data"
    data.mkdir(parents=True)
    turns = [{"clean_text": text, "speaker": who, "date_time": f"0{day}.01.2024, 10:0{i}:00", "dia_id": f"D1:{n}"}
             for n, (day, i, who, text) in enumerate([
                 (1, 0, "Emi", "I made shrimp scampi for dinner"), (1, 1, "elise", "Sounds delicious!"),
                 (2, 0, "elise", "I signed up for a yoga class"), (2, 1, "Emi", "Good luck at yoga")], start=1)]
    chat = {"session_1": turns[:2], "session_2": turns[2:],
            "qa": [{"question": "What did Emi cook?", "answer": "scampi", "evidence": ["D1:1"], "category": 1},
                   {"question": "When did elise sign up for yoga?", "answer": "2 Jan", "evidence": ["D1:3"],
                    "category": 2}]}
    (data / "Chat_1_Emi_Elise.json").write_text(json.dumps(chat))
    dataset = load("realtalk", tmp_path / "rt")
    dsn = await servers.create_database(bundled.postgres_dsn)
    result = await recall.run(dataset, [300], settings_for(bundled, tmp_path / "mem", dsn))
    assert result["exchanges"] == 2 and result["questions"] == 2 and result["evidence_exchanges"] == 2
    # both short exchanges fit in 300 tokens whole, so everything is found
    assert result["recall"]["mnemo"]["300"] == {"overall": 1.0, "multi-hop": 1.0, "temporal": 1.0}
    assert result["recall"]["bm25"]["300"]["overall"] == 1.0
    assert 0 < result["mean_context_tokens"]["mnemo"]["300"] <= 300


async def test_recall_asks_realmem_queries_at_their_moment(bundled: Addresses, tmp_path: Path) -> None:
    """The tiny RealMemBench file: the second query's evidence is the first query's answer, which
    exists in the memory only because it was stored (after the first question was asked) before
    the second was asked."""
    from bench.datasets import load
    from tests.bench.test_datasets import _realmem

    (tmp_path / "data").mkdir()
    dataset = load("realmem", _realmem(tmp_path / "data"))
    dsn = await servers.create_database(bundled.postgres_dsn)
    wide = RetrievalSettings(candidates=50, recent=10, cache_timeout_ms=5000, archive_timeout_ms=5000,
                             summaries_timeout_ms=5000, graph_timeout_ms=5000)
    result = await recall.run(dataset, [20_000], settings_for(bundled, tmp_path, dsn, wide))
    assert (result["questions"], result["evidence_exchanges"], result["scoring"]) == (2, 3, "per question")
    for system in ("mnemo", "recent", "dense"):
        assert result["recall"][system]["20000"]["overall"] == 1.0, system
    assert result["degraded_contexts"] == {}
