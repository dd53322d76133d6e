"""Prometheus metrics, summed over every process of the service on this machine.

prometheus_client's multiprocess mode: each process (gunicorn workers, db_worker)
writes its counters to files in PROMETHEUS_MULTIPROC_DIR (settings point it under
var/), and a scrape of any web process adds up every file there. gunicorn.conf.py
cleans the directory when the server starts and marks exited workers dead.

Gauges that describe the database (pending items, active batches, worker
heartbeats) are computed when scraped, by collectors the apps register with
:func:`register_collector`: they are the same whichever process answers.
"""

import hmac
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import JsonResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.django import PrometheusDjangoView

from batchsvc.api.errors import error_body
from batchsvc.ops.logs import bind

REQUESTS = Counter(
    "batchsvc_http_requests",
    "HTTP requests answered, by route and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "batchsvc_http_request_duration_seconds", "Time to answer a request, by route.", ["route"]
)
BULK_ITEMS = Counter(
    "batchsvc_bulk_items",
    "Items of bulk requests, by resource and result.",
    ["resource", "result"],
)
BULK_SIZES = Histogram(
    "batchsvc_bulk_request_items",
    "Items per bulk request, by resource.",
    ["resource"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
BATCH_ITEMS = Counter(
    "batchsvc_batch_items",
    "Batch items a worker finished, by processor and result.",
    ["processor", "result"],
)
PROCESSOR_SECONDS = Histogram(
    "batchsvc_processor_call_duration_seconds",
    "Time of one processor call, by processor.",
    ["processor"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)


def observe_request(*, route: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(route, method, str(status)).inc()
    REQUEST_SECONDS.labels(route).observe(seconds)


def observe_bulk(*, resource: str, size: int, counts: dict[str, int]) -> None:
    """Count a bulk request's items by result, here and on the request's log line."""
    bind(resource=resource, items=counts)
    BULK_SIZES.labels(resource).observe(size)
    for result, count in counts.items():
        if count:
            BULK_ITEMS.labels(resource, result).inc(count)


def observe_batch_item(*, processor: str, ok: bool, seconds: float) -> None:
    BATCH_ITEMS.labels(processor, "succeeded" if ok else "failed").inc()
    PROCESSOR_SECONDS.labels(processor).observe(seconds)


# Scrape-time collectors ------------------------------------------------------------

_collectors: list[Callable[[], Iterable[Metric]]] = []


def register_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """Add a function yielding metric families, called at every scrape (an app's
    ``ready()`` registers its own). Registered once at start-up, read-only after."""
    if collect not in _collectors:
        _collectors.append(collect)


class _AppCollector:
    def collect(self) -> Iterable[Metric]:
        for collect in _collectors:
            yield from collect()


def gauge(name: str, documentation: str, value: float) -> Metric:
    """A gauge of one value, without labels."""
    return GaugeMetricFamily(name, documentation, value=value)


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    registry.register(_AppCollector())
    return registry


# The endpoint ----------------------------------------------------------------------

LOOPBACK = ("127.0.0.1", "::1")


def allowed(request) -> bool:
    """With METRICS_TOKEN set, a matching ``Authorization: Bearer`` header; without
    it, a direct connection from this machine. A request forwarded by a proxy on
    this machine is not direct: it may come from anywhere."""
    if settings.METRICS_TOKEN:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.encode(), settings.METRICS_TOKEN.encode()
        )
    forwarded = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    return request.META.get("REMOTE_ADDR") in LOOPBACK and not forwarded


class MetricsView(PrometheusDjangoView):
    """``GET /metrics`` in Prometheus' text format."""

    def dispatch(self, request, *args, **kwargs):
        if not allowed(request):
            message = (
                "Metrics need the METRICS_TOKEN as a Bearer token."
                if settings.METRICS_TOKEN
                else "Metrics are served only to this machine unless METRICS_TOKEN is set."
            )
            return JsonResponse(error_body(message), status=403)
        self.registry = scrape_registry()
        return super().dispatch(request, *args, **kwargs)
