"""Spools: encrypted temporary files for uploads in flight, so that plaintext never reaches the disk.

Why: Django writes an upload over 2.5 MB to a plaintext temporary file, and an upload may be a 1 GiB archive that
must not be held in memory either. A `Spool` encrypts the bytes as they arrive, in the blob format
(docs/formats/blob.md), into `<VAULT_BLOB_DIR>/spool/<process>.<random>.spool`, under a data key of its own: 32
random bytes that exist only in this object, in this process's memory. The key is never wrapped, stored, logged
or shown in a repr, and a spool cannot be pickled. When the spool is deleted, or the process dies, the key is gone
and the ciphertext left behind is noise; `sweep_spool` removes such leftovers.

A spool is written once, front to back (`write`, then `close_for_writing`), then read any number of times through
`open()`, a seekable plaintext reader that checks every segment it returns. Whoever creates a spool deletes it:
`delete()` or the `with` block; as a last resort the file is removed when the object is garbage collected or the
interpreter exits.

File descriptors: one upload request may carry a thousand files (`datasets.max_upload_files`), so a spool holds a
descriptor only while it is being written, and its readers open the file for each segment they read. What tells
`sweep_spool` that a spool's process is alive is instead one lock per process: `<process>.lock`, held with
`flock` for the life of the process and released by the kernel when it dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import secrets
import threading
import time
import weakref
from collections.abc import Buffer
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NoReturn, Self

from django.conf import settings

from appliance.vault.blobs import blob_root
from appliance.vault.keys import DEK_SIZE
from appliance.vault.stream import BlobIdentity, Encryptor, Header, SeekableDecryptor

SPOOL_FOLDER = "spool"
SPOOL_SUFFIX = ".spool"
LOCK_SUFFIX = ".lock"
_NEW_LOCK_SUFFIX = ".lock.new"
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC


def spool_root() -> Path:
    """Where spools live: beside the blobs, on the same protected file system, never in /tmp."""
    return blob_root() / SPOOL_FOLDER


def _private_folder() -> Path:
    folder = spool_root()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # a folder made by hand, or under a loose umask, is tightened, not trusted
    return folder


class _ProcessLock:
    """This process's name among spool files, and the `flock` that proves the process alive.

    The lock file is locked before it gets its final name (created as `.lock.new`, then renamed), so a sweep never
    sees an unlocked lock file of a live process. After a fork the child makes its own: the parent's lock, shared
    by the inherited descriptor, says nothing about the child.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[Path, tuple[int, str, int]] = {}  # folder -> (pid, token, descriptor)

    def token(self, folder: Path) -> str:
        with self._guard:
            pid = os.getpid()
            held = self._held.get(folder)
            if held is not None and held[0] == pid:
                return held[1]
            if held is not None:
                os.close(held[2])  # inherited over fork; the parent still holds its own
            token = secrets.token_hex(8)
            fd = os.open(folder / (token + _NEW_LOCK_SUFFIX), os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(folder / (token + _NEW_LOCK_SUFFIX), folder / (token + LOCK_SUFFIX))
            self._held[folder] = (pid, token, fd)
            return token


_PROCESS_LOCK = _ProcessLock()


class _SpoolFile:
    """The spool's ciphertext as a read-only, seekable source that holds no descriptor between reads."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._position = 0

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position}.get(whence)
        if base is None:
            base = self._path.stat().st_size
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Buffer, /) -> int:
        fd = os.open(self._path, os.O_RDONLY | _OPEN_FLAGS)
        try:
            got = os.preadv(fd, [buffer], self._position)
        finally:
            os.close(fd)
        self._position += got
        return got

    def close(self) -> None:
        """Nothing to release: each read opened and closed the file itself."""


def _discard(path: Path, handle: BinaryIO) -> None:
    """Close and unlink a spool's file; the finalizer of every `Spool`, so it runs at most once."""
    with contextlib.suppress(OSError):
        handle.close()
    path.unlink(missing_ok=True)


class Spool:
    """One upload's bytes, encrypted as they arrive under a key that lives only in this object."""

    def __init__(self, *, segment_size: int | None = None) -> None:
        folder = _private_folder()
        self.spool_id = secrets.token_hex(16)
        self.path = folder / f"{_PROCESS_LOCK.token(folder)}.{self.spool_id}{SPOOL_SUFFIX}"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600)
        self._out: BinaryIO = os.fdopen(fd, "wb")
        self._finalizer = weakref.finalize(self, _discard, self.path, self._out)
        self._writing = True
        self._size = 0
        try:
            self.identity = BlobIdentity("spool", self.spool_id, "upload")
            self._dek = secrets.token_bytes(DEK_SIZE)
            header = Header.new(segment_size or settings.VAULT_SEGMENT_SIZE)
            self._encryptor: Encryptor | None = Encryptor(self._dek, self.identity, header)
            self._digest = hashlib.sha256()
            self._out.write(self._encryptor.start())
        except BaseException:
            self._finalizer()
            raise

    def __repr__(self) -> str:
        state = "deleted" if self.deleted else "writing" if self._writing else "closed for writing"
        return f"<Spool {self.spool_id} {state} size={self._size}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a spool cannot be pickled: its key must never leave this process's memory")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.delete()

    @property
    def size(self) -> int:
        """Plaintext bytes written so far (all of them, once closed for writing)."""
        return self._size

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the plaintext written so far, computed as it arrived (final once closed for writing)."""
        return self._digest.hexdigest()

    @property
    def deleted(self) -> bool:
        return not self._finalizer.alive

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Encrypt `chunk` and append whatever whole segments it completes; at most one segment is held back."""
        encryptor = self._writer()
        self._digest.update(chunk)
        self._size += memoryview(chunk).nbytes
        for sealed in encryptor.segments(chunk):
            self._out.write(sealed)

    def close_for_writing(self) -> None:
        """Seal the last segment, fsync and close, so that a full disk or an I/O error is this upload's error,
        raised here, rather than a short blob refused later."""
        encryptor = self._writer()
        self._writing = False
        self._encryptor = None
        self._out.write(encryptor.finish())
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()

    def _writer(self) -> Encryptor:
        if not self._writing or self._encryptor is None:
            raise ValueError(f"spool {self.spool_id} is not open for writing")
        return self._encryptor

    def open(self) -> SeekableDecryptor:
        """A new, independent reader of the plaintext (seekable; every segment checked as it is read). It holds no
        file descriptor between reads, and fails once the spool is deleted."""
        if self.deleted:
            raise ValueError(f"spool {self.spool_id} was deleted")
        if self._writing:
            raise ValueError(f"spool {self.spool_id} is still being written: close it for writing first")
        return SeekableDecryptor(self._dek, self.identity, _SpoolFile(self.path))

    def delete(self) -> None:
        """Remove the file and forget the key; safe to call again."""
        self._writing = False
        self._finalizer()
        self._dek = b""
        self._encryptor = None


def sweep_spool(*, older_than: timedelta = timedelta(minutes=10)) -> list[Path]:
    """Remove the spool files of processes that died mid-request (killed, out of memory, power cut); return them.

    Such a file cannot be read by anyone: its key lived only in the memory of the process that died. Removing it
    recovers the disk space. A process is known dead when its lock file can be locked; then its spools go, however
    young, and its lock file with them. A spool of a live process is never removed, however old. Files with no
    lock file to vouch for them (a lock file removed by hand, one that died before its rename) are removed once
    older than `older_than`, which covers the instant between a process creating its lock and renaming it.
    """
    folder = spool_root()
    if not folder.is_dir():
        return []
    removed: list[Path] = []
    live: set[str] = set()
    for lock in sorted(folder.glob(f"*{LOCK_SUFFIX}")):
        token = lock.name.removesuffix(LOCK_SUFFIX)
        try:
            fd = os.open(lock, os.O_RDONLY | _OPEN_FLAGS)
        except OSError:
            continue  # removed meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                live.add(token)
                continue
            for spool in sorted(folder.glob(f"{token}.*{SPOOL_SUFFIX}")):
                spool.unlink(missing_ok=True)
                removed.append(spool)
            lock.unlink(missing_ok=True)
            removed.append(lock)
        finally:
            os.close(fd)
    cutoff = time.time() - older_than.total_seconds()
    for leftover in sorted([*folder.glob(f"*{SPOOL_SUFFIX}"), *folder.glob(f"*{_NEW_LOCK_SUFFIX}")]):
        if leftover.name.split(".", 1)[0] in live:
            continue
        try:
            if leftover.lstat().st_mtime <= cutoff:
                leftover.unlink()
                removed.append(leftover)
        except FileNotFoundError:
            continue
    return removed
