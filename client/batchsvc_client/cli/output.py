"""What a command prints and how it ends: exit codes, errors, human lines on
standard output, notes and progress on standard error, or one JSON document."""

import enum
import json
import sys
from typing import Any, TextIO

from batchsvc_client.terminal import Progress


class Exit(enum.IntEnum):
    OK = 0
    """Everything succeeded."""
    ERROR = 1
    """Nothing, or not everything, was done."""
    USAGE = 2
    """The command line (or the configuration it needs) is wrong."""
    PARTIAL = 3
    """Done, with some items failed."""
    UNREACHABLE = 4
    """The server could not be reached, or stayed unavailable, past the retry deadline."""


class CliError(Exception):
    """A sentence for standard error, naming the problem and what to do, and the exit
    code. ``details`` go into the --json document."""

    def __init__(self, message: str, code: Exit = Exit.ERROR, details: Any = None):
        super().__init__(message)
        self.message, self.code, self.details = message, code, details


def outcome(*, failed: int, total: int) -> Exit:
    """OK when nothing failed, PARTIAL when some items did, ERROR when all did."""
    if not failed:
        return Exit.OK
    return Exit.ERROR if failed >= total else Exit.PARTIAL


class Output:
    """Human lines go to standard output, or with ``json_mode`` one document does;
    notes, warnings and progress go to standard error either way, so that standard
    output can always be piped."""

    def __init__(self, json_mode: bool, stdout: TextIO | None = None, stderr=None):
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def line(self, text: str = "") -> None:
        if not self.json_mode:
            self.stdout.write(f"{text}\n")
            self.stdout.flush()

    def raw(self, text: str) -> None:
        """A line of data on standard output, whatever the mode."""
        self.stdout.write(f"{text}\n")
        self.stdout.flush()

    def note(self, text: str) -> None:
        self.stderr.write(f"{text}\n")
        self.stderr.flush()

    def document(self, doc: Any) -> None:
        if self.json_mode:
            json.dump(doc, self.stdout, ensure_ascii=False, default=str)
            self.stdout.write("\n")
            self.stdout.flush()

    def progress(self, **kwargs) -> Progress:
        return Progress(stream=self.stderr, **kwargs)

    def error(self, error: CliError) -> None:
        self.note(f"batchsvc: {error.message}")
        doc = {"error": error.message, "exit_code": int(error.code)}
        if error.details is not None:
            doc["details"] = error.details
        self.document(doc)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
