import os
import uuid

from batchsvc_client.terminal import silence_stdout
from django.core.management.base import BaseCommand, CommandError

from batches.models import Batch
from batches.results import FORMATS, results_copy, results_write

STDOUT = "-"


def export_format(output: str, given: str | None) -> str:
    """The format: --format when given, else the output file's extension (csv on
    stdout). A --format the extension contradicts is a mistake, not a choice."""
    if output == STDOUT:
        return given or "csv"
    extension = os.path.splitext(output)[1].lstrip(".").lower()
    if given and extension in FORMATS and extension != given:
        raise CommandError(
            f"--format {given} does not match the extension of {output} (.{extension}); "
            f"name the file .{given} or leave --format out."
        )
    if given or extension in FORMATS:
        return given or extension
    raise CommandError(
        f"Cannot tell the format from the name {output}; end it with .csv, .xlsx or .json "
        "or give --format csv, xlsx or json."
    )


class Command(BaseCommand):
    help = "Write a batch's results to a CSV, XLSX or JSON file, or to stdout."

    def add_arguments(self, parser):
        parser.add_argument("batch_id", type=uuid.UUID, help="the batch's id")
        parser.add_argument(
            "--format",
            choices=list(FORMATS),
            default=None,
            help="csv, xlsx or json (default: the output file's extension; csv on stdout)",
        )
        parser.add_argument(
            "-o",
            "--output",
            default=STDOUT,
            help="file to write, or - for stdout (default: %(default)r)",
        )

    def handle(self, *args, batch_id, format, output, **options):
        format = export_format(output, format)
        batch = Batch.objects.filter(pk=batch_id).first()
        if batch is None:
            raise CommandError(f"There is no batch {batch_id}.")
        if output == STDOUT:
            try:
                size = results_copy(batch=batch, format=format, out=self.stdout_bytes())
            except BrokenPipeError:
                silence_stdout()  # the reader has what it wanted (| head): end quietly
                return
            # stdout holds the file alone, so that it can be piped.
            self.stderr.write(self.summary(batch, "stdout", size))
            return
        try:
            size = results_write(batch=batch, format=format, path=output)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}.") from None
        self.stdout.write(self.summary(batch, output, size))

    def stdout_bytes(self):
        # OutputWrapper hands attribute lookups to the stream it wraps.
        buffer = getattr(self.stdout, "buffer", None)
        if buffer is None:
            raise CommandError("This stdout takes no bytes; write to a file with -o.")
        self.stdout.flush()
        return buffer

    def summary(self, batch: Batch, where: str, size: int) -> str:
        return (
            f"Wrote {batch.total_items} items of batch {batch.pk} ({batch.status}) "
            f"to {where} ({size:,} bytes)."
        )
