"""A long soak with faults inside it: eight clients write while the database, Redis,
a worker, a web process and the model provider fail, then every acknowledged write
is checked against the database and the storage.

    .venv/bin/python bench/chaos.py [--minutes 10]

Everything runs on instances the bench starts itself: a PostgreSQL cluster from the
installed binaries (initdb/pg_ctl, a spare port; never the machine's shared one), a
redis-server on a spare port, gunicorn (2 processes), two db_workers, and a stub
model API. Each client keeps a ledger of what the service acknowledged: runs
(lenient and transactional batches, some sent twice), log lines (batches, some sent
twice), trace files (rewritten paths), batch uploads (echo and the stub model) and
batch GETs. A request that gets a 503 or loses its connection is sent again, as the
client library does; a 5xx other than 503 with Retry-After is a finding.

Faults, at fractions of the run: PostgreSQL restarted (0.10 and 0.65), Redis
restarted (0.20), a worker killed with -9 and restarted (0.30), a web process killed
with -9 (0.40), the model answering 429 and 500 for a minute (0.50; a tenth of the run
when shorter). The clients stop at 0.85; the batches are then left to finish.
"""

import argparse
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._model_stub import ModelStub
from bench._server import PYTHON, ROOT, free_port, manage
from bench.batches import xlsx
from bench.ingest import realistic_run
from tests.support.postgres import Postgres

CLIENTS = 8
FINISHED = ("processed", "completed_with_errors", "failed")
REDIS = ("redis-server", "--appendonly", "no")
WORKER = (PYTHON, "manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay")
WEB_PROCESSES = 2


class FaultyModel(ModelStub):
    """The stub model, which can answer 429 and 500 (alternately) for a while."""

    failing_until = 0.0
    failed = Counter()

    def admit(self, tokens):
        if time.monotonic() < self.failing_until:
            status = random.choice((429, 500))
            self.failed[status] += 1
            return status, (1 if status == 429 else None)
        return super().admit(tokens)


class Redis:
    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self) -> "Redis":
        self.proc = subprocess.Popen(
            [*REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                import redis

                redis.Redis.from_url(self.url).ping()
                return self
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Web:
    """gunicorn with WEB_PROCESSES processes; ``kill_one()`` sends -9 to one of them."""

    def __init__(self, env: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
            cwd=ROOT,
            env={**env, "PORT": str(self.port), "WEB_WORKERS": str(WEB_PROCESSES)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(300):
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def kill_one(self) -> int:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        victim = int(children.split()[0])
        os.kill(victim, signal.SIGKILL)
        return victim

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def start_worker(env: dict, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*WORKER, "--worker-id", name],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# The clients ---------------------------------------------------------------------


@dataclass
class Ledger:
    """What the service acknowledged to one client, and what it saw on the way."""

    runs: set = field(default_factory=set)  # event_ids
    lines: dict = field(default_factory=dict)  # run_id -> set of client_ids
    files: dict = field(default_factory=dict)  # path -> sha256 of the last acknowledged write
    batches: list = field(default_factory=list)  # (batch_id, rows)
    statuses: Counter = field(default_factory=Counter)
    bad_5xx: list = field(default_factory=list)  # (status, url, retry-after)
    not_found: list = field(default_factory=list)
    resends: int = 0
    gets: int = 0


class Client:
    def __init__(self, number: int, url: str, token: str, stop: threading.Event):
        self.number, self.stop = number, stop
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Token {token}"}, timeout=60
        )
        self.ledger = Ledger()
        self.rng = random.Random(number)
        self.run_id = f"chaos-{number}-{uuid.uuid4().hex[:8]}"
        self.line = 0

    def call(self, method: str, url: str, **kwargs) -> httpx.Response:
        """Send until an answer other than 503 comes back; every resend is the same
        request, so retrying is safe (idempotency keys)."""
        for attempt in range(600):
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError:
                self.ledger.statuses["connection lost"] += 1
                time.sleep(0.5)
                continue
            self.ledger.statuses[response.status_code] += 1
            retry_after = response.headers.get("Retry-After")
            if response.status_code >= 500 and not (response.status_code == 503 and retry_after):
                self.ledger.bad_5xx.append((response.status_code, url, retry_after))
            if response.status_code == 404:
                self.ledger.not_found.append(f"{method} {url}")
            if response.status_code < 500:
                return response
            time.sleep(min(float(retry_after or 1), 2) if attempt < 599 else 0)
        raise RuntimeError(f"{method} {url}: no answer in 600 tries")

    def run(self) -> None:
        body = {"runs": [self.new_run(self.run_id)]}
        self.ack_runs(self.call("POST", "/api/v1/runs/batch-transactional", json=body), body)
        steps = [self.runs, self.logs, self.traces, self.runs, self.logs, self.batch_get]
        n = 0
        while not self.stop.is_set():
            steps[n % len(steps)]()
            if n % 40 == 7:
                self.upload(processor="openai" if n % 80 == 7 else "echo")
            n += 1

    def new_run(self, run_id=None) -> dict:
        run = realistic_run(self.rng.randrange(10**6))
        run["event_id"] = str(uuid.uuid4())
        run["run_id"] = run_id or f"c{self.number}-{uuid.uuid4().hex}"
        return run

    def ack_runs(self, response: httpx.Response, body: dict) -> None:
        if response.status_code in (200, 201):
            for item in response.json()["runs"]:
                if item["result"] in ("created", "existing"):
                    self.ledger.runs.add(item["event_id"])

    def runs(self) -> None:
        atomic = self.rng.random() < 0.4
        body = {"runs": [self.new_run() for _ in range(self.rng.randint(20, 200))]}
        url = "/api/v1/runs/batch-transactional" if atomic else "/api/v1/runs/batch"
        self.ack_runs(self.call("POST", url, json=body), body)
        if self.rng.random() < 0.3:  # a resend, as after a lost answer
            self.ledger.resends += 1
            self.ack_runs(self.call("POST", url, json=body), body)

    def logs(self) -> None:
        lines = []
        for _ in range(self.rng.randint(10, 300)):
            self.line += 1
            lines.append(
                {"level": "info", "message": f"line {self.line}", "client_id": f"l{self.line}"}
            )
        url = f"/api/v1/runs/{self.run_id}/setup_logs"
        for _ in range(2 if self.rng.random() < 0.3 else 1):
            response = self.call("POST", url, json={"logs": lines})
            if response.status_code == 200:
                self.ledger.lines.setdefault(self.run_id, set()).update(
                    line["client_id"] for line in lines
                )

    def traces(self) -> None:
        files = []
        for _ in range(self.rng.randint(1, 10)):
            name = f"f{self.rng.randrange(20)}.txt"
            if any(f["file_name"] == name for f in files):
                continue
            data = f"{self.number} {name} {uuid.uuid4().hex}\n" * self.rng.randint(1, 200)
            files.append(
                {"trace_data": data, "file_name": name, "output_directory": f"c{self.number}"}
            )
        response = self.call("POST", "/api/v1/traces/write-batch", json={"files": files})
        if response.status_code == 200:
            for result, file in zip(response.json()["results"], files, strict=True):
                if result["success"]:
                    path = f"c{self.number}/{file['file_name']}"
                    self.ledger.files[path] = hashlib.sha256(
                        file["trace_data"].encode()
                    ).hexdigest()

    def batch_get(self) -> None:
        body = {"resource_type": "runs", "ids": [self.run_id]}
        if self.call("POST", "/api/v1/batch/get", json=body).status_code == 200:
            self.ledger.gets += 1

    def upload(self, processor: str) -> None:
        rows = self.rng.randint(5, 40)
        key = str(uuid.uuid4())
        response = self.call(
            "POST",
            "/api/v1/batches/",
            files={"file": ("chaos.xlsx", xlsx(rows, chat_size=1))},
            data={"options": "{}", "processor": processor, "concurrency": "8"},
            headers={"Idempotency-Key": key},
        )
        if response.status_code in (200, 201, 202):
            self.ledger.batches.append((response.json()["batch_id"], rows))


# Faults --------------------------------------------------------------------------


def inject(schedule, started, stop, log):
    for at, name, action in schedule:
        while time.monotonic() - started < at:
            if stop.wait(0.2):
                return
        began = time.monotonic()
        detail = action()
        log.append((at, name, f"{detail} ({time.monotonic() - began:.1f} s)"))
        print(f"  {at:6.0f} s  {name}: {detail}", flush=True)


# Checks --------------------------------------------------------------------------


def verify(url: str, ledgers: list[Ledger], traces_root: Path) -> list[tuple[str, bool, str]]:
    found = []
    with psycopg.connect(url) as db:
        acked = [e for ledger in ledgers for e in ledger.runs]
        stored = dict(
            db.execute(
                "SELECT event_id::text, count(*) FROM traces_run WHERE event_id::text = ANY(%s) "
                "GROUP BY event_id",
                [acked],
            ).fetchall()
        )
        missing = [e for e in acked if e not in stored]
        doubled = [e for e, n in stored.items() if n > 1]
        found.append(
            (
                "acknowledged runs stored exactly once",
                not missing and not doubled,
                f"{len(acked)} acknowledged, {len(missing)} lost, {len(doubled)} doubled",
            )
        )
        lost_lines = doubled_lines = gaps = total = 0
        for ledger in ledgers:
            for run_id, client_ids in ledger.lines.items():
                rows = db.execute(
                    "SELECT l.seq, l.client_id FROM setuplogs_logentry l JOIN traces_run r "
                    "ON r.id = l.run_id WHERE r.run_id = %s ORDER BY l.seq",
                    [run_id],
                ).fetchall()
                counts = Counter(c for _, c in rows)
                total += len(client_ids)
                lost_lines += sum(1 for c in client_ids if c not in counts)
                doubled_lines += sum(1 for n in counts.values() if n > 1)
                seqs = [s for s, _ in rows]
                gaps += int(seqs != list(range(seqs[0], seqs[0] + len(seqs)))) if seqs else 0
        found.append(
            (
                "acknowledged log lines stored exactly once",
                not lost_lines and not doubled_lines,
                f"{total} acknowledged, {lost_lines} lost, {doubled_lines} doubled",
            )
        )
        found.append(("log seqs gap-free in every run", gaps == 0, f"{gaps} runs with a gap"))
        bad_files = 0
        files = 0
        for ledger in ledgers:
            for path, digest in ledger.files.items():
                files += 1
                row = db.execute(
                    "SELECT storage_name, sha256 FROM traces_tracefile WHERE path = %s", [path]
                ).fetchall()
                ok = len(row) == 1 and row[0][1] == digest
                if ok:
                    data = (traces_root / row[0][0]).read_bytes()
                    ok = hashlib.sha256(data).hexdigest() == digest
                bad_files += not ok
        found.append(
            (
                "acknowledged files stored once, row and bytes matching the last write",
                bad_files == 0,
                f"{files} paths, {bad_files} wrong",
            )
        )
        batches = [b for ledger in ledgers for b in ledger.batches]
        wrong = []
        for batch_id, rows in batches:
            row = db.execute(
                "SELECT status, total_items, processed_items, failed_items, cancelled_items, "
                "(SELECT count(*) FROM batches_interaction i WHERE i.batch_id = b.id) "
                "FROM batches_batch b WHERE b.id::text = %s",
                [batch_id.replace("-", "") if False else batch_id],
            ).fetchall()
            if not row:
                wrong.append((batch_id, "missing"))
                continue
            status, total, done, failed, cancelled, items = row[0]
            if (
                status not in FINISHED
                or total != rows
                or items != rows
                or (done + failed + cancelled != total)
            ):
                wrong.append((batch_id, row[0]))
        found.append(
            (
                "every batch finished, its counts adding up",
                not wrong,
                f"{len(batches)} batches, {len(wrong)} wrong {wrong[:3]}",
            )
        )
    found.append(agreement(url, ledgers))
    bad = [b for ledger in ledgers for b in ledger.bad_5xx]
    found.append(("no 5xx but 503 with Retry-After", not bad, f"{len(bad)}: {bad[:5]}"))
    return found


def agreement(url: str, ledgers: list[Ledger]) -> tuple[str, bool, str]:
    """Every request was sent until answered, so each client's ledger must equal what
    the database holds for its owner: nothing stored that the client was not told of."""
    counts = """
        SELECT (SELECT count(*) FROM traces_run r WHERE r.owner_id = u.id),
               (SELECT count(*) FROM setuplogs_logentry l JOIN traces_run r ON r.id = l.run_id
                 WHERE r.owner_id = u.id),
               (SELECT count(*) FROM traces_tracefile f WHERE f.owner_id = u.id),
               (SELECT count(*) FROM batches_batch b WHERE b.owner_id = u.id)
        FROM auth_user u WHERE u.username = %s"""
    differ = []
    with psycopg.connect(url) as db:
        for n, ledger in enumerate(ledgers):
            stored = db.execute(counts, [f"client{n}"]).fetchone()
            told = (
                len(ledger.runs),
                sum(len(ids) for ids in ledger.lines.values()),
                len(ledger.files),
                len(ledger.batches),
            )
            if tuple(stored) != told:
                differ.append((n, tuple(stored), told))
    return (
        "each client's ledger equals what the database holds for it",
        not differ,
        f"{len(ledgers)} clients; differing (client, stored, ledger): {differ[:3]}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length (default: 10)")
    args = parser.parse_args()
    length = args.minutes * 60
    model_fault = min(60.0, length / 10)
    with ExitStack() as stack:
        pg = Postgres().start()
        stack.callback(pg.destroy)
        pg.sql("CREATE DATABASE chaos")
        cache = Redis().start()
        stack.callback(lambda: cache.stop())
        model = FaultyModel(delay=0.02)
        stack.callback(model.stop)
        var = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="batchsvc-chaos-")))
        env = {
            **os.environ,
            "VAR_DIR": str(var),
            "SECRET_KEY": "chaos",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": pg.url("chaos"),
            "CACHE_URL": cache.url,
            "BATCH_THROTTLE_RATE": "",
            "OPENAI_BASE_URL": f"{model.url}/v1",
            "OPENAI_API_KEY": "chaos",
            "BATCH_STALE_AFTER": "20",
        }
        manage(env, "migrate", "--noinput")
        tokens = [
            manage(
                env,
                "shell",
                "-c",
                "from django.contrib.auth.models import User; from rest_framework.authtoken."
                f"models import Token; u = User.objects.create_user('client{n}'); "
                "print(Token.objects.create(user=u).key)",
            )
            .strip()
            .splitlines()[-1]
            for n in range(CLIENTS)
        ]
        web = Web(env)
        stack.callback(web.stop)
        workers = {name: start_worker(env, name) for name in ("w1", "w2")}

        def stop_workers():
            for proc in workers.values():
                proc.terminate()
            for proc in workers.values():
                proc.wait(60)

        stack.callback(stop_workers)

        def restart_pg():
            pg.stop("fast")
            time.sleep(5)
            pg.start()
            return "stopped (fast), down 5 s, started"

        def restart_redis():
            cache.stop()
            time.sleep(3)
            cache.start()
            return "stopped, down 3 s, started on the same port (empty)"

        def kill_worker():
            workers["w1"].kill()
            workers["w1"].wait()
            time.sleep(3)
            workers["w1"] = start_worker(env, "w1b")
            return "w1 killed with -9, restarted 3 s later"

        def kill_web():
            return f"gunicorn process {web.kill_one()} killed with -9 (the master starts another)"

        def fail_model():
            model.failing_until = time.monotonic() + model_fault
            time.sleep(model_fault)
            return f"429 and 500 for {model_fault:.0f} s: {dict(model.failed)}"

        schedule = [
            (0.10 * length, "PostgreSQL restart", restart_pg),
            (0.20 * length, "Redis restart", restart_redis),
            (0.30 * length, "worker kill -9", kill_worker),
            (0.40 * length, "web process kill -9", kill_web),
            (0.50 * length, "model 429/500", fail_model),
            (0.65 * length, "PostgreSQL restart", restart_pg),
        ]
        print(
            f"chaos: {args.minutes:g} min, {CLIENTS} clients, PostgreSQL on :{pg.port}, "
            f"Redis on :{cache.port}, load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        stop = threading.Event()
        clients = [Client(n, web.url, tokens[n], stop) for n in range(CLIENTS)]
        started = time.monotonic()
        injected: list = []
        with ThreadPoolExecutor(CLIENTS + 1) as pool:
            futures = [pool.submit(client.run) for client in clients]
            faults = pool.submit(inject, schedule, started, stop, injected)
            while time.monotonic() - started < 0.85 * length and not any(f.done() for f in futures):
                time.sleep(0.5)
            faults.result()
            stop.set()
            for future in futures:
                future.result()
        deadline = time.monotonic() + 300
        for client in clients:  # each asks for its own: another owner's batch is a 404
            for batch_id, _ in client.ledger.batches:
                while time.monotonic() < deadline:
                    answer = client.call("GET", f"/api/v1/batches/{batch_id}/").json()
                    if answer.get("status") not in ("queued", "processing", "cancelling"):
                        break
                    time.sleep(0.5)
        ledgers = [c.ledger for c in clients]
        findings = verify(pg.url("chaos"), ledgers, var / "traces")
        report(injected, findings, ledgers, time.monotonic() - started)


def report(injected, findings, ledgers, took) -> None:
    statuses = sum((ledger.statuses for ledger in ledgers), Counter())
    print(f"\nfaults injected ({took:.0f} s in all):")
    print(f"  {'at':>7}  {'fault':<22} what happened")
    for at, name, detail in injected:
        print(f"  {at:6.0f}s  {name:<22} {detail}")
    print(
        "\nwhat the clients did: "
        f"{sum(len(ledger.runs) for ledger in ledgers)} runs, "
        f"{sum(len(c) for ledger in ledgers for c in ledger.lines.values())} log lines, "
        f"{sum(len(ledger.files) for ledger in ledgers)} file paths, "
        f"{sum(len(ledger.batches) for ledger in ledgers)} batches, "
        f"{sum(ledger.gets for ledger in ledgers)} batch GETs, "
        f"{sum(ledger.resends for ledger in ledgers)} resent run batches acknowledged; answers "
        + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str))
    )
    missing = Counter(url for ledger in ledgers for url in ledger.not_found)
    print(f"404s: {dict(missing.most_common(5))}")
    print("\nfindings:")
    for what, ok, detail in findings:
        print(f"  [{'ok' if ok else 'FAILED'}] {what}: {detail}")
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
