"""Hosts that share no disk: two web hosts and two worker hosts, each with a VAR_DIR of
its own, on one PostgreSQL database, one Redis and one S3-compatible server.

    .venv/bin/python bench/cluster.py [--turns 12]

- PostgreSQL: a database of its own (``batchsvc_cluster_<random>``) created on
  DATABASE_URL's server (default 127.0.0.1:5432) and dropped at the end.
- Redis: CACHE_URL on 127.0.0.1:6379 with a database number no one uses (throttle
  counters and rate-limit budgets); only the keys it wrote are deleted at the end.
- S3: moto's server in a process of its own, a fresh bucket, FILES_STORAGE_URL.
- A stub model API that enforces a rate limit as a provider does.

It drives every write path through both web hosts and checks what must hold across
hosts: files written through one are read through the other, a batch uploaded
through one is processed by the workers of both, the rate-limit budget and the
throttle are one for all hosts, and each host's /metrics counts its own requests
exactly. Then it measures runs ingested through one web host against the same load
spread over both, taking turns, and prints the ratio.
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._model_stub import ModelStub
from bench._s3 import new_bucket, s3_server, storage_env
from bench._server import PYTHON, ROOT, server
from bench.batches import token_of, upload, wait_for, xlsx
from bench.scale import batch_runs

ADMIN_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_HOST = "redis://127.0.0.1:6379"
RPM = 120
WORKER = (
    PYTHON,
    "manage.py",
    "db_worker",
    "--interval",
    "0.05",
    "--no-startup-delay",
    "--worker-id",
)
CHECKS: list[tuple[str, bool, str]] = []


def check(what: str, ok: bool, detail: str = "") -> None:
    CHECKS.append((what, ok, detail))
    print(f"  [{'ok' if ok else 'FAILED'}] {what}{': ' + detail if detail else ''}", flush=True)


@contextmanager
def own_database():
    """A PostgreSQL database of this run's own, dropped afterwards."""
    name = f"batchsvc_cluster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(ADMIN_URL)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def own_redis_db():
    """A Redis database number that holds no keys now; the keys written there are
    deleted afterwards (nobody else's, since it was empty)."""
    for number in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS_HOST}/{number}")
        if client.dbsize() == 0:
            break
    else:
        raise SystemExit("no empty Redis database number on 127.0.0.1:6379")
    try:
        yield f"{REDIS_HOST}/{number}"
    finally:
        for pattern in (":1:*", "batchsvc:*"):
            keys = list(client.scan_iter(pattern))
            if keys:
                client.delete(*keys)


def worker_host(stack: ExitStack, env: dict, name: str) -> subprocess.Popen:
    """A db_worker with a VAR_DIR of its own, its id naming its host."""
    var = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"batchsvc-{name}-"))
    return subprocess.Popen(
        [*WORKER, name],
        cwd=ROOT,
        env={**env, "VAR_DIR": var, "PROMETHEUS_MULTIPROC_DIR": f"{var}/prometheus"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def web_host(stack: ExitStack, env: dict) -> tuple[httpx.Client, str, dict]:
    base, token, host_env = stack.enter_context(server(workers=2, extra_env=env))
    http = httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=120)
    stack.callback(http.close)
    return http, token, host_env


def metric(http: httpx.Client, name: str, **labels) -> float:
    """The sum of ``name``'s samples with these labels in a host's /metrics."""
    text = http.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


# Checks ---------------------------------------------------------------------------


def files_cross_hosts(a: httpx.Client, b: httpx.Client) -> None:
    data = json.dumps({"steps": list(range(500))})
    written = a.post(
        "/api/v1/traces/write",
        json={"trace_data": data, "file_name": "t.json", "output_directory": "cluster"},
    ).json()
    read = b.get(f"/api/v1/traces/{written['id']}/content").content
    check(
        "a trace file written through web A is read through web B",
        read == data.encode() and written["sha256"] == hashlib.sha256(read).hexdigest(),
        f"{len(read)} bytes, sha256 equal",
    )
    files = [
        {"trace_data": f"file {n}", "file_name": f"{n}.txt", "output_directory": "cluster"}
        for n in range(10)
    ]
    batch = b.post("/api/v1/traces/write-batch", json={"files": files}).json()
    ok = all(
        a.get(f"/api/v1/traces/{r['id']}/content").content == f"file {r['index']}".encode()
        for r in batch["results"]
    )
    check("a 10-file batch written through web B is read through web A", ok)
    line = json.dumps(
        {"custom_id": "1", "method": "POST", "url": "/v1/chat/completions", "body": {}}
    )
    bearer = {"Authorization": a.headers["Authorization"].replace("Token ", "Bearer ")}
    uploaded = a.post(
        "/openai/v1/files",
        files={"file": ("q.jsonl", line.encode() + b"\n")},
        data={"purpose": "batch"},
        headers=bearer,
    ).json()
    content = b.get(f"/openai/v1/files/{uploaded['id']}/content", headers=bearer).content
    check(
        "an OpenAI-compatible file uploaded to web A is read through web B",
        content == (line + "\n").encode(),
    )


def batch_on_both_workers(a: httpx.Client, b: httpx.Client, database_url: str) -> None:
    batch_id, _ = upload(a, xlsx(400, chat_size=1), "cluster.xlsx", concurrency="16")
    done = wait_for(b, batch_id)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT worker_ids FROM django_tasks_database_dbtaskresult "
            "WHERE args_kwargs::text LIKE %s",
            [f"%{batch_id}%"],
        ).fetchall()
    hosts = sorted({worker for (ids,) in rows for worker in ids})
    check(
        "a batch uploaded through web A is processed by the workers of both worker hosts",
        done["status"] == "processed" and done["processed_items"] == 400 and len(hosts) == 2,
        f"{done['processed_items']} items, status {done['status']}, tasks run by {hosts}",
    )


def budget_across_hosts(a: httpx.Client, stub: ModelStub) -> None:
    rows = 150
    started = time.monotonic()
    batch_id, _ = upload(
        a, xlsx(rows, chat_size=1), "rates.xlsx", processor="openai", concurrency="32"
    )
    done = wait_for(a, batch_id)
    _, most = stub.windows()
    check(
        f"one rate-limit budget ({RPM} requests/minute) for the workers of both hosts",
        stub.rejected() == 0 and most <= RPM and done["processed_items"] == rows,
        f"{stub.rejected()} x 429 from the provider, at most {most} requests in any 60 s, "
        f"{rows} items in {time.monotonic() - started:.0f} s",
    )


def throttle_across_hosts(env: dict) -> None:
    """Two more web hosts with a tight throttle: one budget for both."""
    limit = 20
    with ExitStack() as stack:
        hosts = [
            web_host(
                stack, {**env, "BATCH_THROTTLE_RATE": f"{limit}/minute", "LOG_LEVEL": "ERROR"}
            )[0]
            for _ in range(2)
        ]
        var = stack.enter_context(tempfile.TemporaryDirectory(prefix="batchsvc-manage-"))
        token = token_of({**env, "VAR_DIR": var}, f"throttled-{uuid.uuid4().hex[:6]}")
        statuses = []
        for n in range(30):
            http = hosts[n % 2]
            statuses.append(
                http.post(
                    "/api/v1/runs/batch",
                    json={"runs": batch_runs()[:1]},
                    headers={"Authorization": f"Token {token}"},
                ).status_code
            )
    accepted = sum(1 for s in statuses if s < 300)
    check(
        f"the batch throttle ({limit}/minute) holds across the two web hosts",
        accepted == limit and statuses.count(429) == 30 - limit,
        f"{accepted} accepted, {statuses.count(429)} x 429 of 30 sent alternately",
    )


def metrics_per_host(a: httpx.Client, b: httpx.Client) -> None:
    before = [metric(h, "batchsvc_bulk_items_total", resource="runs") for h in (a, b)]
    for _ in range(3):
        assert a.post("/api/v1/runs/batch", json={"runs": batch_runs()[:100]}).status_code < 300
    after = [metric(h, "batchsvc_bulk_items_total", resource="runs") for h in (a, b)]
    check(
        "each host's /metrics counts its own requests: 300 runs through web A",
        after[0] - before[0] == 300 and after[1] == before[1],
        f"web A +{after[0] - before[0]:.0f}, web B +{after[1] - before[1]:.0f}",
    )


# Throughput ----------------------------------------------------------------------


def throughput(a: httpx.Client, b: httpx.Client, rounds: int) -> None:
    """Runs per second: four senders on web A alone, then two on each host."""
    bodies = [{"runs": batch_runs()} for _ in range(4)]

    def phase(hosts) -> float:
        for body in bodies:  # fresh event_ids: every run is new
            body["runs"] = batch_runs()
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(lambda i: hosts[i].post("/api/v1/runs/batch", json=bodies[i]), range(4))
            )
        took = time.perf_counter() - started
        assert all(r.status_code == 201 for r in answers), [r.status_code for r in answers]
        return sum(len(body["runs"]) for body in bodies) / took

    one, two = [], []
    for r in range(rounds):
        turns = [(one, [a, a, a, a]), (two, [a, b, a, b])]
        for into, hosts in turns if r % 2 == 0 else turns[::-1]:
            into.append(phase(hosts))
    ratio = statistics.median(t / o for t, o in zip(two, one, strict=True))
    print(
        f"  throughput: one web host {statistics.median(one):,.0f} runs/s, two web hosts "
        f"{statistics.median(two):,.0f} runs/s; two / one = {ratio:.2f} x (median of "
        f"{rounds} rounds, promise >= 0.9), load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    check("two web hosts keep >= 0.9 x one host's throughput", ratio >= 0.9, f"{ratio:.2f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=12, help="throughput turns (default: 12)")
    args = parser.parse_args()
    stub = ModelStub(delay=0.05, requests_per_window=RPM, window=60)
    with ExitStack() as stack:
        database_url = stack.enter_context(own_database())
        cache_url = stack.enter_context(own_redis_db())
        s3_url, s3 = stack.enter_context(s3_server())
        env = {
            **os.environ,
            "SECRET_KEY": "bench",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": database_url,
            "CACHE_URL": cache_url,
            "OPENAI_BASE_URL": f"{stub.url}/v1",
            "OPENAI_API_KEY": "cluster",
            "BATCH_RATE_LIMITS": json.dumps({"openai": {"requests_per_minute": RPM}}),
            "BATCH_THROTTLE_RATE": "",
            **storage_env(s3_url, new_bucket(s3)),
        }
        print(
            f"cluster: PostgreSQL database {urlsplit(database_url).path[1:]}, Redis "
            f"{cache_url}, S3 {s3_url}; web A, web B, worker C, worker D, each its own VAR_DIR"
        )
        a, _, env_a = web_host(stack, env)
        b, _, env_b = web_host(stack, env)
        assert env_a["VAR_DIR"] != env_b["VAR_DIR"]
        workers = [worker_host(stack, env, name) for name in ("host-c", "host-d")]
        for worker in workers:
            stack.callback(worker.wait, 30)
            stack.callback(worker.terminate)
        files_cross_hosts(a, b)
        batch_on_both_workers(a, b, database_url)
        budget_across_hosts(a, stub)
        throttle_across_hosts(env)
        metrics_per_host(a, b)
        throughput(a, b, args.turns)
    stub.stop()
    failed = [what for what, ok, _ in CHECKS if not ok]
    print(f"{len(CHECKS) - len(failed)} of {len(CHECKS)} cross-host checks held")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
