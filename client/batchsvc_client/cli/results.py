"""``batchsvc batch results ID``: the results file, or with ``--failed-only`` exactly
the failed rows with their original columns and the error, ready to fix and upload
again."""

import os
import sys
import tempfile
from pathlib import Path

from batchsvc_client.cli import sheets
from batchsvc_client.cli.batchref import batch_id, read
from batchsvc_client.cli.output import CliError, Exit, plural
from batchsvc_client.cli.parsing import command

FORMATS = ("csv", "xlsx", "json")
STDOUT = "-"


def register(batch, common, batch_argument) -> None:
    parser = command(
        batch,
        "results",
        common,
        help="write a batch's results (csv, xlsx or json) to a file or standard output",
        example="batchsvc batch results --last --failed-only -o failed.csv",
        handler=write_results,
    )
    batch_argument(parser)
    parser.add_argument(
        "--failed-only",
        action="store_true",
        help="only the failed rows: the upload's columns and the error, to fix and upload again",
    )
    parser.add_argument(
        "-o",
        "--output",
        default=STDOUT,
        metavar="FILE",
        help="the file to write, or - for standard output (default: %(default)r)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="(default: the output file's extension; csv on standard output)",
    )


def results_format(output: str, given: str | None) -> str:
    """--format, else the output file's extension (csv on standard output)."""
    if output == STDOUT:
        return given or "csv"
    extension = Path(output).suffix.lstrip(".").lower()
    if given and extension in FORMATS and extension != given:
        raise CliError(
            f"--format {given} does not match the extension of {output}; name the file "
            f".{given} or leave --format out.",
            Exit.USAGE,
        )
    if given or extension in FORMATS:
        return given or extension
    raise CliError(
        f"Cannot tell the format from the name {output}; end it with .csv, .xlsx or .json, "
        "or give --format.",
        Exit.USAGE,
    )


def write_results(args, ctx) -> Exit:
    format = results_format(args.output, args.format)
    to_stdout = args.output == STDOUT
    if to_stdout and args.json:
        raise CliError(
            "--json and the results both go to standard output; add -o FILE.", Exit.USAGE
        )
    if to_stdout and format == "xlsx" and sys.stdout.isatty():
        raise CliError("An xlsx file is binary; write it to a file with -o FILE.", Exit.USAGE)
    identifier = batch_id(args, ctx)
    batch = read(ctx, identifier)
    if args.failed_only:
        rows = ctx.client().interactions(identifier, status="failed", page_size=1000)
        columns, rows = sheets.failed_rows(batch, rows)

        def writer(out):
            return sheets.write(format, columns, rows, out)
    else:

        def writer(out):
            ctx.client().copy_results(identifier, out, format=format)
            return batch["total_items"]

    count = _to_stdout(writer) if to_stdout else _to_file(writer, Path(args.output))
    what = plural(count, "failed row" if args.failed_only else "row")
    summary = f"Wrote {what} of batch {identifier} ({batch['status']}) to {args.output}."
    if batch["status"] in ("queued", "processing"):
        summary += " It has not ended: run it again once it has for every row."
    (ctx.out.note if to_stdout else ctx.out.line)(summary)
    ctx.out.document({"batch_id": identifier, "path": args.output, "format": format,
                      "rows": count, "failed_only": args.failed_only})  # fmt: skip
    return Exit.OK


def _to_stdout(writer) -> int:
    sys.stdout.flush()
    count = writer(sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return count


def _to_file(writer, target: Path) -> int:
    """Write through a temporary file beside ``target``, renamed once complete, so
    ``target`` is never half-written."""
    directory = target.parent if str(target.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            count = writer(out)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return count


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
