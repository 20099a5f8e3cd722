"""Prometheus metrics of one process: the definitions, the stats collector and the HTTP endpoint.

Every metric lives on a ``Metrics`` object with its own ``CollectorRegistry``:
the composition root makes one per process and passes it down (manager,
worker, chat handler, LLM client); a manager built without one gets a private
object, so tests never see each other's counts. Code records an event with one
call where it happens.

Values that live in the stores (queue depths, dead letters, tier health,
bundled-server restarts) are read from ``MemoryStats`` when Prometheus scrapes,
by ``StatsCollector``; exposing another stats field is one line in ``STATS_GAUGES``.
A field that does not exist (yet) is left out of the scrape, not reported as 0.

The endpoint is off unless ``METRICS__PORT`` is set; it binds ``METRICS__HOST``
(127.0.0.1 by default: put a scraper next to the bot, or set 0.0.0.0 in a container).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from memory.errors import ConfigurationError, MemoryStoreError

if TYPE_CHECKING:
    from memory.settings import MetricsSettings
    from memory.stack import MemoryStats

log = logging.getLogger(__name__)

# tier reads are sub-millisecond to a few hundred ms (the per-tier timeouts)
TIER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """The counters and histograms of one process, registered in ``self.registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total ...
        self.messages = Counter("mnemo_messages", "Messages addressed to the bot (Discord or console)",
                                registry=r)
        self.replies = Counter("mnemo_replies", "Replies sent, by kind (answer, context, rate_limited, "
                               "llm_error, invalid)", ["kind"], registry=r)
        self.errors = Counter("mnemo_errors", "Failures handled without stopping the reply, by kind",
                              ["kind"], registry=r)
        self.rate_limited = Counter("mnemo_rate_limited_messages", "Messages refused by a rate limit, "
                                    "by limit (user, global)", ["scope"], registry=r)
        self.tier_reads = Counter("mnemo_tier_reads", "Tier calls on the read path, by tier and status "
                                  "(ok, failed, timeout)", ["tier", "status"], registry=r)
        self.tier_latency = Histogram("mnemo_tier_latency_seconds", "Time of each tier call on the read path",
                                      ["tier"], buckets=TIER_BUCKETS, registry=r)
        self.stored = Counter("mnemo_exchanges_stored", "Exchanges written to the archive by this process",
                              registry=r)
        self.llm_calls = Counter("mnemo_llm_calls", "Chat-model requests, by outcome (ok, error)", ["outcome"],
                                 registry=r)
        self.llm_tokens = Counter("mnemo_llm_tokens", "Tokens the chat model reported, by type "
                                  "(prompt, completion)", ["type"], registry=r)
        self.llm_latency = Histogram("mnemo_llm_latency_seconds", "Time of each chat-model request",
                                     buckets=LLM_BUCKETS, registry=r)
        self.worker_exchanges = Counter("mnemo_worker_exchanges", "Exchanges this process's worker carried "
                                        "into summaries and graph", registry=r)
        self.worker_failures = Counter("mnemo_worker_batch_failures", "Worker batches deferred because a "
                                       "derived tier was unavailable", registry=r)

    def tier_read(self, tier: str, status: str, seconds: float) -> None:
        """One tier call on the read path."""
        self.tier_reads.labels(tier, status).inc()
        self.tier_latency.labels(tier).observe(seconds)

    def llm_call(self, outcome: str, seconds: float, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        """One chat-model request and the tokens it used."""
        self.llm_calls.labels(outcome).inc()
        self.llm_latency.observe(seconds)
        if prompt_tokens:
            self.llm_tokens.labels("prompt").inc(prompt_tokens)
        if completion_tokens:
            self.llm_tokens.labels("completion").inc(completion_tokens)

    def watch_stats(self, read: Callable[[], MemoryStats | None]) -> None:
        """Report ``MemoryStats`` fields at every scrape, read with ``read`` (see ``StatsCollector``)."""
        self.registry.register(StatsCollector(read))


# (metric name, help, kind, field of MemoryStats). A field may be a number, a mapping
# name -> number (one sample per name, label "name") or a tuple (its length); negative
# numbers mean "unknown".
STATS_GAUGES: tuple[tuple[str, str, str, str], ...] = (
    ("mnemo_worker_queue_depth", "Exchanges archived but not yet through summaries and graph", "gauge",
     "pending"),
    ("mnemo_forget_queue_depth", "Forget requests waiting for a tier to come back", "gauge", "pending_forgets"),
    ("mnemo_dead_letters", "Records set aside after repeated failures, waiting for a retry", "gauge",
     "dead_letters"),
    ("mnemo_bundled_server_restarts", "Restarts of bundled servers since this process started", "counter",
     "restarts"),
    ("mnemo_archived_exchanges", "Exchanges in the archive (all processes)", "gauge", "exchanges"),
    ("mnemo_active_conversations", "Users and channels with a recent exchange (MEMORY__ACTIVE_MINUTES)",
     "gauge", "active"),
    ("mnemo_retention_removed_exchanges", "Exchanges the retention policy removed, all time", "counter",
     "retention_removed"),
)


class StatsCollector(Collector):
    """Reads ``MemoryStats`` at scrape time: tier health, queue depths and the fields in ``STATS_GAUGES``.

    ``read`` returns the stats, or None when they cannot be read now; then only
    ``mnemo_stats_up 0`` is reported.
    """

    def __init__(self, read: Callable[[], MemoryStats | None]) -> None:
        self._read = read

    def describe(self) -> list[Metric]:
        return []  # names depend on the stats fields present; don't collect at registration

    def collect(self) -> Iterator[Metric]:
        stats = self._read()
        yield GaugeMetricFamily("mnemo_stats_up", "1 when the stores answered this scrape's stats query",
                                value=0 if stats is None else 1)
        if stats is None:
            return
        up = GaugeMetricFamily("mnemo_tier_up", "1 when the tier answered its health ping", labels=["tier"])
        ping = GaugeMetricFamily("mnemo_tier_ping_seconds", "Time of the tier's health ping", labels=["tier"])
        for name, health in stats.tiers.items():
            up.add_metric([name], 1 if health.ok else 0)
            ping.add_metric([name], health.ms / 1000)
        yield up
        yield ping
        for metric, text, kind, field in STATS_GAUGES:
            value = getattr(stats, field, None)
            if isinstance(value, tuple):
                value = len(value)
            if value is None:
                continue
            family: GaugeMetricFamily | CounterMetricFamily
            if isinstance(value, Mapping):
                family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
                    metric, text, labels=["name"])
                for name, number in sorted(value.items()):
                    if number >= 0:
                        family.add_metric([str(name)], number)
            elif value >= 0:
                family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(metric, text,
                                                                                           value=value)
            else:
                continue
            yield family


def stats_from_loop(stats: Callable[[], Awaitable[MemoryStats]],
                    timeout: float) -> Callable[[], MemoryStats | None]:
    """A ``read`` for ``StatsCollector``: runs the coroutine function ``stats`` on the running loop
    (call this from it) for the scraping thread, waiting up to ``timeout`` seconds. Returns None on
    timeout or a store error, and at once when called on the loop's own thread (it would wait on itself).
    """
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()

    def read() -> MemoryStats | None:
        if threading.get_ident() == loop_thread:
            return None
        future = asyncio.run_coroutine_threadsafe(_call(stats), loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            log.warning("metrics: stats took over %.0f s; this scrape reports mnemo_stats_up 0", timeout)
        except MemoryStoreError as exc:
            log.warning("metrics: stats unavailable: %s", exc)
        return None
    return read


async def _call(stats: Callable[[], Awaitable[MemoryStats]]) -> MemoryStats:
    return await stats()


def serve_metrics(settings: MetricsSettings, metrics: Metrics,
                  stats: Callable[[], Awaitable[MemoryStats]]) -> MetricsServer | None:
    """Start the endpoint the settings ask for (None when ``port`` is unset): ``metrics`` plus
    ``stats()`` read at each scrape. Call from the running loop; close it with ``aclose()``.

    Raises ConfigurationError when the address cannot be bound.
    """
    if settings.port is None:
        return None
    metrics.watch_stats(stats_from_loop(stats, settings.stats_timeout_seconds))
    try:
        return MetricsServer(metrics, settings.host, settings.port).start()
    except OSError as exc:
        raise ConfigurationError("metrics.port", f"cannot serve metrics on {settings.host}:{settings.port}: "
                                 f"{exc.strerror or exc}") from exc


class MetricsServer:
    """The ``/metrics`` HTTP endpoint of one process (prometheus-client's server, in a daemon thread)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._server: Any = None

    def start(self) -> MetricsServer:
        """Listen on ``host:port``; raises OSError when the port is taken."""
        self._server, _thread = start_http_server(self.port, addr=self.host, registry=self.metrics.registry)
        self.port = self._server.server_port
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        return self

    def _stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    async def aclose(self) -> None:
        """Stop listening (waits for a scrape in progress)."""
        await asyncio.to_thread(self._stop)
