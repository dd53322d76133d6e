"""``batchsvc login URL``: check a token with the server and keep both in the config file."""

import os
import sys

from batchsvc_client.cli import config
from batchsvc_client.cli.output import Exit
from batchsvc_client.cli.parsing import command


def register(commands, common) -> None:
    parser = command(
        commands,
        "login",
        common,
        help="store the server URL and your token in your config file (readable by you only)",
        example="batchsvc login http://127.0.0.1:8000     # asks for the token\n"
        "  echo $TOKEN | batchsvc login https://batchsvc.example.com",
        handler=login,
    )
    parser.add_argument("server", metavar="URL", help="the server, e.g. http://127.0.0.1:8000")


def login(args, ctx) -> Exit:
    token = args.token or os.environ.get("BATCHSVC_TOKEN") or _read_token(args.server)
    args.url, args.token = args.server, token
    client = ctx.client()
    next(client.batches(page_size=1, fields="id"), None)  # a 401 when it refuses the token
    path = config.save_login(ctx.url, ctx.token)
    ctx.out.line(f"Logged in to {ctx.url}; saved in {path} (readable by you only).")
    ctx.out.document({"url": ctx.url, "config": str(path)})
    return Exit.OK


def _read_token(url: str) -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"Token for {url}: ").strip()
    return sys.stdin.readline().strip()
