import json

from batchsvc_client.terminal import Progress
from django.core.management.base import BaseCommand, CommandError

from batches.services import batch_create, batch_wait
from batchsvc.api.errors import ApiError
from batchsvc.management.arguments import username

SHOWN_SKIPPED = 20


def json_object(value: str) -> dict:
    options = json.loads(value)
    if not isinstance(options, dict):
        raise ValueError(value)
    return options


class Command(BaseCommand):
    help = "Create a batch from a .csv or .xlsx file, as an upload to the API would."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to a .csv or .xlsx file with a question column")
        parser.add_argument(
            "--owner", required=True, type=username, help="username of the batch's owner"
        )
        parser.add_argument("--name", default="", help="batch name (default: the file name)")
        parser.add_argument("--processor", default="echo", help="(default: %(default)r)")
        parser.add_argument(
            "--options",
            type=json_object,
            default={},
            help="processor options as a JSON object (default: %(default)r)",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="show progress until the batch ends (a db_worker must be running)",
        )
        parser.add_argument(
            "--poll", type=float, default=0.5, help="seconds between looks (default: %(default)r)"
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="with --wait, give up after this many seconds (default: wait until it ends)",
        )

    def handle(self, *args, file, owner, name, processor, options, wait, poll, timeout, **rest):
        try:
            with open(file, "rb") as upload:
                batch = batch_create(
                    owner=owner, upload=upload, name=name, processor=processor, options=options
                ).batch
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        except ApiError as exc:
            raise CommandError(f"{file}: {exc.message}") from None
        rows = "row" if batch.skipped_count == 1 else "rows"
        skipped = f"; {batch.skipped_count} {rows} skipped" if batch.skipped_count else ""
        self.stdout.write(f"Batch {batch.pk} queued with {batch.total_items} items{skipped}.")
        self.report_skipped(batch)
        if wait:
            batch = self.wait(batch, poll, timeout)
            if batch.is_active:
                raise CommandError(f"Batch {batch.pk} is still {batch.status} after {timeout} s.")
            self.stdout.write(
                f"Batch {batch.pk} {batch.status}: {batch.processed_items} succeeded, "
                f"{batch.failed_items} failed, {batch.cancelled_items} cancelled "
                f"of {batch.total_items}."
            )

    def report_skipped(self, batch) -> None:
        """The rows without a question, which are not items, each with its number."""
        for skipped in batch.skipped_rows[:SHOWN_SKIPPED]:
            self.stderr.write(f"Skipped row {skipped['row']}: {skipped['error']}.")
        if batch.skipped_count > SHOWN_SKIPPED:
            more = batch.skipped_count - SHOWN_SKIPPED
            self.stderr.write(f"... and {more} more ({batch.skipped_count} rows skipped in all).")

    def wait(self, batch, poll, timeout):
        # A bar on a terminal, plain lines otherwise (a log file, a pipe).
        label = f"Batch {str(batch.pk)[:8]}"
        with Progress(total=batch.total_items, label=label, stream=self.stderr._out) as bar:

            def progress(batch):
                bar.set(
                    batch.processed_items + batch.failed_items,
                    note=f"{batch.processed_items} succeeded, {batch.failed_items} failed",
                )

            return batch_wait(batch=batch, poll=poll, progress=progress, timeout=timeout)
