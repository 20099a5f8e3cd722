"""bench.tune: one import, several settings scored on it, and where the evidence was lost."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from bench import tune
from bench.datasets import load_realtalk
from memory.launcher import Addresses
from tests import servers
from tests.bench.test_datasets import _turn
from tests.bench.test_smoke import settings_for


async def test_variants_share_one_import_and_say_where_evidence_went(bundled: Addresses, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    chat = {"session_1": [_turn("D1:1", "Emi", "Hi there", "29.12.2023, 22:42:04"),
                          _turn("D1:2", "Elise", "Morning! Busy day ahead.", "29.12.2023, 22:43:00"),
                          _turn("D1:3", "Emi", "What did you bake?", "29.12.2023, 22:44:00"),
                          _turn("D1:4", "Elise", "I baked a tiramisu dessert", "29.12.2023, 22:45:00")],
            "session_2": [_turn("D2:1", "Emi", "Any baking today?", "03.01.2024, 10:00:00"),
                          _turn("D2:2", "Elise", "I baked a pavlova dessert", "03.01.2024, 10:01:00")],
            "qa": [{"question": "Which desserts did Elise bake?", "answer": "tiramisu, pavlova",
                    "evidence": ["D1:4", "D2:2"], "category": 1}]}
    (tmp_path / "data" / "Chat_1_Emi_Elise.json").write_text(json.dumps(chat))
    # its own user ids: the servers' cache, summaries and graph are shared with other tests
    dataset = load_realtalk(tmp_path, namespace=f"tune{uuid.uuid4().hex[:8]}")
    dsn = await servers.create_database(bundled.postgres_dsn)
    variants = [tune.parse_variant("all:candidates=200"),
                tune.parse_variant("one:candidates=1,recent=0,expand_seeds=0")]
    assert variants[1] == ("one", {"candidates": 1, "recent": 0, "expand_seeds": 0})
    out, misses = await tune.tune(dataset, [5000], variants, settings_for(bundled, tmp_path / "mem", dsn))
    assert out["questions"] == 1
    every, one = out["variants"]["all"], out["variants"]["one"]
    assert every["recall"]["5000"] == {"overall": 100.0, "multi-hop": 100.0}
    assert every["evidence_at_mid_budget"]["all"] == {"packed": 100.0}
    # one candidate and no recent list: one of the two evidence exchanges, never both
    assert one["recall"]["5000"] == {"overall": 50.0, "multi-hop": 50.0}
    assert one["evidence_at_mid_budget"]["all"] == {"packed": 50.0, "absent": 50.0}
    assert misses["all"] == [] and [m["q"] for m in misses["one"]] == ["Which desserts did Elise bake?"]
