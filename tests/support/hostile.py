"""Names and paths that must never escape a storage root."""

from traces.paths import DEPTH_MAX, NAME_MAX_BYTES

HOSTILE_FILE_NAMES = [
    "",
    ".",
    "..",
    "...",
    ". .",
    ".. ",
    "../escape.txt",
    "a/b.txt",
    "/etc/passwd",
    "..\\escape.txt",
    "a\\b.txt",
    "C:escape.txt",
    "c:\\windows\\escape.txt",
    "%2e%2e",
    "%2E%2E",
    "%252e%252e",
    "%2e%2e%2fescape",
    "..%2fescape",
    "..%5cescape",
    "\uff0e\uff0e",  # full-width dots: NFKC folds them to ..
    "\u2024\u2024",  # one-dot leaders
    "name\x00.txt",
    "name\n.txt",
    "name\r.txt",
    "name\t.txt",
    "\x1b[31mred.txt",
    "name\x7f.txt",
    "name\x85.txt",  # C1 control
    "evil\u202etxt.exe",  # right-to-left override
    "line\u2028sep.txt",
    "x" * (NAME_MAX_BYTES + 1),
    "é" * (NAME_MAX_BYTES // 2 + 1),  # short in characters, long in bytes
]

HOSTILE_DIRECTORIES = [
    "/",
    "/tmp",
    "//server/share",
    "..",
    "../..",
    "a/../..",
    "a/..",
    "a/./../b",
    "a//b",
    "a\\..\\b",
    "C:/Windows",
    "a/C:/b",
    "d:",
    "%2e%2e/x",
    "a/%2e%2e",
    "a/\uff0e\uff0e/b",
    "a/.. /b",
    "a\x00b",
    "a/\nb",
    "/".join(["d"] * (DEPTH_MAX + 1)),
    "x" * (NAME_MAX_BYTES + 1),
]
