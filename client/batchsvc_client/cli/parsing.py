"""argparse for ``batchsvc``: usage errors in one sentence, options every command
takes, an example under each command's help, and ``type=`` validators."""

import argparse
import sys

from batchsvc_client.cli.output import Exit


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One sentence naming the problem and where the help is; exit code 2."""
        sys.stderr.write(f"{self.prog}: {message}; see '{self.prog} --help'.\n")
        sys.exit(Exit.USAGE)


def common_options() -> argparse.ArgumentParser:
    """Options every command takes, before or after its name. Their defaults are
    set once on the top parser; here they are SUPPRESSed so that a subcommand does
    not overwrite what was given before its name."""
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = common.add_argument_group("connection and output")
    group.add_argument("--url", help="the server (default: BATCHSVC_URL, else batchsvc login's)")
    group.add_argument("--token", help="API token (default: BATCHSVC_TOKEN, else login's)")
    group.add_argument(
        "--json", action="store_true", help="print one JSON document, every per-item error in it"
    )
    group.add_argument(
        "--retry-deadline",
        type=seconds,
        metavar="SECONDS",
        help="how long to wait for an unavailable server before giving up (default: 120)",
    )
    group.add_argument(
        "--timeout",
        type=seconds,
        metavar="SECONDS",
        help="how long one request may take (default: 30)",
    )
    return common


def command(commands, name: str, common, *, help: str, example: str, handler, **more):
    """A subcommand with the common options, its one-line help and an example."""
    parser = commands.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
        **more,
    )
    parser.set_defaults(handler=handler)
    commands.leaves.append((parser.prog, help))
    return parser


def group(commands, name: str, help: str):
    """A command that holds commands (``batchsvc batch status``)."""
    parser = commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
    inner = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    inner.leaves = commands.leaves
    return inner


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, not {value!r}")
    return number


def seconds(value: str) -> float:
    """A number of seconds, 0 or more."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {value!r}")
    return number
