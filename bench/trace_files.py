"""Trace files on each storage: a write-batch against one request per file.

    .venv/bin/python bench/trace_files.py [--rounds 40] [--passes 5] [--only local|s3]

local: gunicorn on SQLite, the local folder with fsync on, files of about 6 KB;
a 2-file write-batch against two single writes, in several passes, each pass's
figure the median of its per-round ratios. The promise is every pass at or under
0.7 x, so the worst pass is printed.
s3: the same service with FILES_STORAGE_URL on moto's S3-compatible server (a
process of its own); a 10-file write-batch against ten single writes.

The two ways take turns inside each round, so the machine's load drifting
during the run moves both alike; the load average is printed with the figures.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from batchsvc_client import Client, TraceWriter

from bench._s3 import new_bucket, object_count, s3_server, storage_env
from bench._server import server
from bench.traces import files_for

MEDIANS: dict[str, tuple[float, float]] = {}


def ratios(client: Client, count: int, rounds: int, tag: str) -> list[float]:
    """Per round: seconds of the batch / seconds of ``count`` single writes. The
    medians of both, in ms, are kept in ``MEDIANS[tag]``."""
    batch = TraceWriter(client, f"bench/{tag}/batch", max_batch_size=count)
    single = TraceWriter(client, f"bench/{tag}/single", use_batch_endpoint=False)
    out, times = [], []
    for r in range(rounds):
        files = files_for(r, count)
        took = {}
        order = [("batch", batch), ("single", single)]
        for name, writer in order if r % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            assert writer.write_formatted_traces(files), f"{name} write failed"
            took[name] = time.perf_counter() - start
        out.append(took["batch"] / took["single"])
        times.append((took["batch"], took["single"]))
    MEDIANS[tag] = tuple(statistics.median(t[i] for t in times) * 1000 for i in (0, 1))
    return out


def warm_up(client: Client) -> None:
    for batched in (True, False):
        TraceWriter(client, "warm-up", use_batch_endpoint=batched).write_formatted_traces(
            files_for(0, 2)
        )


def local(rounds: int, passes: int) -> None:
    with server() as (base, token, env), Client(base, token=token) as client:
        warm_up(client)
        figures = [statistics.median(ratios(client, 2, rounds, f"2-{p}")) for p in range(passes)]
        written = sum(1 for p in (Path(env["VAR_DIR"]) / "traces").rglob("*") if p.is_file())
    print(f"local folder, fsync on: {written} files written, load {_load()}")
    print(
        "  2-file write-batch / two single writes, per pass: "
        + "  ".join(f"{f:.2f}" for f in figures)
        + f"   worst {max(figures):.2f} x (promise: <= 0.70 in every pass)"
    )
    print(
        "  medians per pass, batch vs singles: "
        + "  ".join(f"{b:.1f}/{s:.1f} ms" for b, s in (MEDIANS[f"2-{p}"] for p in range(passes)))
    )


def s3(rounds: int) -> None:
    with s3_server() as (url, s3_client):
        bucket = new_bucket(s3_client)
        with (
            server(extra_env=storage_env(url, bucket)) as (base, token, _),
            Client(base, token=token) as client,
        ):
            warm_up(client)
            figures = ratios(client, 10, rounds, "10")
            stored = object_count(s3_client, bucket)
            speedup = statistics.median(1 / f for f in figures)
            print(f"S3 (moto server): {stored} objects stored, load {_load()}", flush=True)
            print(
                f"  ten single writes / 10-file write-batch: {speedup:.2f} x "
                f"(median of {len(figures)} rounds; promise: >= 3); medians "
                f"{MEDIANS['10'][0]:.1f} ms vs {MEDIANS['10'][1]:.1f} ms",
                flush=True,
            )


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="rounds per pass (default: 40)")
    parser.add_argument("--passes", type=int, default=5, help="local passes (default: 5)")
    parser.add_argument("--only", choices=["local", "s3"], help="one storage only")
    args = parser.parse_args()
    if args.only != "s3":
        local(args.rounds, args.passes)
    if args.only != "local":
        s3(args.rounds)


if __name__ == "__main__":
    main()
