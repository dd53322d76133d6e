"""Where the command line finds its server and token, and what it remembers.

The URL and token come from ``--url``/``--token``, else ``BATCHSVC_URL`` and
``BATCHSVC_TOKEN``, else the config file ``batchsvc login`` writes
(``$BATCHSVC_CONFIG``, else ``$XDG_CONFIG_HOME/batchsvc/config.json``, else
``~/.config/batchsvc/config.json``), readable by its owner only. The batches
uploaded from here are remembered in a state file beside the user's other state
(``$XDG_STATE_HOME/batchsvc/state.json``, else ``~/.local/state/...``), for
``--last``; it holds no token, only a fingerprint of it.
"""

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from batchsvc_client.cli.output import CliError, Exit


def config_path() -> Path:
    if explicit := os.environ.get("BATCHSVC_CONFIG"):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "batchsvc" / "config.json"


def state_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "batchsvc" / "state.json"


def read_json(path: Path, warn=None) -> dict:
    """The JSON object in ``path``, or {} when there is none. ``warn(sentence)`` is
    told when others may read the file."""
    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            data = json.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"Cannot read {path} ({exc}); fix or delete it.") from None
    if warn is not None and mode & 0o077:
        warn(f"batchsvc: {path} is readable by others; run chmod 600 {path}.")
    if not isinstance(data, dict):
        raise CliError(f"{path} does not hold a JSON object; fix or delete it.")
    return data


def write_private(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``path``, readable and writable by its owner only,
    through a temporary file renamed into place (never half-written)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as file:  # mkstemp makes it 0600
            json.dump(data, file, indent=2)
            file.write("\n")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def settings(args, warn) -> tuple[str, str]:
    """The server URL and token: flags, else environment, else the config file."""
    stored: dict | None = None

    def pick(flag: str | None, variable: str, key: str) -> str:
        nonlocal stored
        if flag:
            return flag
        if value := os.environ.get(variable):
            return value
        if stored is None:
            stored = read_json(config_path(), warn)
        return str(stored.get(key) or "")

    url = pick(args.url, "BATCHSVC_URL", "url")
    token = pick(args.token, "BATCHSVC_TOKEN", "token")
    missing = [name for name, value in (("URL", url), ("token", token)) if not value]
    if missing:
        raise CliError(
            f"No server {' or '.join(missing)} given: run 'batchsvc login URL', or set "
            "BATCHSVC_URL and BATCHSVC_TOKEN, or pass --url and --token.",
            Exit.USAGE,
        )
    if not url.startswith(("http://", "https://")):
        raise CliError(
            f"The server URL {url!r} does not start with http:// or https://; give it "
            "whole, e.g. http://127.0.0.1:8000.",
            Exit.USAGE,
        )
    return url.rstrip("/"), token


def save_login(url: str, token: str) -> Path:
    path = config_path()
    write_private(path, {"url": url, "token": token})
    return path


def _key(url: str, token: str) -> str:
    """Who the state is about: the server and a fingerprint of the token (not it)."""
    return f"{url} {hashlib.sha256(token.encode()).hexdigest()[:16]}"


def remember_batch(url: str, token: str, batch_id: str) -> None:
    path = state_path()
    state = read_json(path)
    state[_key(url, token)] = {"last_batch": batch_id}
    # Not kept (a read-only home): --last then falls back to the server's newest batch.
    with contextlib.suppress(OSError):
        write_private(path, state)


def last_batch(url: str, token: str) -> str | None:
    entry = read_json(state_path()).get(_key(url, token))
    return entry.get("last_batch") if isinstance(entry, dict) else None
