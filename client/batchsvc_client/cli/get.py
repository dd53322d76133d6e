"""``batchsvc get RESOURCE ID...``: several objects in one request (batch GET)."""

import argparse
import json

from batchsvc_client.cli.output import CliError, Exit, outcome
from batchsvc_client.cli.parsing import command

RESOURCES = ("runs", "trace_files", "log_entries", "batches", "interactions")
NUMBERED = ("trace_files", "log_entries", "interactions")  # their ids are whole numbers


def register(commands, common) -> None:
    parser = command(
        commands,
        "get",
        common,
        help="fetch several objects of one kind by id, each with its own answer",
        example="batchsvc get runs nightly-001 nightly-002 --fields run_id,status",
        handler=get_objects,
    )
    parser.add_argument(
        "resource", choices=RESOURCES, metavar="RESOURCE", help=", ".join(RESOURCES)
    )
    parser.add_argument("ids", nargs="+", metavar="ID")
    parser.add_argument("--fields", type=fields, metavar="a,b", help="only these fields")


def fields(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"must name fields, as in run_id,status, not {value!r}")
    return names


def get_objects(args, ctx) -> Exit:
    ids = [_id(args.resource, value) for value in args.ids]
    answer = ctx.client().batch_get(args.resource, ids, fields=args.fields)
    for result in answer["results"]:
        if result["status"] == "success":
            ctx.out.line(f"{result['id']}: {json.dumps(result['data'], ensure_ascii=False)}")
        else:
            ctx.out.line(f"{result['id']}: error {result['status_code']}: {result['error']}")
    ctx.out.document(answer)
    return outcome(failed=answer["total_failed"], total=answer["total_requested"])


def _id(resource: str, value: str) -> str | int:
    if resource not in NUMBERED:
        return value
    if not value.isascii() or not value.isdigit():
        raise CliError(f"{resource} ids are whole numbers, not {value!r}.", Exit.USAGE)
    return int(value)
