import uuid

from django.core.management.base import BaseCommand, CommandError

from batches.models import Batch
from batches.selectors import FORMATS, results_write


class Command(BaseCommand):
    help = "Write a batch's results to a CSV, XLSX or JSON file."

    def add_arguments(self, parser):
        parser.add_argument("batch_id", type=uuid.UUID, help="the batch's id")
        parser.add_argument(
            "--format", choices=list(FORMATS), default="csv", help="(default: %(default)r)"
        )
        parser.add_argument("-o", "--output", required=True, help="file to write")

    def handle(self, *args, batch_id, format, output, **options):
        batch = Batch.objects.filter(pk=batch_id).first()
        if batch is None:
            raise CommandError(f"There is no batch {batch_id}.")
        try:
            size = results_write(batch=batch, format=format, path=output)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}.") from None
        self.stdout.write(
            f"Wrote {batch.total_items} items of batch {batch.pk} ({batch.status}) "
            f"to {output} ({size:,} bytes)."
        )
