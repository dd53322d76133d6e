"""Checks on the paths clients give for trace files. Pure string functions: no
file system, no Django, so they run before anything touches a disk or a bucket.

A trace file lands at ``<root>/<output_directory>/<file_name>``. Both parts are
relative; anything that could name a place outside the root, or that one of the
file systems or object stores behind a Django storage could read differently
from us, is refused with :class:`UnsafePath`. The storage then re-checks on the
real file system (see :mod:`traces.storage`): these rules cannot see symlinks.
"""

import re
import unicodedata
from urllib.parse import unquote

NAME_MAX_BYTES = 255
"""Longest file or directory name (bytes of UTF-8): NAME_MAX on Linux and macOS."""
PATH_MAX_CHARS = 1024
"""Longest relative path we store, in bytes of UTF-8 (so also in characters: the
TraceFile.path column's length). Bytes, because PostgreSQL's unique index refuses
entries over ~2,700 bytes."""
DEPTH_MAX = 32
"""Most directory levels in output_directory."""
NAMESPACE_ROOT = "owners"
"""The storage's top directory: each owner's files live in ``owners/<user id>/``."""
_NAMESPACE_LEVELS, _NAMESPACE_BYTES = 2, len(NAMESPACE_ROOT) + 22  # "owners/<bigint>/"
STORAGE_NAME_MAX = PATH_MAX_CHARS + _NAMESPACE_BYTES
"""Longest name a trace file has in the storage: its path inside its owner's namespace."""

_DRIVE = re.compile(r"^[A-Za-z]:")
# Control (Cc) and format (Cf: bidi overrides, zero-width) characters, line and
# paragraph separators, surrogates, private-use and unassigned code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


class UnsafePath(ValueError):
    """A path that could land outside the storage root, or that we refuse to store."""


def storage_name(owner_id: int, path: str) -> str:
    """Where an owner's file at ``path`` (a checked path) lives in the storage."""
    return f"{NAMESPACE_ROOT}/{owner_id}/{path}"


def trace_path(output_directory: str | None, file_name: str, *, namespaced: bool = False) -> str:
    """The normalised relative path ``dir/sub/name`` for a trace file, or
    :class:`UnsafePath` saying what is wrong.

    ``file_name`` is one name, never a path. ``output_directory`` is a relative
    POSIX path; ``.`` parts and one trailing slash are dropped, so ``./traces/``
    means ``traces``. ``namespaced`` allows for the owner's namespace in front of
    a client's path (the storage checks its names with it).
    """
    path_max = PATH_MAX_CHARS + (_NAMESPACE_BYTES if namespaced else 0)
    # Lengths first, cheaply (a character is at least one byte), so a megabyte of
    # name is refused before any per-character check runs over it.
    if len(file_name) > NAME_MAX_BYTES:
        raise UnsafePath(f"file_name has a name longer than {NAME_MAX_BYTES} bytes")
    if output_directory and len(output_directory) > path_max:
        raise UnsafePath(f"the path is longer than the limit of {path_max} bytes")
    name = _component("file_name", file_name)
    depth_max = DEPTH_MAX + (_NAMESPACE_LEVELS if namespaced else 0)
    parts = directory_parts(output_directory or "", depth_max=depth_max)
    path = "/".join([*parts, name])
    size = len(path.encode())
    if size > path_max:
        raise UnsafePath(f"the path is {size} bytes long; the limit is {path_max}")
    return path


def directory_parts(output_directory: str, *, depth_max: int = DEPTH_MAX) -> list[str]:
    """The checked parts of an output directory (``[]`` for the root itself)."""
    _check_text("output_directory", output_directory)
    if output_directory.startswith("/"):
        raise UnsafePath("output_directory must be relative, not an absolute path")
    if output_directory.endswith("/"):
        output_directory = output_directory[:-1]
    if not output_directory:
        return []
    raw_parts = output_directory.split("/")
    if "" in raw_parts:
        raise UnsafePath("output_directory must not contain empty parts (//)")
    parts = [_component("output_directory", part) for part in raw_parts if part != "."]
    if len(parts) > depth_max:
        raise UnsafePath(f"output_directory is {len(parts)} levels deep; the limit is {depth_max}")
    return parts


def _component(field: str, value: str) -> str:
    """One file or directory name."""
    _check_text(field, value)
    if not value:
        raise UnsafePath(f"{field} must not be empty")
    if "/" in value:
        raise UnsafePath(f"{field} must be a name, not a path (no /)")
    if _is_dots(value):
        raise UnsafePath(f"{field} must not be . or .. in any spelling")
    if len(value.encode()) > NAME_MAX_BYTES:
        raise UnsafePath(f"{field} has a name longer than {NAME_MAX_BYTES} bytes")
    return value


def _check_text(field: str, value: str) -> None:
    """Rules for the whole string, whatever its parts."""
    if "\\" in value:
        raise UnsafePath(f"{field} must not contain backslashes")
    if _DRIVE.match(value) or any(_DRIVE.match(part) for part in value.split("/")):
        raise UnsafePath(f"{field} must not start with a drive letter")
    for char in value:
        if unicodedata.category(char) in _UNSAFE_CATEGORIES:
            raise UnsafePath(f"{field} must not contain control characters (U+{ord(char):04X})")


def _is_dots(part: str) -> bool:
    """Whether a name means ``.`` or ``..`` to some reader: percent-encoded
    (``%2e%2e``, even twice), in full-width or other compatibility forms that
    NFKC folds to dots (``\\uff0e\\uff0e``), or with the trailing dots and spaces that
    Windows drops (``.. .``)."""
    text = part
    for _ in range(3):  # %252e%252e -> %2e%2e -> ..
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    text = unicodedata.normalize("NFKC", text)
    if "/" in text or "\\" in text:
        return True  # an encoded separator is a traversal in disguise
    return text.rstrip(". ") == ""
