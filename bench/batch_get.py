"""Batch GET: 100 runs in one POST /api/v1/batch/get vs 100 single GETs, over real HTTP.

    .venv/bin/python bench/batch_get.py [--runs 100] [--rounds 5]

Also compares the response bytes of full objects with those of three chosen fields.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import server
from bench.ingest import realistic_run

FIELDS = ["run_id", "status", "start_time"]


def store_runs(http: httpx.Client, count: int) -> list[str]:
    runs = [realistic_run(n) for n in range(count)]
    response = http.post("/api/v1/runs/batch", json={"runs": runs})
    assert response.status_code == 201, response.text[:300]
    return [run["run_id"] for run in runs]


def singles(http: httpx.Client, ids: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    size = 0
    for run_id in ids:
        response = http.get(f"/api/v1/runs/{run_id}/")
        assert response.status_code == 200, response.text[:300]
        size += len(response.content)
    return time.perf_counter() - start, size


def batch(http: httpx.Client, ids: list[str], fields=None) -> tuple[float, int]:
    body = {"resource_type": "runs", "ids": ids}
    if fields:
        body["fields"] = fields
    start = time.perf_counter()
    response = http.post("/api/v1/batch/get", json=body)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text[:300]
    assert response.json()["total_succeeded"] == len(ids)
    return elapsed, len(response.content)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="runs per fetch")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each kind")
    args = parser.parse_args()

    with server(extra_env={"BATCH_GET_MAX_IDS": str(args.runs)}) as (base, token, _env):
        headers = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            ids = store_runs(http, args.runs)
            singles(http, ids[:10])  # warm both workers and the connection
            batch(http, ids)
            times = {"singles": [], "batch": [], "fields": []}
            for _ in range(args.rounds):  # interleaved, so both see the same machine load
                single_s, single_bytes = singles(http, ids)
                batch_s, full_bytes = batch(http, ids)
                fields_s, fields_bytes = batch(http, ids, FIELDS)
                times["singles"].append(single_s)
                times["batch"].append(batch_s)
                times["fields"].append(fields_s)

    median = {kind: statistics.median(values) * 1000 for kind, values in times.items()}
    print(f"{args.runs} runs fetched, median of {args.rounds} rounds, gunicorn (2 workers), SQLite")
    print(f"  {args.runs} single GETs                {median['singles']:8.1f} ms")
    print(
        f"  1 batch GET, full objects      {median['batch']:8.1f} ms   "
        f"{median['singles'] / median['batch']:5.1f} x less wall time"
    )
    print(
        f"  1 batch GET, fields of 3 names {median['fields']:8.1f} ms   "
        f"{median['singles'] / median['fields']:5.1f} x less wall time"
    )
    print(f"  response bytes: {args.runs} single GETs {single_bytes:,}")
    print(f"  response bytes: batch GET, full objects {full_bytes:,}")
    print(
        f"  response bytes: batch GET, fields={','.join(FIELDS)} {fields_bytes:,}   "
        f"{100 * (1 - fields_bytes / full_bytes):.0f} % fewer than full objects"
    )


if __name__ == "__main__":
    main()
