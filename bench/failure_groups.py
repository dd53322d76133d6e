"""The batch detail of a 100,000-item batch with 30,000 failures of three causes: how
long GET /api/v1/batches/{id}/ takes with its failure groups, on SQLite and (when one
answers on 127.0.0.1:5432) on PostgreSQL, in a database of its own.

    .venv/bin/python bench/failure_groups.py [--items 100000] [--failures 30000]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import manage, server

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "batchsvc_bench_failure_groups"

# Three causes, each written with numbers and ids that differ from item to item.
FILL = """
from django.db import connection, transaction
from batches.failures import group_key
from batches.models import Batch, Interaction
causes = [
    "openai processor: HTTP 400 Bad Request: maximum context length is 8192 tokens, "
    "you requested {n} tokens.",
    "openai processor: HTTP 503 Service Unavailable: req_{n}abc overloaded",
    "openai processor: no answer within the timeout.",
]
batch = Batch.objects.get()
ids = list(batch.interactions.order_by("row_number").values_list("pk", flat=True))
failed = set(ids[:: max(1, len(ids) // {failures})][:{failures}])
with transaction.atomic():
    rows, made = [], 0
    for n, pk in enumerate(ids):
        if pk in failed:
            error = causes[made % 3].format(n=n)
            made += 1
            rows.append(("failed", error, group_key(error), pk))
        else:
            rows.append(("succeeded", "", "", pk))
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE batches_interaction SET status = %s, error = %s, error_group = %s, "
            "finished_at = CURRENT_TIMESTAMP WHERE id = %s",
            rows,
        )
    Batch.objects.filter(pk=batch.pk).update(
        status="completed_with_errors", processed_items=len(ids) - len(failed),
        failed_items=len(failed),
    )
with connection.cursor() as cursor:
    cursor.execute("ANALYZE")
print(batch.pk)
"""


def csv_rows(count: int) -> bytes:
    lines = ["question,chat_id"] + [f"Question {n}: what is {n} + {n}?," for n in range(count)]
    return ("\n".join(lines) + "\n").encode()


def measure(label: str, items: int, failures: int, env: dict) -> None:
    with server(workers=1, extra_env={"BATCH_MAX_ROWS": str(items), **env}) as (base, token, e):
        http = httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=600)
        upload = http.post(
            "/api/v1/batches/", files={"file": ("q.csv", csv_rows(items), "text/csv")}
        )
        assert upload.status_code == 202, upload.text[:300]
        batch_id = manage(e, "shell", "-c", FILL.replace("{failures}", str(failures)))
        batch_id = batch_id.strip().splitlines()[-1]
        times = []
        for _ in range(12):
            start = time.perf_counter()
            response = http.get(f"/api/v1/batches/{batch_id}/")
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text[:300]
        groups = response.json()["failure_groups"]
        times = sorted(times[2:])  # the first two warm the caches
        print(
            f"{label}: {items:,} items, {failures:,} failed in {len(groups)} groups "
            f"({', '.join(str(g['count']) for g in groups)}): batch detail median "
            f"{statistics.median(times):.0f} ms, slowest {times[-1]:.0f} ms (goal: 200 ms)"
        )


def postgres_env() -> dict | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
            conn.execute(f"CREATE DATABASE {PG_DATABASE}")
    except Exception as exc:
        print(f"PostgreSQL: skipped ({exc.__class__.__name__})")
        return None
    return {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{PG_DATABASE}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--failures", type=int, default=30_000)
    args = parser.parse_args()
    measure("SQLite", args.items, args.failures, {})
    if (env := postgres_env()) is not None:
        try:
            measure("PostgreSQL", args.items, args.failures, env)
        finally:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    main()
