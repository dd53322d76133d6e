import io

from batchsvc_client.runfiles import BOM, ENVELOPE, RunsFileError, peek, sniff
from batchsvc_client.terminal import Progress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from batchsvc.management.arguments import username
from traces.importing import open_source, read_runs
from traces.services import runs_import


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def checked(source, name: str):
    """``source`` ready for read_runs (past a byte order mark), or CommandError when
    it is empty, binary, or the API's envelope rather than the runs themselves."""
    if not hasattr(source, "peek"):
        source = io.BufferedReader(source)
    try:
        kind = sniff(peek(source))
    except RunsFileError as exc:
        raise CommandError(f"{name} {exc}") from None
    if kind == ENVELOPE:
        raise CommandError(
            f'{name} is a {{"runs": [...]}} envelope, as the API takes; import_runs takes '
            "the runs themselves, a JSON array or JSON Lines (jq -c '.runs[]' turns the one "
            "into the other), or upload the envelope with 'batchsvc runs upload'."
        )
    if peek(source).startswith(BOM):
        source.read(len(BOM))
    return source


class Command(BaseCommand):
    help = "Import runs from a JSON array or JSON Lines file ('-' for stdin)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to a .json or .jsonl file, or - for stdin")
        parser.add_argument(
            "--owner", required=True, type=username, help="username of the runs' owner"
        )
        parser.add_argument(
            "--transactional",
            action="store_true",
            help="all or nothing: any failed run rolls back the whole import",
        )
        parser.add_argument(
            "--chunk",
            type=positive_int,
            default=settings.RUNS_BATCH_MAX,
            help="runs per database batch (default: %(default)r)",
        )

    def handle(self, *args, file, owner, transactional, chunk, **options):
        try:
            source = open_source(file)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        # A bar on a terminal, plain lines otherwise (a log file, a pipe).
        progress = Progress(unit="runs", label="Importing", stream=self.stderr._out)
        with source, progress:
            source = checked(source, "standard input" if file == "-" else file)
            try:
                summary = runs_import(
                    owner=owner,
                    items=read_runs(source),
                    atomic=transactional,
                    chunk_size=chunk,
                    progress=progress.advance,
                )
            except ValueError as exc:
                raise CommandError(f"Cannot import {file}: {exc}.") from None
        for error in summary.errors[:20]:
            self.stderr.write(f"item {error['index']}: {error['error']}")
        if len(summary.errors) > 20:
            self.stderr.write(f"... and {len(summary.errors) - 20} more failed items")
        line = (
            f"{summary.total} runs read: {summary.created} created, "
            f"{summary.existing} existing, {summary.failed} failed."
        )
        if summary.rolled_back:
            raise CommandError(f"{line} Rolled back: nothing was imported.")
        self.stdout.write(line)
        if summary.failed:
            raise CommandError(f"{summary.failed} runs failed; the others were imported.")
