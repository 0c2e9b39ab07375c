"""`GET /metrics`: the cluster's job and queue numbers in the Prometheus text format.

The numbers live in Redis (workers/protocol/stats.py), so a collector reads them at scrape time
through the read-only `monitor` user; any web host answers for the whole cluster.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

import redis
from bottle import Bottle, HTTPResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from config import Settings
from workers.protocol import backlog as costs
from workers.protocol import queue as readings
from workers.protocol import stats
from workers.protocol.connection import connect
from workers.protocol.keys import Keys

log = logging.getLogger("tessera.web.metrics")


def monitor_client(settings: Settings) -> redis.Redis | None:
    """A client as the read-only `monitor` user; None when ACLs are on but that user has no password."""
    if settings.redis.acl and not settings.redis.monitor_password:
        return None
    return connect(settings.redis, "monitor", timeout=2.0)


def unavailable(reason: str) -> HTTPResponse:
    return HTTPResponse(f"503 Service Unavailable: {reason}\n", status=503,
                        headers={"Content-Type": "text/plain; charset=utf-8", "Retry-After": "5",
                                 "Cache-Control": "no-store"})


class ClusterCollector(Collector):
    """Reads the stats, the queue and the heartbeats from Redis on every collect()."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r, self.keys = r, keys

    def collect(self) -> Iterator[Metric]:
        counters = stats.read_counters(self.r, self.keys)
        queue = readings.read_queue(self.r, self.keys)
        beats = readings.heartbeats(self.r, self.keys)
        backlog = costs.read_backlog(self.r, self.keys)
        yield CounterMetricFamily("tessera_jobs_submitted", "Jobs accepted and queued.", value=counters.submitted)
        yield CounterMetricFamily("tessera_jobs_done", "Jobs finished with a mosaic.", value=counters.done)
        yield CounterMetricFamily("tessera_jobs_failed", "Jobs finished with an error.", value=counters.failed)
        yield CounterMetricFamily("tessera_jobs_canceled", "Jobs canceled on request, queued or running.",
                                  value=counters.canceled)
        yield CounterMetricFamily("tessera_jobs_vanished", "Jobs whose status vanished before its time (a lost "
                                  "write), found by the reconciler.", value=counters.vanished)
        yield HistogramMetricFamily("tessera_build_seconds", "Seconds a worker took to build and store a mosaic.",
                                    buckets=counters.buckets, sum_value=counters.build_sum)
        yield GaugeMetricFamily("tessera_queue_depth", "Jobs not yet delivered to any worker.", value=queue.depth)
        yield GaugeMetricFamily("tessera_queue_inbox", "Jobs submitted and not yet admitted to the stream.",
                                value=queue.inbox)
        yield GaugeMetricFamily("tessera_queue_pending", "Jobs delivered to a worker and not yet acknowledged.",
                                value=queue.pending)
        if backlog.sampled:  # past backlog.CAP jobs a random sample stands for the set: say so
            log.warning("metrics: tessera_backlog_seconds estimated from a sample of %d jobs", costs.CAP)
        yield GaugeMetricFamily("tessera_backlog_seconds", "Predicted seconds of work in the jobs not finished (inbox, "
                                "stream lag and pending), from each job's cost and recent build times.",
                                value=backlog.seconds)
        yield GaugeMetricFamily("tessera_backlog_estimated", "1 when tessera_backlog_seconds comes from a random "
                                "sample of the backlog (more jobs than the reader's cap), else 0.",
                                value=1.0 if backlog.sampled else 0.0)
        yield GaugeMetricFamily("tessera_dead_letters", "Jobs given up after too many deliveries.", value=queue.dead)
        workers = GaugeMetricFamily("tessera_workers", "Live workers (fresh heartbeat) per node.", labels=["node"])
        for node, count in sorted(Counter(beat.get("node", "?") for beat in beats).items()):
            workers.add_metric([node], count)
        yield workers


def register(app: Bottle, settings: Settings) -> None:
    client = monitor_client(settings)
    registry = CollectorRegistry()
    if client is not None:
        registry.register(ClusterCollector(client, Keys(settings.redis.prefix)))

    @app.get("/metrics")
    def metrics() -> HTTPResponse:
        if client is None:
            return unavailable("redis.monitor_password is not set")
        try:
            body = generate_latest(registry)
        except redis.RedisError as exc:  # down, or a role without the rights: an answer, not a traceback
            log.warning("metrics: redis: %s", exc)
            return unavailable("redis unreachable")
        return HTTPResponse(body, status=200, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                                       "Cache-Control": "no-store"})
