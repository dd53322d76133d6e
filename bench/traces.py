"""Trace files: write-batch vs. one request per file, through TraceWriter.

    .venv/bin/python bench/traces.py [--rounds 60]

Starts gunicorn on a scratch database and trace root, then writes the same
sets of files both ways, alternating, over a kept-alive connection: two files
(a JSON trace and a text trace, the dual-format case) and ten files.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from batchsvc_client import Client, TraceWriter

from bench._server import server


def json_trace(n: int) -> str:
    """About 6 KB, like an action trace."""
    steps = [
        {"step": i, "action": f"action-{i}", "actor": f"actor-{n}", "ms": i * 3.5, "ok": True}
        for i in range(58)
    ]
    return json.dumps({"trace_id": f"trace-{n}", "steps": steps}, indent=1)


def text_trace(n: int) -> str:
    """About 6 KB of text lines."""
    lines = [f"=== Trace {n} ==="]
    lines += [f"[{i:03}] actor-{n} did action-{i} in {i * 3.5:.1f} ms: ok" for i in range(140)]
    return "\n".join(lines) + "\n"


def files_for(round_: int, count: int) -> list[tuple[str, str]]:
    files = []
    for i in range(count):
        if i % 2 == 0:
            files.append((json_trace(round_), f"trace_{round_}_{i}.json"))
        else:
            files.append((text_trace(round_), f"trace_{round_}_{i}.txt"))
    return files


def measure(client: Client, count: int, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds per round for the batch writer and the one-by-one writer."""
    batch = TraceWriter(client, f"bench/{count}/batch", max_batch_size=count)
    single = TraceWriter(client, f"bench/{count}/single", use_batch_endpoint=False)
    times = {"batch": [], "single": []}
    for r in range(rounds):
        # Alternate who goes first so that neither always meets a warmer server.
        order = [("batch", batch), ("single", single)]
        for name, writer in order if r % 2 == 0 else order[::-1]:
            files = files_for(r, count)
            start = time.perf_counter()
            assert writer.write_formatted_traces(files), f"{name} write failed"
            times[name].append(time.perf_counter() - start)
    return times["batch"], times["single"]


def report(count: int, batch: list[float], single: list[float]) -> None:
    """Medians, and the median of the per-round ratios: each round's two ways
    run back to back, so their ratio is the figure least moved by the load of
    a shared machine drifting during the run."""
    b, s = statistics.median(batch), statistics.median(single)
    ratio = statistics.median(one / many for many, one in zip(batch, single, strict=True))
    print(
        f"  {count:2} files: write-batch {b * 1000:7.2f} ms   {count} single requests "
        f"{s * 1000:7.2f} ms   (medians of {len(batch)} rounds)"
    )
    print(
        f"           write-batch takes {1 - 1 / ratio:6.1%} less time ({ratio:.2f} x faster; "
        f"median of per-round ratios)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="rounds per case")
    args = parser.parse_args()
    with server() as (base, token, env), Client(base, token=token) as client:
        TraceWriter(client, "warm-up").write_formatted_traces(files_for(0, 2))  # connection, worker
        TraceWriter(client, "warm-up", use_batch_endpoint=False).write_formatted_traces(
            files_for(0, 2)
        )
        two = measure(client, 2, args.rounds)
        ten = measure(client, 10, args.rounds)
        written = sum(1 for p in (Path(env["VAR_DIR"]) / "traces").rglob("*") if p.is_file())
    print(f"trace files: gunicorn, SQLite, file system storage with fsync; {written} files written")
    report(2, *two)
    report(10, *ten)


if __name__ == "__main__":
    main()
