"""The trace storage on a real file system: atomic replace, no link followed,
nothing written outside the root. No database."""

import os
import threading

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile

from traces.storage import TraceStorage, close_all, describe_os_error


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


@pytest.fixture
def outside(tmp_path):
    path = tmp_path / "outside"
    path.mkdir()
    return path


@pytest.fixture
def storage(root):
    return TraceStorage(location=str(root))


def tree(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_save_writes_under_the_root_creating_directories(storage, root):
    name = storage.save("a/b/trace.json", ContentFile(b'{"x": 1}'))
    assert name == "a/b/trace.json"
    assert (root / "a" / "b" / "trace.json").read_bytes() == b'{"x": 1}'
    assert tree(root) == ["a", "a/b", "a/b/trace.json"]  # no temporary file left


def test_saving_a_path_again_replaces_the_file(storage, root):
    storage.save("t.txt", ContentFile(b"first version, longer"))
    assert storage.save("t.txt", ContentFile(b"second")) == "t.txt"
    assert (root / "t.txt").read_bytes() == b"second"
    assert tree(root) == ["t.txt"]


def test_a_directory_link_out_of_the_root_is_refused_and_nothing_lands_outside(
    storage, root, outside
):
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OSError) as caught:
        storage.save("link/escape.txt", ContentFile(b"x"))
    assert "symbolic link" in describe_os_error(caught.value)
    assert tree(outside) == []


def test_a_directory_link_inside_the_root_is_not_followed_either(storage, root):
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    with pytest.raises(OSError):
        storage.save("alias/t.txt", ContentFile(b"x"))
    assert tree(root / "real") == []


def test_a_link_deeper_in_the_path_is_refused(storage, root, outside):
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "c").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OSError):
        storage.save("a/b/c/d/t.txt", ContentFile(b"x"))
    assert tree(outside) == []


def test_a_file_link_at_the_target_is_replaced_not_written_through(storage, root, outside):
    victim = outside / "victim.txt"
    victim.write_bytes(b"precious")
    root.mkdir()
    (root / "t.txt").symlink_to(victim)
    storage.save("t.txt", ContentFile(b"new"))
    assert victim.read_bytes() == b"precious"
    assert not (root / "t.txt").is_symlink()
    assert (root / "t.txt").read_bytes() == b"new"


def test_a_root_that_is_itself_a_link_is_resolved_once_and_used(tmp_path, outside):
    (tmp_path / "root-link").symlink_to(outside, target_is_directory=True)
    storage = TraceStorage(location=str(tmp_path / "root-link"))
    storage.save("a/t.txt", ContentFile(b"x"))
    assert (outside / "a" / "t.txt").read_bytes() == b"x"


def test_a_directory_at_the_target_is_an_os_error_and_leaves_no_temporary_file(storage, root):
    (root / "a" / "t.txt").mkdir(parents=True)
    with pytest.raises(OSError) as caught:
        storage.save("a/t.txt", ContentFile(b"x"))
    assert describe_os_error(caught.value) == "the path names a directory, not a file"
    assert tree(root) == ["a", "a/t.txt"]


def test_a_file_where_a_directory_should_be_is_an_os_error(storage, root):
    root.mkdir()
    (root / "a").write_bytes(b"file")
    with pytest.raises(OSError) as caught:
        storage.save("a/t.txt", ContentFile(b"x"))
    assert "not a directory" in describe_os_error(caught.value)


@pytest.mark.parametrize("name", ["../x.txt", "/abs.txt", "a/../../x.txt", "a\\b.txt", "n\x00.txt"])
def test_unsafe_names_are_refused_before_any_write(storage, tmp_path, name):
    with pytest.raises(SuspiciousFileOperation):
        storage.save(name, ContentFile(b"x"))
    assert tree(tmp_path) == []


def test_open_reads_a_file_and_refuses_a_link(storage, root, outside):
    storage.save("t.txt", ContentFile(b"hello"))
    with storage.open("t.txt") as stream:
        assert stream.read() == b"hello"
    (outside / "secret.txt").write_bytes(b"secret")
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(OSError):
        storage.open("leak.txt")


def test_path_refuses_a_name_that_goes_through_a_link(storage, root, outside):
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    assert storage.path("plain/t.txt") == os.path.join(os.path.realpath(root), "plain", "t.txt")
    with pytest.raises(SuspiciousFileOperation):
        storage.path("link/t.txt")
    with pytest.raises(SuspiciousFileOperation):
        storage.exists("link/t.txt")


def test_a_reader_never_sees_half_a_file(storage, root):
    """Two 1 MiB versions are written over each other while a reader keeps
    reading: every read is one whole version."""
    versions = [b"a" * 2**20, b"b" * 2**20]
    storage.save("t.bin", ContentFile(versions[0]))
    stop = threading.Event()
    seen = set()

    def read():
        while not stop.is_set():
            seen.add((root / "t.bin").read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(40):
            storage.save("t.bin", ContentFile(versions[i % 2]))
    finally:
        stop.set()
        reader.join()
    assert seen <= set(versions)
    assert tree(root) == ["t.bin"]


def test_a_staged_file_is_invisible_until_published(storage, root):
    storage.save("t.txt", ContentFile(b"old"))
    staged = storage.stage("t.txt", [b"new"])
    try:
        assert (root / "t.txt").read_bytes() == b"old"
        staged.publish()
        assert (root / "t.txt").read_bytes() == b"new"
    finally:
        staged.close()
    assert tree(root) == ["t.txt"]


def test_a_staged_file_never_published_leaves_nothing_behind(storage, root):
    storage.stage("a/t.txt", [b"x"]).close()
    assert tree(root) == ["a"]


def test_a_directory_swapped_for_a_link_mid_batch_still_gets_the_files_not_the_link(
    storage, root, outside
):
    """A batch opens each directory once; a link put in its place afterwards
    cannot redirect the batch's later files out of the root."""
    with storage.directories() as directories:
        first = storage.stage("a/1.txt", [b"1"], directories=directories)
        (root / "a").rename(root / "moved")
        (root / "a").symlink_to(outside, target_is_directory=True)
        second = storage.stage("a/2.txt", [b"2"], directories=directories)
    for staged in (first, second):
        staged.publish()
        staged.close()
    assert tree(outside) == []
    assert sorted(p.name for p in (root / "moved").iterdir()) == ["1.txt", "2.txt"]


def test_files_staged_unflushed_are_flushed_from_other_threads_and_published(storage, root):
    names = [f"d/{n}.txt" for n in range(4)]
    staged = [storage.stage(name, [name.encode()] * 3, sync=False) for name in names]
    assert all(file.fd is not None for file in staged)
    threads = [threading.Thread(target=file.sync) for file in staged[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for file in staged:
        file.publish()  # the last two flush here, before their rename
        assert file.fd is None
    close_all(staged)
    for name in names:
        assert (root / name).read_bytes() == name.encode() * 3
    assert tree(root) == ["d", *names]


def test_an_unflushed_file_never_published_leaves_nothing_behind(storage, root):
    storage.stage("a/t.txt", [b"x"], sync=False).close()
    assert tree(root) == ["a"]
