"""A PostgreSQL server of the test's own, to stop and start without disturbing the
machine's shared one: ``initdb`` in a temporary directory, a spare port, removed
afterwards. The server binaries come from Debian's postgresql package."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.servers import free_port

BIN_DIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))


class Postgres:
    """One cluster; ``start()``/``stop()`` as often as a test likes, ``destroy()`` at the end."""

    def __init__(self):
        self.bin = self._bin_dir()
        self.user = self._run_as()
        self.dir = Path(tempfile.mkdtemp(prefix="batchsvc-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if self.user:
            shutil.chown(self.dir, self.user)
        self._run(
            "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"
        )

    @staticmethod
    def _bin_dir() -> Path:
        for directory in reversed(BIN_DIRS):
            if all(os.access(f"{directory}/{name}", os.X_OK) for name in ("initdb", "pg_ctl")):
                return Path(directory)
        pytest.skip("needs PostgreSQL's initdb and pg_ctl (Debian's postgresql package)")

    @staticmethod
    def _run_as() -> str | None:
        """PostgreSQL refuses to run as root: as root, run it as the postgres user."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no postgres user to run PostgreSQL as")
        if not shutil.which("runuser"):
            pytest.skip("running as root, and there is no runuser to run PostgreSQL as postgres")
        return "postgres"

    def _run(self, program: str, *args) -> None:
        command = [str(self.bin / program), *map(str, args)]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.dir, timeout=60)

    def url(self, database: str = "postgres", port: int | None = None) -> str:
        return f"postgres://postgres@127.0.0.1:{port or self.port}/{database}"

    def start(self) -> "Postgres":
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l", self.dir / "log", "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clients are told the server is shutting down; ``immediate``: a crash."""
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def sql(self, statement: str, database: str = "postgres", params=()) -> list:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as connection:
            cursor = connection.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        path = self.dir / "log"
        return path.read_text(errors="replace") if path.exists() else ""
