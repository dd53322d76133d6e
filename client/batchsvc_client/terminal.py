"""Output that suits where it goes: a progress bar on a terminal, plain lines (no
carriage returns) in a pipe or a log file, and a quiet end when the reader of
standard output goes away (``| head``). Shared by the ``batchsvc`` command line and
the server's management commands."""

import os
import sys
import time
from typing import TextIO

PLAIN_EVERY = 5.0  # seconds between plain progress lines


class Progress:
    """Progress of ``total`` items (None when unknown) on ``stream`` (default:
    stderr): a tqdm bar when ``stream`` is a terminal, else a plain line at most
    every ``every`` seconds and one at the end. A context manager.

        with Progress(total=100, unit="items", label="batch 3f2a") as progress:
            progress.advance(10)                      # ten more done
            progress.set(40, note="1 failed")         # forty done in all
    """

    def __init__(
        self,
        *,
        total: int | None = None,
        unit: str = "items",
        label: str = "",
        stream: TextIO | None = None,
        every: float = PLAIN_EVERY,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.total, self.unit, self.label, self.every = total, unit, label, every
        self.done, self.note = 0, ""
        self._shown: tuple | None = None  # what the last plain line said
        self._shown_at = 0.0
        self._bar = None
        if is_terminal(self.stream):
            from tqdm import tqdm  # only when a bar is drawn: it costs an import

            self._bar = tqdm(
                total=total,
                unit=f" {unit}",
                desc=label or None,
                file=self.stream,
                **_unsized(self.stream),
            )

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def advance(self, n: int = 1) -> None:
        self.set(self.done + n, note=self.note)

    def set(self, done: int, *, total: int | None = None, note: str = "") -> None:
        """``done`` items in all (of ``total``, when it became known), and a ``note``
        shown beside the count (counts by outcome, time left)."""
        if total is not None:
            self.total = total
        self.done, self.note = done, note
        if self._bar is not None:
            if total is not None:
                self._bar.total = total
            self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(done - self._bar.n)
        elif time.monotonic() - self._shown_at >= self.every:
            self._plain()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._shown != (self.done, self.note) and (self.done or self._shown):
            self._plain()

    def _plain(self) -> None:
        count = f"{self.done:,}" if self.total is None else f"{self.done:,}/{self.total:,}"
        percent = f" ({100 * self.done // self.total}%)" if self.total else ""
        note = f", {self.note}" if self.note else ""
        label = f"{self.label}: " if self.label else ""
        self.stream.write(f"{label}{count} {self.unit}{percent}{note}\n")
        self.stream.flush()
        self._shown, self._shown_at = (self.done, self.note), time.monotonic()


def is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False


def _unsized(stream) -> dict:
    """A size for a terminal that says it has none (a pseudo-terminal nobody sized,
    as in some containers), where tqdm would draw nothing; else tqdm follows the
    terminal's own size."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return {}
    return {} if size.columns and size.lines else {"ncols": 80, "nrows": 24}


def silence_stdout() -> None:
    """After a BrokenPipeError on standard output (its reader went away, as ``| head``
    does once it has its lines): point the descriptor at /dev/null, so that Python's
    flush at exit finds nothing to complain about."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
