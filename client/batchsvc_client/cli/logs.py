"""``batchsvc logs send RUN_ID`` (standard input to a run's log) and ``batchsvc logs
tail RUN_ID [-f]``."""

import json
import re
import sys
import time

from batchsvc_client._http import UNAVAILABLE_STATUSES, ApiError, unavailable
from batchsvc_client.cli.output import CliError, Exit, plural
from batchsvc_client.cli.parsing import command, group, positive_int, seconds
from batchsvc_client.logs import LEVELS, LogBatcher

# A level at the start of a line: "[warn] ...", "error: ...", "ERROR ...", "INFO:root:...".
_BRACKETED = re.compile(r"\s*\[\s*([A-Za-z]+)\s*\]")
_COLON = re.compile(r"\s*([A-Za-z]+)\s*:")
_CAPITALS = re.compile(r"\s*([A-Z]+)\s")
_LEVEL_WORDS = {
    **{level: level for level in LEVELS},
    "trace": "debug",
    "notice": "info",
    "warn": "warning",
    "err": "error",
    "crit": "critical",
    "fatal": "critical",
}


def register(commands, common) -> None:
    logs = group(commands, "logs", "send and read a run's log lines")
    _send_parser(logs, common)
    _tail_parser(logs, common)


def _send_parser(logs, common) -> None:
    send = command(
        logs,
        "send",
        common,
        help="send standard input to a run's log, line by line as it arrives, in batches",
        example="make build 2>&1 | batchsvc logs send build-42 --tee",
        handler=send_lines,
    )
    send.add_argument("run_id", metavar="RUN_ID", help="the run (it must exist)")
    send.add_argument(
        "--level",
        choices=LEVELS,
        help="the level of every line (default: read from a line's prefix, such as ERROR: "
        "or [warn], else info)",
    )
    send.add_argument("--tee", action="store_true", help="also copy the lines to standard output")
    send.add_argument(
        "--batch-size",
        type=positive_int,
        default=500,
        metavar="N",
        help="lines per request, at most the server's LOGS_BATCH_MAX (default: %(default)r)",
    )
    send.add_argument(
        "--flush-interval",
        type=seconds,
        default=1.0,
        metavar="SECONDS",
        help="the longest a line waits before it is sent (default: %(default)r)",
    )


def _tail_parser(logs, common) -> None:
    tail = command(
        logs,
        "tail",
        common,
        help="print a run's last log lines; with -f, follow new ones until the run ends",
        example="batchsvc logs tail build-42 -n 50 -f",
        handler=tail_lines,
    )
    tail.add_argument("run_id", metavar="RUN_ID")
    tail.add_argument(
        "-n",
        "--lines",
        type=int,
        default=10,
        metavar="N",
        help="how many of the last lines, 0 for all (default: %(default)r)",
    )
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    tail.add_argument("--min-level", choices=LEVELS, help="only this level and above")
    tail.add_argument(
        "--interval",
        type=seconds,
        default=1.0,
        metavar="SECONDS",
        help="with -f, seconds between looks (default: %(default)r)",
    )


def level_of(line: str) -> str:
    """The level a line's prefix names, else info."""
    for pattern in (_BRACKETED, _COLON, _CAPITALS):
        if (match := pattern.match(line)) and (level := _LEVEL_WORDS.get(match[1].lower())):
            return level
    return "info"


def send_lines(args, ctx) -> Exit:
    if args.json and args.tee:
        raise CliError("--json and --tee both write to standard output; choose one.", Exit.USAGE)
    client = ctx.client()
    _check_run(client, args.run_id)
    batcher = LogBatcher(
        client,
        args.run_id,
        max_batch_size=args.batch_size,
        flush_interval=args.flush_interval or 0.001,
        max_buffer=max(100_000, args.batch_size),
    )
    try:
        for raw in sys.stdin.buffer:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if args.tee:
                ctx.out.raw(line)
            batcher.add(args.level or level_of(line), line)
    finally:
        # Lines read so far are sent even when reading stopped (Ctrl-C).
        batcher.close(timeout=args.retry_deadline)
    return _sent(ctx, args.run_id, batcher)


def _check_run(client, run_id: str) -> None:
    try:
        client.run(run_id, fields=["run_id"])
    except ApiError as exc:
        if exc.status == 404:
            raise CliError(
                f"There is no run {run_id!r} (among the runs this token may see); create it "
                "first, for example with 'batchsvc runs upload'."
            ) from None
        raise


def _sent(ctx, run_id: str, batcher: LogBatcher) -> Exit:
    stats = batcher.stats
    requests = stats["batches_sent"] + stats["individual_sends"]
    summary = (
        f"{plural(stats['lines_sent'], 'line')} sent to run {run_id} in "
        f"{plural(requests, 'request')}"
    )
    lost = [f"{stats['rejected']:,} refused by the server"] if stats["rejected"] else []
    if stats["dropped"]:
        lost.append(f"{stats['dropped']:,} not sent")
    ctx.out.note(f"batchsvc: {summary}{'; ' + ', '.join(lost) if lost else ''}.")
    ctx.out.document({"run_id": run_id, "requests": requests, **stats})
    if stats["dropped"]:
        return Exit.UNREACHABLE if _unavailable(batcher.last_failure) else Exit.ERROR
    return Exit.PARTIAL if stats["rejected"] else Exit.OK


def _unavailable(failure: Exception | None) -> bool:
    """Whether the batcher's last failure was the server being away or busy."""
    if isinstance(failure, ApiError):
        return failure.status in UNAVAILABLE_STATUSES
    return failure is not None and unavailable(failure)


def tail_lines(args, ctx) -> Exit:
    client = ctx.client()
    filters = {"min_level": args.min_level} if args.min_level else {}
    if args.lines > 0:
        filters["tail"] = args.lines
    last = 0
    shown: list[dict] = []
    try:
        for line in client.log_lines(args.run_id, **filters):
            last = _show(ctx.out, line, shown, args)
    except ApiError as exc:
        if exc.status == 404:
            raise CliError(
                f"There is no run {args.run_id!r} (among the runs this token may see)."
            ) from None
        raise
    if not args.follow:
        ctx.out.document({"run_id": args.run_id, "lines": shown})
        return Exit.OK
    filters.pop("tail", None)
    while True:
        ended = client.run(args.run_id, fields=["status"])["status"] != "running"
        for line in client.log_lines(args.run_id, after=last, **filters):
            last = _show(ctx.out, line, shown, args)
        if ended:  # read after the run had ended: nothing more will come
            return Exit.OK
        time.sleep(args.interval)


def _show(out, line: dict, shown: list, args) -> int:
    """Print one line (with --json: keep it for the document, or when following print
    it as a JSON object on a line of its own); return its seq."""
    if args.json and args.follow:
        out.raw(json.dumps(line, ensure_ascii=False))
    elif args.json:
        shown.append(line)
    else:
        out.line(f"{line['timestamp']} {line['level'].upper():<8} {line['message']}")
    return line["seq"]
