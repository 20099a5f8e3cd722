"""What the stats collector reports at scrape time, from the fields a ``MemoryStats`` has."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from memory.metrics import Metrics
from memory.stack import MemoryStats, TierHealth


@dataclass(frozen=True)
class StatsWithDeadLetters(MemoryStats):
    """MemoryStats as the dead-letter work extends it (restarts are there already)."""

    dead_letters: int = 0


def _scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _health(**ok: bool) -> dict[str, TierHealth]:
    return {name: TierHealth(up, 12.0 if up else 2000.0, "" if up else "down") for name, up in ok.items()}


def test_stats_fields_become_gauges_and_counters() -> None:
    metrics = Metrics()
    stats = StatsWithDeadLetters(_health(cache=True, graph=False), exchanges=41, users=3, pending=7,
                                 processed_here=0, pending_forgets=2, dead_letters=5,
                                 restarts={"graph": 2, "cache": 0})
    metrics.watch_stats(lambda: stats)
    samples = _scrape(metrics)
    assert samples[("mnemo_stats_up", ())] == 1
    assert samples[("mnemo_tier_up", (("tier", "cache"),))] == 1
    assert samples[("mnemo_tier_up", (("tier", "graph"),))] == 0
    assert samples[("mnemo_tier_ping_seconds", (("tier", "graph"),))] == 2.0
    assert samples[("mnemo_worker_queue_depth", ())] == 7
    assert samples[("mnemo_forget_queue_depth", ())] == 2
    assert samples[("mnemo_dead_letters", ())] == 5
    assert samples[("mnemo_archived_exchanges", ())] == 41
    assert samples[("mnemo_active_conversations", ())] == 0
    assert samples[("mnemo_retention_removed_exchanges_total", ())] == 0
    assert samples[("mnemo_bundled_server_restarts_total", (("name", "graph"),))] == 2
    assert samples[("mnemo_bundled_server_restarts_total", (("name", "cache"),))] == 0


def test_unknown_values_are_left_out_not_reported_as_zero() -> None:
    metrics = Metrics()
    # the archive is down: stats() reports -1 for what it could not count
    stats = MemoryStats(_health(archive=False), exchanges=-1, users=-1, pending=-1, processed_here=0,
                        pending_forgets=-1)
    metrics.watch_stats(lambda: stats)
    names = {name for name, _ in _scrape(metrics)}
    assert "mnemo_tier_up" in names
    assert not names & {"mnemo_worker_queue_depth", "mnemo_forget_queue_depth", "mnemo_archived_exchanges"}


def test_a_failed_stats_read_reports_stats_down_and_nothing_else() -> None:
    metrics = Metrics()
    metrics.watch_stats(lambda: None)
    samples = _scrape(metrics)
    assert samples[("mnemo_stats_up", ())] == 0
    assert not any(name.startswith(("mnemo_tier_up", "mnemo_worker_queue")) for name, _ in samples)


def test_two_metrics_objects_do_not_share_counts() -> None:
    first, second = Metrics(), Metrics()
    first.tier_read("cache", "ok", 0.002)
    first.tier_read("cache", "timeout", 0.2)
    assert _scrape(first)[("mnemo_tier_reads_total", (("status", "ok"), ("tier", "cache")))] == 1
    assert _scrape(first)[("mnemo_tier_latency_seconds_count", (("tier", "cache"),))] == 2
    assert ("mnemo_tier_reads_total", (("status", "ok"), ("tier", "cache"))) not in _scrape(second)
