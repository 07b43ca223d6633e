"""The blob format: chunked AES-256-GCM in the STREAM construction, Django-free (docs/formats/blob.md).

Why a segmented stream rather than one AES-GCM call: imagery arrives as an upload or out of an archive and must be
encrypted as it streams in, and served without holding a whole file twice in memory. Each segment is its own
AES-GCM message, sealed under a key derived for this one blob, with a nonce that says where the segment stands
(its counter) and whether it is the last. So a segment cannot be moved, dropped, repeated or appended without the
decryptor noticing, and the blob's identity (dataset, item, kind), bound into the key and into every segment's
associated data, means a blob moved under another item or dataset does not decrypt either.

Writers and readers come in the shapes their callers need, all over the one format: `encrypt` (an iterator of
chunks in, sealed pieces out) is a loop over `Encryptor` (push: one chunk at a time, as an upload handler gets
them); `decrypt` reads forward; `SeekableDecryptor` reads any byte range, as a ZIP reader does.

This module knows nothing of Django, key providers or files on disk: it turns a data key, an identity and bytes
into bytes, and back. Every failure to decrypt is one `BlobIntegrityError` whose message names what failed (never
a key, never plaintext); a consumer must treat plaintext it has already received as void when one is raised.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Buffer, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"APVB"
VERSION = 1
SALT_SIZE = 32
PREFIX_SIZE = 7
HEADER_SIZE = len(MAGIC) + 1 + 4 + SALT_SIZE + PREFIX_SIZE  # 48
TAG_SIZE = 16
KEY_SIZE = 32
DEFAULT_SEGMENT_SIZE = 1 << 20
MIN_SEGMENT_SIZE = 16
# The decryptor holds one sealed segment; the header is not trusted until segment 0 authenticates, so this
# bound is what a forged header can make a reader allocate.
MAX_SEGMENT_SIZE = 64 << 20
MAX_SEGMENTS = 1 << 32  # the counter's four bytes
KDF_LABEL = b"appliance.vault.blob"

_HEADER = struct.Struct(f">{len(MAGIC)}sBI{SALT_SIZE}s{PREFIX_SIZE}s")
_COUNTER = struct.Struct(">I")
_LENGTH = struct.Struct(">I")


class BlobIntegrityError(Exception):
    """The ciphertext is not an intact blob of this identity under this key. `reason` is one of "header",
    "truncated", "extended", "authentication", "digest"; `segment` is the segment at fault, if any."""

    def __init__(self, message: str, *, reason: str, segment: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.segment = segment


class Readable(Protocol):
    """What the decryptor reads from: a binary file or `io.BytesIO` (`readinto` avoids a copy per segment)."""

    def readinto(self, buffer: bytearray | memoryview, /) -> int | None: ...


@dataclass(frozen=True)
class BlobIdentity:
    """What a blob is: the dataset, the item within it and the kind of blob ("image", "thumbnail", ...).

    Bound into the blob's key and associated data, so a blob decrypts only as what it was written as."""

    dataset: str
    item: str
    kind: str

    def encode(self) -> bytes:
        """Each field as a 4-byte big-endian length and its UTF-8 bytes: no two identities encode alike."""
        parts = []
        for value in (self.dataset, self.item, self.kind):
            raw = value.encode("utf-8")
            parts.append(_LENGTH.pack(len(raw)) + raw)
        return b"".join(parts)


@dataclass(frozen=True)
class Header:
    """The first HEADER_SIZE bytes of a blob: how it is cut into segments and what makes its key and nonces
    unique. A new blob always gets `Header.new()`; reusing a header with the same data key and identity would
    reuse nonces, so a fixed header is for test vectors only."""

    segment_size: int
    salt: bytes
    nonce_prefix: bytes

    def __post_init__(self) -> None:
        if not MIN_SEGMENT_SIZE <= self.segment_size <= MAX_SEGMENT_SIZE:
            raise ValueError(f"segment size must be {MIN_SEGMENT_SIZE}..{MAX_SEGMENT_SIZE}, got {self.segment_size}")
        if len(self.salt) != SALT_SIZE or len(self.nonce_prefix) != PREFIX_SIZE:
            raise ValueError(f"a header needs a {SALT_SIZE}-byte salt and a {PREFIX_SIZE}-byte nonce prefix")

    @classmethod
    def new(cls, segment_size: int = DEFAULT_SEGMENT_SIZE) -> Header:
        return cls(segment_size, os.urandom(SALT_SIZE), os.urandom(PREFIX_SIZE))

    def encode(self) -> bytes:
        return _HEADER.pack(MAGIC, VERSION, self.segment_size, self.salt, self.nonce_prefix)

    @classmethod
    def parse(cls, raw: bytes | bytearray | memoryview) -> Header:
        if len(raw) < HEADER_SIZE:
            raise BlobIntegrityError(
                f"blob header is truncated ({len(raw)} of {HEADER_SIZE} bytes)", reason="truncated"
            )
        magic, version, segment_size, salt, prefix = _HEADER.unpack(raw[:HEADER_SIZE])
        if magic != MAGIC:
            raise BlobIntegrityError("not a vault blob (the header's magic bytes are wrong)", reason="header")
        if version != VERSION:
            raise BlobIntegrityError(f"unsupported blob format version {version}", reason="header")
        try:
            return cls(segment_size, salt, prefix)
        except ValueError as exc:
            raise BlobIntegrityError(f"blob header is invalid: {exc}", reason="header") from exc


def derive_key(dek: bytes, header: Header, identity: BlobIdentity) -> bytes:
    """The blob's own AES-256 key: HKDF-SHA256 of the data key, salted per blob, bound to format and identity."""
    if len(dek) != KEY_SIZE:
        raise ValueError(f"a data key has {KEY_SIZE} bytes")
    info = KDF_LABEL + bytes([VERSION]) + _LENGTH.pack(header.segment_size) + identity.encode()
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=header.salt, info=info).derive(dek)


def segment_nonce(prefix: bytes, counter: int, *, last: bool) -> bytes:
    """prefix (7) ‖ counter (4, big-endian) ‖ last-segment flag (1)."""
    if counter >= MAX_SEGMENTS:
        raise ValueError("a blob has at most 2**32 segments")
    return prefix + _COUNTER.pack(counter) + (b"\x01" if last else b"\x00")


def ciphertext_size(plaintext_size: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
    """The exact size of a blob holding `plaintext_size` bytes (an empty blob is one empty segment)."""
    segments = max(1, -(-plaintext_size // segment_size))
    return HEADER_SIZE + plaintext_size + segments * TAG_SIZE


class Encryptor:
    """The blob writer, push-style: the caller hands in plaintext as it arrives and writes out what comes back.

    Why it exists beside `encrypt`: an upload handler is called once per chunk by Django's parser and cannot hand
    an iterator to a generator; a spool must encrypt each chunk the moment it lands. `encrypt` is this class driven
    by a loop, so the two can never write different bytes for the same header and plaintext.

    `start()` returns the header; `update(chunk)` returns zero or more complete sealed segments (a full segment is
    kept back until a further byte or `finish()` says whether it is the last); `finish()` returns the last segment.
    The data key is used once, to derive the blob's key, and not kept; the repr shows only the segment size.
    """

    def __init__(
        self,
        dek: bytes,
        identity: BlobIdentity,
        header: Header | None = None,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> None:
        self.header = header or Header.new(segment_size)
        self._size = self.header.segment_size
        self._aead = AESGCM(derive_key(dek, self.header, identity))
        self._aad = identity.encode()
        self._prefix = self.header.nonce_prefix
        self._counter = 0
        self._pending = bytearray()
        self._state = "new"  # "new" -> "open" -> "finished"

    def __repr__(self) -> str:
        return f"<Encryptor segment_size={self._size} state={self._state}>"

    def start(self) -> bytes:
        """The header, which must come first; once only."""
        if self._state != "new":
            raise ValueError("the encryptor has already started")
        self._state = "open"
        return self.header.encode()

    def update(self, chunk: bytes | bytearray | memoryview) -> bytes:
        """The segments that `chunk` completes, sealed and concatenated (often none, for a small chunk)."""
        return b"".join(self.segments(chunk))

    def segments(self, chunk: bytes | bytearray | memoryview) -> Iterator[bytes]:
        """Like `update`, but each sealed segment on its own, so that a large chunk is never joined into one copy.

        Chunks of at least one segment are sealed straight from the caller's buffer; only the tail of a chunk is
        copied, to wait for the next one. The generator must be run to its end before the next call.
        """
        if self._state != "open":
            raise ValueError("the encryptor is not open: call start() first, and nothing after finish()")
        size = self._size
        pending = self._pending
        view = memoryview(chunk)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        if pending:
            take = size - len(pending)
            pending += view[:take]
            view = view[take:]
            if not view:
                return
            # More data follows, so the full pending segment is not the last one.
            yield self._aead.encrypt(segment_nonce(self._prefix, self._counter, last=False), pending, self._aad)
            self._counter += 1
            pending.clear()
        while len(view) > size:
            yield self._aead.encrypt(segment_nonce(self._prefix, self._counter, last=False), view[:size], self._aad)
            self._counter += 1
            view = view[size:]
        pending += view

    def finish(self) -> bytes:
        """The last segment (the whole plaintext, if it fits in one; one empty segment, if there was none)."""
        if self._state != "open":
            raise ValueError("the encryptor is not open: call start() first, and finish() once")
        self._state = "finished"
        sealed = self._aead.encrypt(segment_nonce(self._prefix, self._counter, last=True), self._pending, self._aad)
        self._pending.clear()
        return sealed


def encrypt(
    dek: bytes,
    identity: BlobIdentity,
    chunks: Iterable[bytes | bytearray | memoryview],
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    header: Header | None = None,
) -> Iterator[bytes]:
    """Yield the blob: the header, then one sealed segment at a time, as the plaintext chunks come in.

    A full segment is sealed only once a further byte has arrived (or the input has ended), because only then is
    it known whether it is the last. Chunks of at least one segment are sealed straight from the caller's buffer;
    only the tail of a chunk is copied, to wait for the next one. A given `header` (test vectors only) decides the
    segment size. This is `Encryptor` driven by a loop.
    """
    encryptor = Encryptor(dek, identity, header, segment_size=segment_size)
    yield encryptor.start()
    for chunk in chunks:
        yield from encryptor.segments(chunk)
    yield encryptor.finish()


def _fill(source: Readable, target: memoryview) -> int:
    """Read until `target` is full or the source is exhausted; return how many bytes were read."""
    filled = 0
    while filled < len(target):
        got = source.readinto(target[filled:])
        if not got:
            break
        filled += got
    return filled


def decrypt(dek: bytes, identity: BlobIdentity, source: Readable) -> Iterator[bytes]:
    """Yield the plaintext of the blob read from `source`, one segment at a time, checking every segment.

    Holds one sealed segment and the first byte after it: a full segment is the last exactly when nothing follows
    it, so one byte of look-ahead decides, and it moves to the front of the buffer for the next segment.
    """
    raw_header = bytearray(HEADER_SIZE)
    header = Header.parse(raw_header[: _fill(source, memoryview(raw_header))])
    aead = AESGCM(derive_key(dek, header, identity))
    aad = identity.encode()
    prefix = header.nonce_prefix
    sealed_size = header.segment_size + TAG_SIZE
    buffer = bytearray(sealed_size + 1)
    view = memoryview(buffer)
    length = _fill(source, view)
    counter = 0
    while True:
        if counter >= MAX_SEGMENTS:
            raise BlobIntegrityError(
                "blob is extended: more segments than the counter can number", reason="extended", segment=counter
            )
        if length <= sealed_size:  # nothing follows this segment: it is the last
            yield _open_last(aead, prefix, counter, view[:length], aad, short=length < sealed_size)
            return
        yield _open_middle(aead, prefix, counter, view[:sealed_size], aad)
        counter += 1
        buffer[0] = buffer[sealed_size]
        length = 1 + _fill(source, view[1:])


def _open_middle(aead: AESGCM, prefix: bytes, counter: int, sealed: memoryview, aad: bytes) -> bytes:
    try:
        return aead.decrypt(segment_nonce(prefix, counter, last=False), sealed, aad)
    except InvalidTag:
        pass
    if _opens(aead, segment_nonce(prefix, counter, last=True), sealed, aad):
        raise BlobIntegrityError(
            f"blob is extended: data follows its last segment {counter}", reason="extended", segment=counter
        )
    raise _failed(counter)


def _open_last(aead: AESGCM, prefix: bytes, counter: int, sealed: memoryview, aad: bytes, *, short: bool) -> bytes:
    if counter == 0 and len(sealed) == 0:
        raise BlobIntegrityError("blob is truncated: no segment follows the header", reason="truncated", segment=0)
    if len(sealed) < TAG_SIZE:
        raise BlobIntegrityError(
            f"blob is truncated: segment {counter} is shorter than its {TAG_SIZE}-byte tag",
            reason="truncated",
            segment=counter,
        )
    try:
        plaintext = aead.decrypt(segment_nonce(prefix, counter, last=True), sealed, aad)
    except InvalidTag:
        if short or not _opens(aead, segment_nonce(prefix, counter, last=False), sealed, aad):
            raise _failed(counter) from None
        raise BlobIntegrityError(
            f"blob is truncated: segment {counter} is not the last segment, and nothing follows it",
            reason="truncated",
            segment=counter,
        ) from None
    if not plaintext and counter > 0:
        # The encryptor never writes an empty segment after data; accepting one would give a blob two encodings.
        raise BlobIntegrityError(
            f"segment {counter} is an empty last segment after data (not a canonical blob)",
            reason="extended",
            segment=counter,
        )
    return plaintext


def _opens(aead: AESGCM, nonce: bytes, sealed: memoryview, aad: bytes) -> bool:
    """Whether the segment authenticates under this nonce: only used to say why a segment failed."""
    try:
        aead.decrypt(nonce, sealed, aad)
    except InvalidTag:
        return False
    return True


def _failed(counter: int) -> BlobIntegrityError:
    return BlobIntegrityError(
        f"segment {counter} failed authentication: altered, reordered, from another blob, or under another "
        "data key or identity",
        reason="authentication",
        segment=counter,
    )


class SeekableSource(Readable, Protocol):
    """What the seekable reader reads from: a binary file opened for reading, or `io.BytesIO`."""

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def close(self) -> None: ...


class SeekableDecryptor(io.RawIOBase):
    """The plaintext of a blob as a read-only, seekable file: for readers that jump about, such as ZIP's directory
    at the end of an archive, which `decrypt` (forward only) cannot serve without holding the whole plaintext.

    Why it is safe to hand out plaintext before the end: the blob's size fixes how many segments it has and where
    each begins, so the final segment is opened (and its last-segment flag checked) here, on opening. A blob cut
    at a segment boundary, or with anything appended, is refused before a byte is read, instead of when a reader
    happens to reach its end. Every other segment is opened, with its counter and "not last" flag, each time it
    is read; an altered, moved or swapped segment fails then, with the same `BlobIntegrityError` (and reason) as
    `decrypt` would give. Only one segment's plaintext is held at a time, so memory is about two segments,
    whatever the blob's size, and none before the first read or after a read that reaches the end; going back to an
    earlier segment decrypts it again.

    The reader owns `source` and closes it when it is closed (or fails to open). The data key is used once, to
    derive the blob's key, and not kept; the repr shows only sizes.
    """

    def __init__(self, dek: bytes, identity: BlobIdentity, source: SeekableSource) -> None:
        super().__init__()
        self._source = source
        self._position = 0
        self._cached_index = -1
        self._cached = b""
        try:
            self._open(dek, identity)
        except BaseException:
            source.close()
            super().close()
            raise

    def _open(self, dek: bytes, identity: BlobIdentity) -> None:
        source = self._source
        total = source.seek(0, io.SEEK_END)
        source.seek(0)
        raw_header = bytearray(HEADER_SIZE)
        header = Header.parse(raw_header[: _fill(source, memoryview(raw_header))])
        self._aead = AESGCM(derive_key(dek, header, identity))
        self._aad = identity.encode()
        self._prefix = header.nonce_prefix
        self._segment_size = header.segment_size
        self._sealed_size = header.segment_size + TAG_SIZE
        body = total - HEADER_SIZE
        if body == 0:
            raise BlobIntegrityError("blob is truncated: no segment follows the header", reason="truncated", segment=0)
        count, tail = divmod(body, self._sealed_size)
        self._count = count + (1 if tail else 0)
        if self._count > MAX_SEGMENTS:
            raise BlobIntegrityError(
                "blob is extended: more segments than the counter can number", reason="extended", segment=MAX_SEGMENTS
            )
        self._last_sealed = tail or self._sealed_size
        self._length = max(0, body - self._count * TAG_SIZE)
        self._load(self._count - 1)  # checked, not kept: a reader nobody reads from holds no segment

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"size={self._length}"
        return f"<SeekableDecryptor {state}>"

    @property
    def size(self) -> int:
        """The plaintext's length in bytes, known from the blob's size."""
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self._length + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def readinto(self, buffer: Buffer, /) -> int:
        """Fill `buffer` from the current position across as many segments as it spans; short only at the end."""
        self._check_open()
        target = memoryview(buffer).cast("B")
        done = 0
        while done < len(target) and self._position < self._length:
            index, offset = divmod(self._position, self._segment_size)
            plaintext = self._segment(index)
            step = min(len(target) - done, len(plaintext) - offset)
            target[done : done + step] = plaintext[offset : offset + step]
            done += step
            self._position += step
        if self._position >= self._length:
            # Read to the end: most readers are done, and a request may hold a thousand of them until it ends.
            self._cached, self._cached_index = b"", -1
        return done

    def readall(self) -> bytes:
        """The rest of the plaintext in one allocation (rather than `RawIOBase`'s growing list of small reads)."""
        self._check_open()
        rest = bytearray(max(0, self._length - self._position))
        del rest[self.readinto(rest) :]
        return bytes(rest)

    def close(self) -> None:
        if not self.closed:
            self._cached, self._cached_index = b"", -1
            self._source.close()
        super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed blob reader")

    def _segment(self, index: int) -> memoryview:
        """The plaintext of segment `index`, opened and checked (or the one already held)."""
        if index != self._cached_index:
            self._cached = b""  # hold one segment, not two, while the next is decrypted
            self._cached = self._load(index)
            self._cached_index = index
        return memoryview(self._cached)

    def _load(self, index: int) -> bytes:
        last = index == self._count - 1
        want = self._last_sealed if last else self._sealed_size
        sealed = memoryview(bytearray(want))
        self._source.seek(HEADER_SIZE + index * self._sealed_size)
        if _fill(self._source, sealed) != want:
            raise BlobIntegrityError(
                f"blob is truncated: segment {index} ends early (the file shrank after it was opened)",
                reason="truncated",
                segment=index,
            )
        if not last:
            return _open_middle(self._aead, self._prefix, index, sealed, self._aad)
        try:
            return _open_last(self._aead, self._prefix, index, sealed, self._aad, short=want < self._sealed_size)
        except BlobIntegrityError as failure:
            raise (self._first_failure_before(index) or failure) from None

    def _first_failure_before(self, index: int) -> BlobIntegrityError | None:
        """What `decrypt`, reading forward, would have refused before reaching the failed last segment `index`.

        Data appended to a blob turns its real last segment into a middle one, and `decrypt` stops there with
        "extended" (or "authentication", if the appended bytes fill out a short last segment). So that both readers
        give the same verdict, this opens segment 0 (a wrong key or identity fails there) and then walks back from
        `index - 1` over the run of segments that do not open as middle segments; the earliest of them is the
        verdict. Only a damaged blob takes this path, and the walk is as long as the damage.
        """
        if index == 0:
            return None
        earliest = self._refusal_as_middle(0)
        if earliest is not None:
            return earliest
        for candidate in range(index - 1, 0, -1):
            refused = self._refusal_as_middle(candidate)
            if refused is None:
                break
            earliest = refused
        return earliest

    def _refusal_as_middle(self, index: int) -> BlobIntegrityError | None:
        sealed = memoryview(bytearray(self._sealed_size))
        self._source.seek(HEADER_SIZE + index * self._sealed_size)
        _fill(self._source, sealed)
        try:
            _open_middle(self._aead, self._prefix, index, sealed, self._aad)
        except BlobIntegrityError as refused:
            return refused
        return None


def encrypt_bytes(dek: bytes, identity: BlobIdentity, plaintext: bytes, *, header: Header | None = None) -> bytes:
    """The whole blob of a small plaintext at once (test vectors, small metadata)."""
    header = header or Header.new()
    return b"".join(encrypt(dek, identity, [plaintext], header=header))


def decrypt_bytes(dek: bytes, identity: BlobIdentity, blob: bytes) -> bytes:
    """The whole plaintext of a blob held in memory, returned only once every segment has been checked."""
    return b"".join(decrypt(dek, identity, io.BytesIO(blob)))
