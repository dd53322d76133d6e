"""Path rules for trace files: pure functions, no database, no file system."""

import pytest

from tests.support.hostile import HOSTILE_DIRECTORIES, HOSTILE_FILE_NAMES
from traces.paths import NAME_MAX_BYTES, PATH_MAX_CHARS, UnsafePath, trace_path


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
