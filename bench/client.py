"""The client package and its ``batchsvc`` command line:

1. ``batchsvc runs upload`` of a JSON Lines file vs the library's ``upload_runs`` of the
   same file (its lines read the same way), taking turns, each into a fresh database:
   the command line's throughput as a share of the library's;
2. ``batchsvc logs send`` fed by a pipe that writes its lines as fast as it can: every
   line stored, and its requests as a share of one request per line;
3. the client installed alone in a fresh venv (``pip install ./client``): how long it
   takes, that it brings no Django, and how long ``import batchsvc_client`` takes.

    .venv/bin/python bench/client.py [--runs 100000] [--lines 10000] [--rounds 3]

Everything runs against gunicorn on a scratch database, over real HTTP.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from batchsvc_client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import ROOT, server

BATCHSVC = Path(sys.executable).with_name("batchsvc")


def write_runs(path: Path, count: int) -> None:
    """``count`` runs of about 0.5 KB, one a line, with new event ids and run ids."""
    tag = uuid.uuid4().hex[:8]
    with open(path, "w") as out:
        for n in range(count):
            run = {
                "event_id": str(uuid.uuid4()),
                "run_id": f"bench-{tag}-{n:07d}",
                "agent_name": "launch.orchestrator",
                "job_type": "launch",
                "product": "words",
                "git_repo": "https://example.com/org/repo.git",
                "git_branch": "main",
                "git_commit": "3f2c1e0",
                "status": "success",
                "start_time": "2026-01-28T10:30:00Z",
                "metrics_json": {"pages": n, "tokens": {"in": 1200, "out": 340}},
                "context_json": {"trace_id": uuid.uuid4().hex, "tags": ["a", "b"]},
            }
            out.write(json.dumps(run) + "\n")


def with_library(base: str, token: str, path: Path) -> float:
    """Seconds for upload_runs of the file, read line by line as the command reads it."""
    start = time.perf_counter()
    with Client(base, token) as client, open(path, "rb") as lines:
        summary = client.upload_runs(json.loads(line) for line in lines if line.strip())
    elapsed = time.perf_counter() - start
    assert summary["failed"] == 0 and summary["created"] > 0, summary
    return elapsed


def with_command(env: dict, path: Path) -> float:
    """Seconds for ``batchsvc runs upload FILE``, the process's start included."""
    start = time.perf_counter()
    done = subprocess.run(
        [BATCHSVC, "runs", "upload", str(path), "--json"], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["failed"] == 0
    return elapsed


def upload_figures(runs: int, rounds: int, scratch: Path) -> dict[str, list[float]]:
    """Runs per second each way, ``rounds`` times, taking turns (the library first in
    even rounds, the command first in odd ones). Each upload is of the same file into
    a server on a fresh database, so that neither meets a table the other has grown."""
    path = scratch / "runs.jsonl"
    write_runs(path, runs)
    rates: dict[str, list[float]] = {"library": [], "command": []}
    for round in range(rounds):
        order = ("library", "command") if round % 2 == 0 else ("command", "library")
        for way in order:
            with server() as (base, token, _):
                if way == "library":
                    seconds = with_library(base, token, path)
                else:
                    env = {**os.environ, "BATCHSVC_URL": base, "BATCHSVC_TOKEN": token}
                    seconds = with_command(env, path)
            rates[way].append(runs / seconds)
    return rates


def logs_figures(base: str, token: str, env: dict, lines: int) -> tuple[int, int]:
    """(lines stored, requests) for ``producer | batchsvc logs send RUN``."""
    run_id = f"bench-{uuid.uuid4().hex[:12]}"
    with Client(base, token) as client:
        client.upload_runs(
            [
                {
                    "event_id": str(uuid.uuid4()),
                    "run_id": run_id,
                    "agent_name": "bench",
                    "job_type": "bench",
                    "start_time": "2026-01-28T10:30:00Z",
                }
            ]
        )
        producer = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"for n in range({lines}): print(f'[step {{n // 50}}] compiling module_{{n:05d}}"
                f".py ({{n * 37 % 900}} ms, cache miss)')",
            ],
            stdout=subprocess.PIPE,
        )
        done = subprocess.run(
            [BATCHSVC, "logs", "send", run_id, "--json"],
            stdin=producer.stdout,
            env=env,
            capture_output=True,
            text=True,
        )
        producer.stdout.close()
        producer.wait()
        assert done.returncode == 0, done.stderr
        requests = json.loads(done.stdout)["requests"]
        stored = sum(1 for _ in client.log_lines(run_id, page_size=1000))
    return stored, requests


def install_figures(scratch: Path) -> dict:
    """A fresh venv with the client alone: seconds to create it and to install the
    client, whether Django came along, and the import's seconds (best of five, less
    the interpreter's own start)."""
    venv = scratch / "venv"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    created = time.perf_counter()
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", ROOT / "client"],
        check=True,
        capture_output=True,
    )
    installed = time.perf_counter()
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True
    )
    names = {package["name"].lower() for package in json.loads(listed.stdout)}

    def best(code: str) -> float:
        times = []
        for _ in range(5):
            begin = time.perf_counter()
            subprocess.run([python, "-c", code], check=True, env={"PATH": os.environ["PATH"]})
            times.append(time.perf_counter() - begin)
        return min(times)

    imported = best("import batchsvc_client, batchsvc_client.cli") - best("pass")
    return {
        "venv": created - start,
        "install": installed - created,
        "django": "django" in names,
        "packages": len(names),
        "import": imported,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batchsvc-bench-client-") as scratch:
        scratch = Path(scratch)
        rates = upload_figures(args.runs, args.rounds, scratch)
        with server() as (base, token, _):
            env = {**os.environ, "BATCHSVC_URL": base, "BATCHSVC_TOKEN": token}
            stored, requests = logs_figures(base, token, env, args.lines)
        installed = install_figures(scratch)
    ratios = sorted(c / lib for c, lib in zip(rates["command"], rates["library"], strict=True))
    print(
        f"runs upload, {args.runs:,} runs from JSON Lines, each into a fresh database, "
        f"{args.rounds} turns: batchsvc {statistics.median(rates['command']):,.0f} runs/s vs "
        f"upload_runs {statistics.median(rates['library']):,.0f} runs/s (medians) = "
        f"{statistics.median(ratios):.2f} x, turns {ratios[0]:.2f} to {ratios[-1]:.2f} x "
        "(goal >= 0.8 x)"
    )
    print(
        f"logs send, {args.lines:,} lines from a pipe: {stored:,} stored in {requests} requests "
        f"= {100 * requests / args.lines:.2f} % of one per line (goal <= 1 %)"
    )
    print(
        f"client alone in a fresh venv: venv {installed['venv']:.1f} s, pip install ./client "
        f"{installed['install']:.1f} s ({installed['packages']} packages, Django: "
        f"{'yes' if installed['django'] else 'no'}), import {installed['import']:.3f} s "
        "(goal <= 0.3 s)"
    )


if __name__ == "__main__":
    main()
