import json
import os
import uuid
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.utils import timezone
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from batches.engine.heartbeats import Heartbeat
from batches.models import Interaction, InteractionStatus
from tests.batches.factories import make_batch
from tests.conftest import error_body, make_run
from tests.support.servers import served_app

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict:
    """``{(name, (label, value), ...): value}`` of a scrape."""
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scrape: dict, name: str, **labels) -> float:
    return scrape.get((name, *sorted(labels.items())), 0.0)


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


def ours() -> dict:
    """This process's counters and histograms only, as a scrape adds them up: the
    suite's other processes share its metrics folder and count their own requests
    meanwhile."""
    folder = Path(settings.PROMETHEUS_MULTIPROC_DIR)
    files = [folder / f"{kind}_{os.getpid()}.db" for kind in ("counter", "histogram")]
    metrics = MultiProcessCollector.merge([str(f) for f in files if f.exists()])
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for metric in metrics
        for sample in metric.samples
    }


def test_bulk_items_are_counted_by_resource_and_result(api, anonymous, run_factory):
    before = ours()
    kept = run_factory()
    api.post("/api/v1/runs/batch", {"runs": [kept]}, format="json")
    api.post("/api/v1/runs/batch", {"runs": [kept, run_factory(), {"nope": 1}]}, format="json")
    after, scraped = ours(), scrape(anonymous)

    def added(result):
        return value(after, "batchsvc_bulk_items_total", resource="runs", result=result) - value(
            before, "batchsvc_bulk_items_total", resource="runs", result=result
        )

    assert (added("created"), added("existing"), added("failed")) == (2, 1, 1)
    sizes = "batchsvc_bulk_request_items_count"
    assert value(after, sizes, resource="runs") - value(before, sizes, resource="runs") == 2
    # The scrape adds every process's up: ours are in it.
    counted = "batchsvc_bulk_items_total"
    assert value(scraped, counted, resource="runs", result="failed") >= value(
        after, counted, resource="runs", result="failed"
    )


def test_requests_are_counted_by_route_not_by_path(api, anonymous):
    before = ours()
    for run_id in ("a", "b", "c"):
        api.get(f"/api/v1/runs/{run_id}/")
    after = ours()
    labels = {"route": "run-detail", "method": "GET", "status": "404"}
    name = "batchsvc_http_requests_total"
    assert value(after, name, **labels) - value(before, name, **labels) == 3
    assert not any("/api/v1/runs/a/" in str(key) for key in after)


def test_the_database_gauges_are_read_at_scrape_time(anonymous, alice):
    make_batch(alice, [("q1", ""), ("q2", ""), ("q3", "")])
    Heartbeat().beat()
    after = scrape(anonymous)
    assert value(after, "batchsvc_pending_items") == 3
    assert value(after, "batchsvc_active_batches", status="queued") == 1
    assert value(after, "batchsvc_active_batches", status="processing") == 0
    assert value(after, "batchsvc_live_workers") == 1
    assert 0 <= value(after, "batchsvc_worker_heartbeat_age_seconds") < 60


def test_the_gauges_say_how_many_items_run_of_what_the_workers_threads_can(
    anonymous, alice, settings
):
    settings.BATCH_CONCURRENCY = 3  # the threads this (heartbeating) worker reports
    batch = make_batch(alice, [("q1", ""), ("q2", ""), ("q3", "")])
    two = batch.interactions.values_list("pk", flat=True)[:2]
    Interaction.objects.filter(pk__in=list(two)).update(
        status=InteractionStatus.RUNNING, heartbeat_at=timezone.now()
    )
    Heartbeat().beat()

    after = scrape(anonymous)

    assert value(after, "batchsvc_worker_threads") == 3
    assert value(after, "batchsvc_running_items") == 2


def test_metrics_are_refused_to_other_machines_by_default(anonymous):
    response = anonymous.get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 403
    assert error_body(response) == {
        "error": "Metrics are served only to this machine unless METRICS_TOKEN is set."
    }


def test_a_request_forwarded_by_a_local_proxy_is_not_from_this_machine(anonymous):
    response = anonymous.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 403


def test_with_a_token_metrics_need_it_from_anywhere(anonymous, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    assert anonymous.get("/metrics").status_code == 403
    assert anonymous.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    response = anonymous.get(
        "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token"
    )
    assert response.status_code == 200


def test_metrics_add_up_the_items_of_two_gunicorn_processes(tmp_path):
    server, token = served_app(tmp_path, "--workers", "2", LOG_LEVEL="INFO", LOG_FORMAT="json")
    created = 0
    with server:
        headers = {"Authorization": f"Token {token}"}
        for _ in range(200):
            runs = [make_run(event_id=str(uuid.uuid4())) for _ in range(3)]
            # A new connection each time, so that either process may take it.
            response = httpx.post(
                f"{server.url}/api/v1/runs/batch", json={"runs": runs}, headers=headers
            )
            created += response.json()["created"]
            if len(batch_pids(server.output())) == 2 and created >= 30:
                break
        assert len(batch_pids(server.output())) == 2, "one process took every request"
        totals = {
            value(
                samples(httpx.get(f"{server.url}/metrics").text),
                "batchsvc_bulk_items_total",
                resource="runs",
                result="created",
            )
            for _ in range(6)
        }
    assert totals == {created}


def batch_pids(output: str) -> set[int]:
    """The processes that logged answering a runs batch."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return {line["process"] for line in lines if line.get("route") == "run-batch"}
