"""The ``batchsvc`` command: its parser, the context commands share, and how every
failure becomes one sentence on standard error and an exit code."""

import argparse
import logging
import os

import httpx

from batchsvc_client._http import UNAVAILABLE_STATUSES, ApiError
from batchsvc_client.cli import batches, config, get, login, logs, runs, traces
from batchsvc_client.cli.output import CliError, Exit, Output
from batchsvc_client.cli.parsing import Parser, common_options
from batchsvc_client.client import Client, TransactionTooLarge
from batchsvc_client.terminal import is_terminal, silence_stdout

DESCRIPTION = """\
batchsvc from a shell: upload runs, send a build's output to a run's log, write trace
files, upload spreadsheet batches, follow them and fetch their results.

The server and token come from --url/--token, else BATCHSVC_URL and BATCHSVC_TOKEN,
else the file 'batchsvc login URL' writes.

exit codes: 0 everything succeeded; 1 an error (nothing or not everything was done);
2 a usage error; 3 done with some items failed; 4 the server was unreachable past the
retry deadline."""


class Context:
    """What a command works with: its arguments, its output, and (once asked for)
    a Client for the configured server."""

    def __init__(self, args: argparse.Namespace, out: Output):
        self.args, self.out = args, out
        self.url = self.token = ""
        self._client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            self.url, self.token = config.settings(self.args, self.out.note)
            self._client = Client(
                self.url,
                self.token,
                timeout=self.args.timeout,
                retry_deadline=self.args.retry_deadline,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def build_parser() -> Parser:
    common = common_options()
    parser = Parser(
        prog="batchsvc",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.set_defaults(url=None, token=None, json=False, retry_deadline=120.0, timeout=30.0)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    commands.leaves = []  # (name, help) of every command that does something, for the epilog
    login.register(commands, common)
    runs.register(commands, common)
    logs.register(commands, common)
    traces.register(commands, common)
    batches.register(commands, common)
    get.register(commands, common)
    parser.epilog = "all commands (each with --help):\n" + "\n".join(
        f"  {name:<29}{help}" for name, help in commands.leaves
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Output(args.json)
    _log_to(out.stderr)
    ctx = Context(args, out)
    try:
        return int(args.handler(args, ctx))
    except BrokenPipeError:
        silence_stdout()  # the reader has what it wanted (| head): end quietly
        return Exit.OK
    except KeyboardInterrupt:
        out.note("batchsvc: interrupted.")
        return 130
    except Exception as exc:
        if os.environ.get("BATCHSVC_DEBUG"):
            raise
        error = exc if isinstance(exc, CliError) else explain(exc, ctx)
        out.error(error)
        return int(error.code)
    finally:
        ctx.close()


def explain(exc: Exception, ctx: Context) -> CliError:
    """A library or system error as one sentence and its exit code."""
    deadline = f"{ctx.args.retry_deadline:g} s"
    if isinstance(exc, TransactionTooLarge):
        return CliError(str(exc))
    if isinstance(exc, ApiError):
        return _api_error(exc, ctx.url, deadline)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return CliError(f"The server URL {ctx.url!r} is not valid ({exc}).", Exit.USAGE)
    if isinstance(exc, httpx.TransportError):
        return CliError(
            f"Cannot reach the server at {ctx.url} ({type(exc).__name__}: {exc}) within the "
            f"retry deadline of {deadline}; check the URL and that the server is running, "
            "or wait longer with --retry-deadline.",
            Exit.UNREACHABLE,
        )
    if isinstance(exc, OSError) and exc.filename is not None:
        return CliError(f"Cannot use {exc.filename}: {exc.strerror}.")
    return CliError(
        f"It failed unexpectedly ({type(exc).__name__}: {exc}); run it again with "
        "BATCHSVC_DEBUG=1 for the traceback, and report it."
    )


def _api_error(exc: ApiError, url: str, deadline: str) -> CliError:
    details = exc.body.get("details") if isinstance(exc.body, dict) else None
    message = exc.message.rstrip(".")
    if exc.status in UNAVAILABLE_STATUSES:
        return CliError(
            f"The server at {url} stayed unavailable (HTTP {exc.status}: {message}) past the "
            f"retry deadline of {deadline}; try again later, or wait longer with "
            "--retry-deadline.",
            Exit.UNREACHABLE,
        )
    if exc.status in (401, 403):
        return CliError(
            f"The server at {url} refused the token (HTTP {exc.status}: {message}); check "
            "--token or BATCHSVC_TOKEN, or run 'batchsvc login URL' again.",
            details=details,
        )
    return CliError(f"The server refused it: {message} (HTTP {exc.status}).", details=details)


def _log_to(stream) -> None:
    """The client's warnings (a retry, lines kept for later) on standard error while
    someone watches it; in a pipe or a log file only its errors, so that a failure
    reads as one sentence."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("batchsvc: %(message)s"))
    logger = logging.getLogger("batchsvc_client")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if is_terminal(stream) else logging.ERROR)
    logger.propagate = False
