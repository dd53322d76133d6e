import argparse

from django.core.management.base import BaseCommand
from tqdm import tqdm

from batchsvc.ops import retention


def days(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < 0:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of days, 0 or more, not {value!r}"
        )
    return number


def positive(value: str) -> int:
    if not (value.isascii() and value.isdigit() and int(value) > 0):
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, not {value!r}")
    return int(value)


def option_of(setting: str) -> str:
    """RETAIN_TRACE_FILES_DAYS -> trace_files_days (--trace-files-days)."""
    return setting.removeprefix("RETAIN_").lower()


class Command(BaseCommand):
    help = "Delete the finished work older than the retention settings allow, in small chunks."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
        )
        for setting in retention.retention_settings():
            parser.add_argument(
                f"--{option_of(setting).replace('_', '-')}",
                type=days,
                default=None,
                metavar="DAYS",
                help=f"keep this many days instead of {setting} (default: the setting)",
            )
        parser.add_argument(
            "--chunk",
            type=positive,
            default=retention.CHUNK,
            help="rows deleted per transaction (default: %(default)r)",
        )

    def handle(self, *args, dry_run, chunk, **options):
        given = {
            setting: options[option_of(setting)]
            for setting in retention.retention_settings()
            if options.get(option_of(setting)) is not None
        }
        bars: dict[str, tqdm] = {}

        def progress(purger, deleted):
            if purger.name not in bars:
                bars[purger.name] = tqdm(
                    desc=purger.name, unit=" rows", disable=None, file=self.stderr._out
                )
            bars[purger.name].update(deleted)

        try:
            outcomes = retention.purge(days=given, dry_run=dry_run, chunk=chunk, progress=progress)
        finally:
            for bar in bars.values():
                bar.close()
        for outcome in outcomes:
            self.stdout.write(self.describe(outcome, dry_run=dry_run))
        done = [f"{o.count:,} {o.purger.name}" for o in outcomes if o.count]
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {', '.join(done)}." if done else "Nothing to delete.")

    @staticmethod
    def describe(outcome: retention.Outcome, *, dry_run: bool) -> str:
        name = outcome.purger.name
        if outcome.kept_forever:
            return f"{name}: kept forever ({outcome.purger.setting} is empty)"
        verb = "would delete" if dry_run else "deleted"
        when = outcome.before.isoformat(timespec="seconds")
        return f"{name}: {verb} {outcome.count:,} (older than {outcome.days} days: before {when})"
