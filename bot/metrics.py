"""Prometheus metrics of the webhook service (GET /metrics).

A job's GitHub and Hub calls run in the service process (its queue threads), only the estimate runs in worker
processes, so one registry holds everything; no multiprocess mode needed.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]


class ServiceMetrics:
    """The service's metrics in their own registry (so several apps can live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter("vram_check_deliveries", "Webhook deliveries by event and outcome",
                                  ["event", "outcome"], registry=self.registry)
        self.ack_seconds = Histogram("vram_check_ack_seconds", "Time to answer a webhook delivery",
                                     registry=self.registry,
                                     buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
        self.jobs = Counter("vram_check_jobs", "Background jobs by kind and outcome", ["kind", "outcome"],
                            registry=self.registry)
        self.job_seconds = Histogram("vram_check_job_seconds", "Background job duration, queueing included",
                                     ["kind"], registry=self.registry,
                                     buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60))
        self.superseded = Counter("vram_check_jobs_superseded", "Queued checks replaced by a newer delivery",
                                  registry=self.registry)
        self.in_flight = Gauge("vram_check_jobs_in_flight", "Jobs queued or running", registry=self.registry)
        self.github_calls = Counter("vram_check_github_calls", "GitHub API calls by outcome", ["outcome"],
                                    registry=self.registry)
        self.hub_calls = Counter("vram_check_hub_calls", "Model resolutions (Hub or catalog) by outcome",
                                 ["outcome"], registry=self.registry)
        self.failures = Counter("vram_check_failures", "Failures by stage (what the comment reports)",
                                ["stage"], registry=self.registry)

    def record_calls(self, github: Mapping[str, int], hub: Mapping[str, int]) -> None:
        for outcome, count in github.items():
            self.github_calls.labels(outcome).inc(count)
        for outcome, count in hub.items():
            self.hub_calls.labels(outcome).inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
