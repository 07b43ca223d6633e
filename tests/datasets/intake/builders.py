"""Real files built in memory for the intake tests: images with Pillow, archives with zipfile and tarfile, and the
few hostile constructions those libraries refuse to write (lying sizes, encrypted members, overlapping entries),
made by editing or assembling the bytes exactly as an attacker would. No binary fixture is committed."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass

from PIL import Image

MiB = 1024 * 1024


def noise_image(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """Random pixels: they barely compress, like real imagery, so a test cannot pass on a trivially small file."""
    rgba = Image.merge("RGBA", [Image.effect_noise(size, 64) for _ in range(4)])
    if mode == "RGBA":
        return rgba
    if mode in {"L", "I;16", "I", "F"}:
        return rgba.convert("L").convert(mode)
    return rgba.convert("RGB").convert(mode)


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: object) -> bytes:
    buffer = io.BytesIO()
    noise_image(size, mode).save(buffer, fmt, **save)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(png_chunk(kind, data) for kind, data in chunks)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split a PNG into (type, data) chunks, so a test can rebuild it with one part changed."""
    chunks = []
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height RGB pixels while its pixel data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return png_from_chunks([(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\0" * 64)), (b"IEND", b"")])


def zip_bytes(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return buffer.getvalue()


def tar_bytes(
    members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w", fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, format=fmt) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


def tar_special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


class Zeros(io.RawIOBase):
    """`size` zero bytes produced on demand: a huge, highly compressible member that is never held in memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def zip_of_zeros(name: str, size: int) -> bytes:
    """A ZIP with one deflated member of `size` zero bytes, streamed in so the test never holds them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(name, "w") as member:
        source = Zeros(size)
        while chunk := source.read(MiB):
            member.write(chunk)
    return buffer.getvalue()


def tar_gz_of_zeros(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        archive.addfile(info, io.BufferedReader(Zeros(size)))
    return buffer.getvalue()


def central_directory_offsets(data: bytes) -> list[int]:
    """Offsets of every central-directory record (found through the end record, as a reader does)."""
    end = data.rindex(b"PK\x05\x06")
    count, size, offset = struct.unpack_from("<HII", data, end + 10)
    offsets = []
    pos = offset
    for _ in range(count):
        offsets.append(pos)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        pos += 46 + name_len + extra_len + comment_len
    assert pos == offset + size
    return offsets


def set_declared_size(data: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size of the first member, in its directory record and its local header."""
    patched = bytearray(data)
    struct.pack_into("<I", patched, central_directory_offsets(data)[0] + 24, size)
    struct.pack_into("<I", patched, 22, size)
    return bytes(patched)


class ForwardOnly(io.RawIOBase):
    """A stream that cannot seek, like an upload read straight off the request body."""

    def __init__(self, data: bytes) -> None:
        self.source = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        return self.source.readinto(buffer)


def forward_only(data: bytes) -> io.BufferedReader:
    return io.BufferedReader(ForwardOnly(data))


# ------------------------------------------------------------------------------------------ hand-assembled ZIPs


@dataclass
class RawEntry:
    """One member of a hand-assembled ZIP: the stored bytes and the header fields, exactly as given."""

    name: bytes
    stored: bytes
    crc: int
    size: int
    flags: int = 0
    method: int = 0
    external: int = 0


def assemble_zip(entries: list[RawEntry], extra_directory: list[tuple[RawEntry, int]] | None = None) -> bytes:
    """Write local headers, data, central directory and end record. `extra_directory` adds directory records
    (entry, local-header offset) that point at already written data, as overlapping-entry bombs do."""
    out = bytearray()
    directory = bytearray()
    records = []
    for entry in entries:
        offset = len(out)
        out += struct.pack(
            "<4sHHHHHIIIHH", b"PK\x03\x04", 20, entry.flags, entry.method, 0, 0x21, entry.crc,
            len(entry.stored), entry.size, len(entry.name), 0,
        )  # fmt: skip
        out += entry.name + entry.stored
        records.append((entry, offset))
    records += extra_directory or []
    for entry, offset in records:
        directory += struct.pack(
            "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0x031E, 20, entry.flags, entry.method, 0, 0x21, entry.crc,
            len(entry.stored), entry.size, len(entry.name), 0, 0, 0, 0, entry.external, offset,
        )  # fmt: skip
        directory += entry.name
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(records), len(records), len(directory), len(out), 0)
    return bytes(out + directory + end)


class ZipCrypto:
    """PKWARE traditional encryption (APPNOTE 6.1), to build a genuinely encrypted member zipfile can open."""

    def __init__(self, password: bytes) -> None:
        self.keys = [0x12345678, 0x23456789, 0x34567890]
        for byte in password:
            self._update(byte)

    @staticmethod
    def _crc(crc: int, byte: int) -> int:
        return (~zlib.crc32(bytes([byte]), ~crc & 0xFFFFFFFF)) & 0xFFFFFFFF

    def _update(self, byte: int) -> None:
        k0, k1, k2 = self.keys
        k0 = self._crc(k0, byte)
        k1 = ((k1 + (k0 & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        k2 = self._crc(k2, k1 >> 24)
        self.keys = [k0, k1, k2]

    def encrypt(self, plain: bytes) -> bytes:
        out = bytearray()
        for byte in plain:
            temp = (self.keys[2] | 2) & 0xFFFF
            out.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
            self._update(byte)
        return bytes(out)


def encrypted_entry(name: str, data: bytes, password: bytes) -> RawEntry:
    crc = zlib.crc32(data)
    header = os.urandom(11) + bytes([crc >> 24])
    return RawEntry(name.encode(), ZipCrypto(password).encrypt(header + data), crc, len(data), flags=0x1)
