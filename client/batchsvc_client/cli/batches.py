"""``batchsvc batch upload|status|wait|cancel|retry-failed|results``: spreadsheet
batches, followed with a progress bar on a terminal and plain lines elsewhere."""

import argparse
import json
from pathlib import Path

from batchsvc_client._http import ApiError
from batchsvc_client.cli import config, results
from batchsvc_client.cli.batchref import batch_id, read, refusals
from batchsvc_client.cli.output import CliError, Exit, plural
from batchsvc_client.cli.parsing import command, group, seconds

SHOWN_SKIPPED = 20
OUTCOMES = {"processed": Exit.OK, "completed_with_errors": Exit.PARTIAL}


def register(commands, common) -> None:
    batch = group(commands, "batch", "upload spreadsheet batches, follow them, get results")
    upload = command(
        batch,
        "upload",
        common,
        help="upload a .csv or .xlsx file as a batch; print its id at once",
        example="batchsvc batch upload questions.csv --processor openai --option model=gpt-4o "
        "--wait",
        handler=upload_batch,
    )
    upload.add_argument("file", metavar="FILE", help="a .csv or .xlsx file with a question column")
    upload.add_argument("--processor", default="echo", help="(default: %(default)r)")
    upload.add_argument(
        "--option",
        action="append",
        type=option,
        default=[],
        metavar="KEY=VALUE",
        help="a processor option, repeatable; VALUE is read as JSON when it is (numbers, "
        "true, false), else as text",
    )
    upload.add_argument("--name", default="", help="the batch's name (default: the file name)")
    waiting_options(upload, "and then wait until the batch ends, showing its progress")
    for name, help, handler in (
        ("status", "show a batch's status and progress", show_status),
        ("wait", "wait until a batch ends, showing its progress", wait),
        ("cancel", "cancel a batch: the items not started are not run", cancel),
        ("retry-failed", "queue a batch's failed items again", retry_failed),
    ):
        parser = command(
            batch, name, common, help=help, example=f"batchsvc batch {name} --last", handler=handler
        )
        batch_argument(parser)
        if name in ("wait", "retry-failed"):
            waiting_options(parser, "wait until it ends" if name == "retry-failed" else None)
    results.register(batch, common, batch_argument)


def batch_argument(parser) -> None:
    parser.add_argument("batch_id", nargs="?", metavar="ID", help="the batch's id")
    parser.add_argument(
        "--last",
        action="store_true",
        help="the batch you last uploaded from here (else your newest on the server)",
    )


def waiting_options(parser, wait_help: str | None) -> None:
    if wait_help:
        parser.add_argument("--wait", action="store_true", help=wait_help)
    parser.add_argument(
        "--poll",
        type=seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds between looks (default: %(default)r)",
    )
    parser.add_argument(
        "--wait-timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="give up waiting after this long, exit code 1 (default: wait until it ends)",
    )


def option(value: str) -> tuple[str, object]:
    key, equals, text = value.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE, not {value!r}")
    try:
        return key, json.loads(text)
    except ValueError:
        return key, text


def upload_batch(args, ctx) -> Exit:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{args.file} is not a file; give the path of a .csv or .xlsx file.")
    client = ctx.client()
    try:
        created = client.upload_batch(
            path, name=args.name, processor=args.processor, options=dict(args.option) or None
        )
    except ApiError as exc:
        if exc.status not in (400, 413, 422):
            raise
        raise CliError(
            f"The server refused {args.file}: {exc.message.rstrip('.')}. Fix it and upload it "
            "again.",
            details=exc.body.get("details") if isinstance(exc.body, dict) else None,
        ) from None
    config.remember_batch(ctx.url, ctx.token, created["batch_id"])
    ctx.out.line(
        f"Batch {created['batch_id']} {created['status']} with "
        f"{plural(created['total_items'], 'item')}."
    )
    for skipped in created["skipped_rows"][:SHOWN_SKIPPED]:
        ctx.out.note(f"Skipped row {skipped['row']}: {skipped['error']}.")
    if created["skipped_count"] > SHOWN_SKIPPED:
        ctx.out.note(f"... and {created['skipped_count'] - SHOWN_SKIPPED:,} more rows skipped.")
    if not args.wait:
        ctx.out.document(created)
        return Exit.OK
    batch = follow(ctx, created["batch_id"], args)
    ctx.out.document({**batch, "skipped_rows": created["skipped_rows"]})
    return ended(ctx, batch)


def show_status(args, ctx) -> Exit:
    batch = read(ctx, batch_id(args, ctx))
    ctx.out.line(describe(batch))
    if pace := (batch.get("pace") or {}).get("eta_seconds"):
        ctx.out.line(f"About {_duration(pace)} left.")
    if waiting := batch.get("waiting_for"):
        ctx.out.line(f"Waiting: {waiting['message']}")
    if batch.get("error"):
        ctx.out.line(f"Error: {batch['error']}")
    ctx.out.document(batch)
    return Exit.OK


def wait(args, ctx) -> Exit:
    batch = follow(ctx, batch_id(args, ctx), args)
    ctx.out.document(batch)
    return ended(ctx, batch)


def cancel(args, ctx) -> Exit:
    identifier = batch_id(args, ctx)
    batch = refusals(ctx, identifier, lambda: ctx.client().cancel_batch(identifier))
    ctx.out.line(f"Batch {identifier} {batch['status']}: {batch['cancelled_items']:,} cancelled.")
    ctx.out.document(batch)
    return Exit.OK


def retry_failed(args, ctx) -> Exit:
    identifier = batch_id(args, ctx)
    batch = refusals(ctx, identifier, lambda: ctx.client().retry_failed(identifier))
    ctx.out.line(
        f"Batch {identifier}: {plural(batch['retried_items'], 'failed item')} queued again."
    )
    if not args.wait:
        ctx.out.document(batch)
        return Exit.OK
    batch = follow(ctx, identifier, args)
    ctx.out.document(batch)
    return ended(ctx, batch)


def follow(ctx, identifier: str, args) -> dict:
    """Wait for the batch to end with a progress bar (plain lines off a terminal)."""
    read(ctx, identifier)  # a missing batch is said before any progress is drawn
    with ctx.out.progress(unit="items", label=f"Batch {identifier[:8]}") as progress:

        def show(batch: dict) -> None:
            ran = batch["processed_items"] + batch["failed_items"]
            progress.set(ran, total=batch["total_items"], note=_note(batch))

        try:
            return ctx.client().wait_for_batch(
                identifier, poll=args.poll, timeout=args.wait_timeout, progress=show
            )
        except TimeoutError:
            raise CliError(
                f"Batch {identifier} has not ended after {args.wait_timeout:g} s; "
                f"'batchsvc batch wait {identifier}' waits again."
            ) from None


def _note(batch: dict) -> str:
    note = f"{batch['processed_items']:,} succeeded, {batch['failed_items']:,} failed"
    if batch["cancelled_items"]:
        note += f", {batch['cancelled_items']:,} cancelled"
    if eta := (batch.get("pace") or {}).get("eta_seconds"):
        note += f", about {_duration(eta)} left"
    if waiting := batch.get("waiting_for"):
        note += f", waiting for {waiting['reason'].replace('_', ' ')}"
    return note


def ended(ctx, batch: dict) -> Exit:
    ctx.out.line(describe(batch))
    if batch.get("error"):
        ctx.out.line(f"Error: {batch['error']}")
    if batch["failed_items"]:
        ctx.out.line(
            f"'batchsvc batch results {batch['id']} --failed-only -o failed.csv' writes the "
            "failed rows to fix and upload again."
        )
    return OUTCOMES.get(batch["status"], Exit.ERROR)


def describe(batch: dict) -> str:
    ran = batch["processed_items"] + batch["failed_items"]
    name = f" ({batch['name']})" if batch.get("name") else ""
    return (
        f"Batch {batch['id']}{name}: {batch['status']}, {ran:,} of "
        f"{plural(batch['total_items'], 'item')} ran: {_note(batch)}."
    )


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
