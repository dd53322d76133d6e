"""``batchsvc traces write FILE...``: trace files, several per request."""

from pathlib import Path

from batchsvc_client.cli.output import CliError, Exit, outcome, plural
from batchsvc_client.cli.parsing import command, group
from batchsvc_client.traces import TraceWriter


def register(commands, common) -> None:
    traces = group(commands, "traces", "write trace files")
    write = command(
        traces,
        "write",
        common,
        help="write text files as trace files, each under its own name, several per request",
        example="batchsvc traces write out/trace-*.json --dir nightly/2026-01-28 --run build-42",
        handler=write_traces,
    )
    write.add_argument("files", nargs="+", metavar="FILE", help="UTF-8 text files")
    write.add_argument(
        "--dir",
        default="",
        metavar="D",
        help="the directory under the server's trace root (default: the root)",
    )
    write.add_argument("--run", metavar="RUN_ID", help="link the files to this run")


def write_traces(args, ctx) -> Exit:
    files = [(read_text(path), Path(path).name) for path in args.files]
    writer = TraceWriter(ctx.client(), args.dir, run_id=args.run)
    results = writer.write(files)
    for result in results:
        where = result["file_path"] or result["file_name"]
        status = "written" if result["success"] else f"not written: {result['error']}"
        ctx.out.line(f"{where}: {status}")
    failed = sum(not result["success"] for result in results)
    ctx.out.line(f"{len(results) - failed:,} of {plural(len(results), 'file')} written.")
    ctx.out.document({"total": len(results), "written": len(results) - failed, "files": results})
    if any(result.get("unavailable") for result in results):
        return Exit.UNREACHABLE
    return outcome(failed=failed, total=len(results))


def read_text(path: str) -> str:
    """A file's text, or CliError before anything is sent."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"Cannot read {path}: {exc.strerror}; nothing was sent.") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(
            f"{path} is not UTF-8 text; trace files are text. Nothing was sent."
        ) from None
