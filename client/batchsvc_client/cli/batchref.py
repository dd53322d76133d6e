"""Which batch a command means (an id, or --last) and reading it, with the server's
refusals said as sentences about that batch."""

from batchsvc_client._http import ApiError
from batchsvc_client.cli import config
from batchsvc_client.cli.output import CliError, Exit


def batch_id(args, ctx) -> str:
    """The batch named on the command line, or with --last the one last uploaded."""
    if args.batch_id and args.last:
        raise CliError("Give a batch id or --last, not both.", Exit.USAGE)
    if args.batch_id:
        return args.batch_id
    if not args.last:
        raise CliError("Give a batch id, or --last for your most recent batch.", Exit.USAGE)
    client = ctx.client()
    if recorded := config.last_batch(ctx.url, ctx.token):
        return recorded
    newest = next(client.batches(page_size=1, fields="id"), None)
    if newest is None:
        raise CliError("You have no batches yet; upload one with 'batchsvc batch upload FILE'.")
    return newest["id"]


def read(ctx, identifier: str) -> dict:
    return refusals(ctx, identifier, lambda: ctx.client().batch(identifier))


def refusals(ctx, identifier: str, call):
    """``call()``, its 404 and 409 said in a sentence about the batch."""
    try:
        return call()
    except ApiError as exc:
        if exc.status == 404:
            raise CliError(
                f"There is no batch {identifier} (among those this token may see); "
                "'batchsvc batch status --last' shows your most recent."
            ) from None
        if exc.status == 409:
            raise CliError(f"Batch {identifier}: {exc.message}") from None
        raise
