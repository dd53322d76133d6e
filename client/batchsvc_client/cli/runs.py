"""``batchsvc runs upload FILE|-``: runs from a JSON array, JSON Lines or an envelope."""

import sys
from array import array
from bisect import bisect_right
from contextlib import nullcontext
from itertools import islice

from batchsvc_client.cli.output import CliError, Exit, outcome, plural
from batchsvc_client.cli.parsing import command, group, positive_int
from batchsvc_client.client import RUNS_PER_REQUEST, TransactionTooLarge
from batchsvc_client.runfiles import LINES, BadLine, RunsFileError, read_runs

SHOWN_ERRORS = 50  # failures listed on a terminal; --json carries all of them


def register(commands, common) -> None:
    runs = group(commands, "runs", "upload runs")
    upload = command(
        runs,
        "upload",
        common,
        help='upload runs from a JSON array, JSON Lines or a {"runs": [...]} envelope',
        example="batchsvc runs upload runs.jsonl\n"
        "  produce-runs | batchsvc runs upload - --transactional --json",
        handler=upload_runs,
    )
    upload.add_argument("file", metavar="FILE", help="the runs file, or - for standard input")
    upload.add_argument(
        "--transactional",
        action="store_true",
        help="all or nothing: one request, so at most --chunk runs; any failure stores none",
    )
    upload.add_argument(
        "--dry-run", action="store_true", help="validate and count on the server, store nothing"
    )
    upload.add_argument(
        "--chunk",
        type=positive_int,
        default=RUNS_PER_REQUEST,
        metavar="N",
        help="runs per request, at most the server's RUNS_BATCH_MAX (default: %(default)r)",
    )


def upload_runs(args, ctx) -> Exit:
    name = "standard input" if args.file == "-" else args.file
    with nullcontext(sys.stdin.buffer) if args.file == "-" else _open(args.file) as stream:
        try:
            kind, items = read_runs(stream)
        except RunsFileError as exc:
            raise CliError(f"{name} {exc}") from None
        source = Source(items, lines=kind == LINES)
        runs = source.runs()
        if args.transactional:
            runs = source.checked(islice(runs, args.chunk + 1), name)
        client = ctx.client()
        with ctx.out.progress(unit="runs", label="Uploading") as progress:
            try:
                summary = client.upload_runs(
                    runs,
                    transactional=args.transactional,
                    chunk_size=args.chunk,
                    dry_run=args.dry_run,
                    progress=progress.advance,
                )
            except TransactionTooLarge:
                raise CliError(
                    f"{name} holds more than {args.chunk:,} runs, the most one --transactional "
                    "upload sends (one request, --chunk); nothing was sent. Upload it without "
                    "--transactional (each valid run stored, each invalid one reported), or "
                    "split it."
                ) from None
    summary = source.merged(summary)
    report(ctx.out, summary, file=name, kind=kind, dry_run=args.dry_run)
    if summary["rolled_back"]:
        return Exit.ERROR
    return outcome(failed=summary["failed"], total=summary["total"])


def _open(path: str):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise CliError(
            f"Cannot read {path}: {exc.strerror}; give a runs file, or - for standard input."
        ) from None


class Source:
    """The file's items as runs to send. Items that are not JSON are kept back and
    reported by their index; the server's indexes (positions among the runs sent)
    are mapped back to positions in the file, and to line numbers for JSON Lines."""

    def __init__(self, items, *, lines: bool):
        self.items = items
        self.bad: list[dict] = []
        self.bad_indexes: list[int] = []
        self.line_numbers = array("Q") if lines else None

    def runs(self):
        for index, (line, run) in enumerate(self.items):
            if self.line_numbers is not None:
                self.line_numbers.append(line)
            if isinstance(run, BadLine):
                self.bad.append({"index": index, "event_id": None, "error": run.error})
                self.bad_indexes.append(index)
                continue
            yield run

    def checked(self, runs, name: str) -> list:
        """All of ``runs`` (a transactional upload's), or CliError when one could not
        be read: nothing is sent then, as the server would roll it all back."""
        held = list(runs)
        if self.bad:
            raise CliError(
                f"{name} has items that are not JSON ({self.bad[0]['error']}); nothing was "
                "sent, as a transactional upload stores all or nothing.",
                details={"errors": self.bad},
            )
        return held

    def merged(self, summary: dict) -> dict:
        errors = [{**e, "index": self.position(e["index"])} for e in summary["errors"]]
        errors = sorted(errors + self.bad, key=lambda error: error["index"])
        if self.line_numbers is not None:
            errors = [{**error, "line": self.line_numbers[error["index"]]} for error in errors]
        summary["total"] += len(self.bad)
        summary["failed"] += len(self.bad)
        return {**summary, "errors": errors}

    def position(self, sent: int) -> int:
        """The index in the file of the run sent at index ``sent``."""
        index = sent
        while bisect_right(self.bad_indexes, index) + sent != index:
            index = sent + bisect_right(self.bad_indexes, index)
        return index


def report(out, summary: dict, *, file: str, kind: str, dry_run: bool) -> None:
    out.line(headline(summary, f"from {file} ({kind})", dry_run))
    for error in summary["errors"][:SHOWN_ERRORS]:
        where = f" (line {error['line']})" if error.get("line") else ""
        out.line(f"  run {error['index']}{where}: {error['error']}")
    if len(summary["errors"]) > SHOWN_ERRORS:
        out.line(f"  ... and {len(summary['errors']) - SHOWN_ERRORS:,} more (--json lists all)")
    out.document({"file": file, "format": kind, "dry_run": dry_run, **summary})


def headline(summary: dict, source: str, dry_run: bool) -> str:
    """ "3 runs from runs.jsonl (JSON Lines): 3 created, 0 existing, 0 failed." and the
    like for rolled-back uploads and dry runs."""
    runs, failed = f"{plural(summary['total'], 'run')} {source}", f"{summary['failed']:,} failed"
    if summary["rolled_back"]:
        if dry_run:
            return f"Dry run: {runs}, {failed}, so the upload would roll back; nothing stored."
        return f"Rolled back: {runs}, {failed}, so nothing was stored."
    created = f"{summary['created']:,} {'new' if dry_run else 'created'}"
    line = f"{runs}: {created}, {summary['existing']:,} existing, {failed}."
    return f"Dry run, nothing stored. {line}" if dry_run else line
