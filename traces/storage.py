"""The default storage for trace files: a FileSystemStorage that writes atomically
and never leaves its root.

Django's FileSystemStorage checks names as strings (``safe_join``): a directory
symlink inside the root sends a save outside it, and a NUL byte or an over-long
name surfaces as an unhandled error. Here every write walks the path one
directory at a time from the real root with ``O_NOFOLLOW`` relative to the
parent's file descriptor, so a link anywhere in the path is refused rather than
followed, and nothing can swap a directory for a link between check and use.

The ``traces`` alias in ``STORAGES`` names this class by default; any Django
storage (S3 through django-storages) can take its place by configuration.
"""

import errno
import os
import stat
import threading
import uuid
from collections.abc import Iterable
from contextlib import ExitStack, suppress

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import FileSystemStorage

from traces.paths import UnsafePath, trace_path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class TraceStorage(FileSystemStorage):
    """Saves replace the file in one rename (readers see the old file or the new
    one, never half of one) and refuse any path that is not plainly inside the root."""

    def __init__(self, *, fsync: bool = True, **kwargs):
        # Saving a path again replaces the file: a trace is rewritten in place.
        kwargs.setdefault("allow_overwrite", True)
        super().__init__(**kwargs)
        self.fsync = fsync

    def get_available_name(self, name, max_length=None):
        # Checked before Django's version turns backslashes into separators.
        return super().get_available_name(checked_name(name), max_length=max_length)

    def _save(self, name, content):
        staged = self.stage(name, content.chunks())
        try:
            staged.publish()
        finally:
            staged.close()
        return checked_name(name)

    def stage(
        self,
        name: str,
        chunks: Iterable[bytes],
        *,
        directories: "Directories | None" = None,
        sync: bool = True,
    ) -> "StagedFile":
        """Write a file without showing it yet: see :class:`StagedFile`. The
        trace service publishes staged files under a lock, so that files and
        their rows change in the same order when two requests write one path.
        A batch passes its :meth:`directories` to open each directory once, and
        ``sync=False`` to flush its files together (:meth:`StagedFile.sync`)."""
        return stage_file(
            self.location,
            checked_name(name),
            chunks,
            fsync=self.fsync,
            file_mode=self.file_permissions_mode,
            directory_mode=self.directory_permissions_mode,
            directories=directories,
            sync=sync,
        )

    def directories(self) -> "Directories":
        return Directories(self.location, mode=self.directory_permissions_mode)

    def _open(self, name, mode="rb"):
        if mode not in ("r", "rb"):
            raise ValueError("Trace files are opened for reading only; save() writes them.")
        return File(os.fdopen(open_for_reading(self.location, checked_name(name)), mode), name)

    def path(self, name):
        """The file's absolute path, refused unless its real path (links resolved)
        is the same path under the real root, i.e. no part of it is a link."""
        root = os.path.realpath(self.location)
        candidate = os.path.join(root, *checked_name(name).split("/"))
        if os.path.realpath(candidate) != candidate:
            raise SuspiciousFileOperation(f"{name!r} goes through a symbolic link.")
        return candidate


def checked_name(name: str) -> str:
    """The name as a checked relative path: the same rules the API applies."""
    directory, _, file_name = str(name).rpartition("/")
    try:
        return trace_path(directory, file_name, namespaced=True)
    except UnsafePath as exc:
        raise SuspiciousFileOperation(f"Unsafe trace path {name!r}: {exc}.") from None


class StagedFile:
    """A file written in full under a temporary name beside its target, not yet
    visible there. :meth:`publish` renames it into place; :meth:`close` must
    follow, published or not.

    The directory stays open between the two, so the rename lands in the
    directory that was checked, whatever happens to the path meanwhile.
    """

    def __init__(self, dir_fd: int, temporary: str, file_name: str, size: int, fsync: bool):
        self.dir_fd, self.temporary, self.file_name = dir_fd, temporary, file_name
        self.size, self.fsync = size, fsync
        self.published = False
        self.fd: int | None = None  # the file itself, while its flush is still to come

    def sync(self) -> None:
        """Flush the file's bytes to disk (when the storage flushes) and close it.
        Safe to call from another thread, one file per thread: the flushes of
        several files overlap on the disk."""
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def publish(self) -> None:
        """Rename over the target: atomic on POSIX, so a reader sees the old file
        or the new one. On failure the temporary file is removed."""
        self.sync()  # never a name for bytes that are not on disk yet
        try:
            os.replace(
                self.temporary, self.file_name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd
            )
        except BaseException:
            self._discard()
            raise
        self.published = True

    def close(self, *, sync: bool = True) -> None:
        """Flush the directory (a crash after a published write keeps it) unless
        ``sync`` is false, or remove the temporary file of one never published."""
        try:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            if self.published and self.fsync and sync:
                os.fsync(self.dir_fd)
            elif not self.published:
                self._discard()
        finally:
            os.close(self.dir_fd)

    @property
    def directory(self) -> tuple[int, int]:
        """Which directory the file is in: (device, inode)."""
        info = os.fstat(self.dir_fd)
        return info.st_dev, info.st_ino

    def _discard(self) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self.temporary, dir_fd=self.dir_fd)


def close_all(staged: Iterable[StagedFile]) -> None:
    """Close staged files, flushing each directory that received one only once:
    the ten files of a batch in one directory cost one directory flush, not ten."""
    flushed = set()
    with ExitStack() as closing:  # closes every file even when one close fails
        for file in staged:
            directory = file.directory
            closing.callback(file.close, sync=file.published and directory not in flushed)
            if file.published:
                flushed.add(directory)


def stage_file(
    root: str,
    name: str,
    chunks: Iterable[bytes],
    *,
    fsync: bool = True,
    file_mode: int | None = None,
    directory_mode: int | None = None,
    directories: "Directories | None" = None,
    sync: bool = True,
) -> StagedFile:
    """Write ``chunks`` for ``root/name`` to a temporary file in the target's
    directory, flushed to disk (or, with ``sync`` false, left open for
    :meth:`~StagedFile.sync`), ready to :meth:`~StagedFile.publish`.

    Each directory of ``name`` is opened below the real root relative to its
    parent, created when missing, and refused when it is a link (``O_NOFOLLOW``);
    or taken from ``directories``, where a batch opened it already.
    """
    *parts, file_name = name.split("/")
    if directories is None:
        dir_fd = _open_directory(root, parts, create=True, mode=directory_mode)
    else:
        dir_fd = directories.open(tuple(parts))
    temporary = f".tmp-{uuid.uuid4().hex}"
    try:
        fd = os.open(temporary, _NEW_FILE_FLAGS, 0o666, dir_fd=dir_fd)
    except BaseException:
        os.close(dir_fd)
        raise
    staged = StagedFile(dir_fd, temporary, file_name, 0, fsync)
    staged.fd = fd
    try:
        staged.size = _write_all(fd, chunks, mode=file_mode)
        if sync:
            staged.sync()
    except BaseException:
        staged.close()
        raise
    return staged


class Directories:
    """The directories one batch writes into, each walked, checked and opened
    once and shared by the batch's threads, then closed with the batch. Ten files
    in one directory cost one walk from the root, not ten."""

    def __init__(self, root: str, *, mode: int | None = None):
        self.root, self.mode = root, mode
        self._fds: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def open(self, parts: tuple[str, ...]) -> int:
        """A new descriptor of ``root/parts...`` for the caller to close."""
        with self._lock:
            fd = self._fds.get(parts)
            if fd is None:
                fd = _open_directory(self.root, list(parts), create=True, mode=self.mode)
                self._fds[parts] = fd
            return os.dup(fd)


def _write_all(fd: int, chunks: Iterable[bytes], *, mode: int | None) -> int:
    """Write every chunk to ``fd``, which stays open."""
    written = 0
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]
        written += len(chunk)
    if mode is not None:
        os.fchmod(fd, mode)
    return written


def open_for_reading(root: str, name: str) -> int:
    """A read-only file descriptor for ``root/name``, following no link."""
    *directories, file_name = name.split("/")
    dir_fd = _open_directory(root, directories, create=False)
    try:
        return os.open(file_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _open_directory(root: str, parts: list[str], *, create: bool, mode: int | None = None) -> int:
    """A file descriptor for ``root/parts...``, walked one level at a time."""
    real_root = os.path.realpath(root)
    if create:
        os.makedirs(real_root, exist_ok=True)
    fd = os.open(real_root, _DIR_FLAGS)
    try:
        for part in parts:
            child = _child(fd, part, create=create, mode=mode)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _child(parent_fd: int, part: str, *, create: bool, mode: int | None) -> int:
    """Open directory ``part`` of ``parent_fd``, creating it if asked."""
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=parent_fd)
    except NotADirectoryError:
        # Linux answers ENOTDIR for a link opened with O_DIRECTORY | O_NOFOLLOW;
        # say it was a link, which is what the client needs to hear.
        if stat.S_ISLNK(os.stat(part, dir_fd=parent_fd, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, "Symbolic link not followed", part) from None
        raise
    except FileNotFoundError:
        if not create:
            raise
    # Another writer may create it first: either way it is there now.
    with suppress(FileExistsError):
        os.mkdir(part, 0o777 if mode is None else mode, dir_fd=parent_fd)
    return os.open(part, _DIR_FLAGS, dir_fd=parent_fd)


def describe_os_error(exc: OSError) -> str:
    """A sentence for a client about why a file could not be written: never the
    server's absolute path."""
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return "a part of the path is a symbolic link, and links are not followed"
    if exc.errno == errno.ENOTDIR:
        return "a part of output_directory is a file, not a directory"
    if exc.errno == errno.EISDIR:
        return "the path names a directory, not a file"
    if exc.errno == errno.ENAMETOOLONG:
        return "the path is too long for the file system"
    return f"the storage refused the write: {exc.strerror or type(exc).__name__}"
