"""Path rules for trace files: pure functions, no database, no file system."""

import pytest

from traces.paths import DEPTH_MAX, NAME_MAX_BYTES, PATH_MAX_CHARS, UnsafePath, trace_path

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


@pytest.mark.parametrize("file_name", HOSTILE_FILE_NAMES)
def test_a_hostile_file_name_is_refused(file_name):
    with pytest.raises(UnsafePath):
        trace_path("ok", file_name)


@pytest.mark.parametrize("directory", HOSTILE_DIRECTORIES)
def test_a_hostile_output_directory_is_refused(directory):
    with pytest.raises(UnsafePath):
        trace_path(directory, "trace.json")


@pytest.mark.parametrize(
    ("directory", "file_name", "path"),
    [
        ("", "trace.json", "trace.json"),
        (None, "trace.json", "trace.json"),
        ("nightly", "trace.json", "nightly/trace.json"),
        ("nightly/2026-01-28", "trace_actor_123.json", "nightly/2026-01-28/trace_actor_123.json"),
        ("./traces", "a.txt", "traces/a.txt"),
        ("traces/", "a.txt", "traces/a.txt"),
        ("./", "a.txt", "a.txt"),
        ("a/./b", "c.txt", "a/b/c.txt"),
        ("ünïcode/名前", "ファイル.txt", "ünïcode/名前/ファイル.txt"),
        ("runs", "run:1 (final).log", "runs/run:1 (final).log"),
        ("runs", ".hidden", "runs/.hidden"),
        ("runs", "a..b", "runs/a..b"),
        ("runs", "%41.txt", "runs/%41.txt"),
    ],
)
def test_a_plain_relative_path_is_accepted_and_normalised(directory, file_name, path):
    assert trace_path(directory, file_name) == path


def test_names_up_to_the_limit_are_accepted():
    name = "x" * NAME_MAX_BYTES
    assert trace_path("", name) == name


def test_a_path_longer_than_the_limit_in_bytes_is_refused():
    directory = "/".join(["é" * 100] * 6)  # 1,200 bytes, 605 characters
    with pytest.raises(UnsafePath, match=f"the limit is {PATH_MAX_CHARS}"):
        trace_path(directory, "a.txt")


def test_the_error_names_the_field_and_the_problem():
    with pytest.raises(UnsafePath) as caught:
        trace_path("../x", "a.txt")
    assert str(caught.value) == "output_directory must not be . or .. in any spelling"


def test_a_huge_name_is_refused_by_its_length_alone():
    with pytest.raises(UnsafePath, match="longer than 255 bytes"):
        trace_path("", "\x00" * 10_000_000)  # the length, not the NUL, is reported
    with pytest.raises(UnsafePath, match=f"limit of {PATH_MAX_CHARS} bytes"):
        trace_path("a" * 10_000_000, "t.txt")
