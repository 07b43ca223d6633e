"""Uploads are encrypted as they arrive: no plaintext on disk, bounded memory, caps that answer 413, and no spool
left behind by a finished, failed, refused or interrupted request.

Requests go through Django's real cycle (test client, middleware, multipart parser) to the views of
`tests.datasets.upload_urls`; the memory test feeds a real WSGI request from a body generated as it is read, so
that the 64 MiB payload is never in memory at all. V-222589 (imagery at rest is encrypted), V-222588.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import io
import os
import threading
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import StopUpload
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.core.signals import request_finished
from django.test import Client
from django.urls import reverse

from appliance.datasets.uploads import EncryptedUpload, EncryptingUploadHandler, upload_refusal
from tests.datasets.upload_urls import files_under, shares_a_window, spool_files

pytestmark = [pytest.mark.urls("tests.datasets.upload_urls")]

MiB = 1024 * 1024
BOUNDARY = "----spool-test-boundary-7d1f"
HANDLERS = ["appliance.datasets.uploads.EncryptingUploadHandler"]


@pytest.fixture(autouse=True)
def encrypting_uploads(settings) -> None:
    settings.FILE_UPLOAD_HANDLERS = HANDLERS


@pytest.fixture
def blob_dir(settings) -> Path:
    return Path(settings.VAULT_BLOB_DIR)


def multipart(parts: list[tuple[str, str, bytes]], *, close: bool = True) -> bytes:
    """A multipart/form-data body of (field, file name, content) file parts; `close=False` leaves the last part
    unterminated, as a body cut off by a client that went away."""
    body = b""
    for field, name, content in parts:
        body += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + content
        body += b"\r\n"
    if close:
        body += f"--{BOUNDARY}--\r\n".encode()
    else:
        body = body[: -len(b"\r\n")]
    return body


def post_raw(client: Client, url: str, body: bytes):
    return client.generic("POST", url, body, content_type=f"multipart/form-data; boundary={BOUNDARY}")


# Arrival and reading -----------------------------------------------------------------------------------------------


def test_an_upload_arrives_intact_and_reads_like_any_uploaded_file(client, blob_dir):
    payload = os.urandom(3 * MiB + 12_345)
    response = client.post(reverse("upload"), {"file": _named(payload, "scan-0001.tif")})
    assert response.status_code == 200
    (seen,) = response.json()["files"]
    assert seen["name"] == "scan-0001.tif"
    assert seen["content_type"] == "image/tiff"
    assert seen["size"] == len(payload)
    assert seen["sha256"] == seen["read_sha256"] == hashlib.sha256(payload).hexdigest()


def test_no_plaintext_touches_the_disk_during_or_after_the_request(client, blob_dir):
    payloads = [os.urandom(3 * MiB + 1), os.urandom(200_000)]
    response = client.post(reverse("upload"), {"file": [_named(payloads[0], "a.tif"), _named(payloads[1], "b.tif")]})
    body = response.json()
    spools = [Path(seen["spool"]) for seen in body["files"]]
    assert sorted(str(path) for path in spools) == [p for p in body["disk"] if p.endswith(".spool")]
    assert all(path.parent == blob_dir / "spool" for path in spools)
    assert body["leaks"] == [], "plaintext found on disk while the request ran"
    for file in files_under(blob_dir):
        assert not any(shares_a_window(payload, file.read_bytes()) for payload in payloads)


def test_the_spool_folder_is_private_to_the_appliance_user(client, blob_dir):
    client.post(reverse("upload"), {"file": _named(b"x" * 1000, "a.tif")})
    assert (blob_dir / "spool").stat().st_mode & 0o777 == 0o700


def test_every_spool_is_gone_once_the_request_has_finished(client, blob_dir):
    response = client.post(reverse("upload"), {"file": _named(os.urandom(2 * MiB), "a.tif")})
    (upload,) = response.wsgi_request.FILES.getlist("file")
    assert isinstance(upload, EncryptedUpload)
    assert upload.spool.deleted
    assert not upload.spool.path.exists()
    assert spool_files(blob_dir) == []


def test_the_spool_is_gone_when_the_view_raises(blob_dir):
    client = Client(raise_request_exception=False)
    response = client.post(reverse("upload-then-fail"), {"file": _named(os.urandom(MiB), "a.tif")})
    assert response.status_code == 500
    (upload,) = response.wsgi_request.FILES.getlist("file")  # the request, and its upload, are still alive
    assert not upload.spool.path.exists()
    assert spool_files(blob_dir) == []


def test_a_thousand_file_upload_holds_no_file_descriptor_per_file(client, settings):
    """Every uploaded file waits in request.FILES until the view gets to it; a descriptor each would exhaust the
    process's limit (often 1024) at the appliance's own cap of 1000 files."""
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 1000
    files = [_named(os.urandom(100 + i), f"{i:04}.tif") for i in range(1000)]
    response = client.post(reverse("upload-many"), {"file": files})
    body = response.json()
    assert body["count"] == 1000
    assert body["sizes"] == [100 + i for i in range(1000)]
    assert body["parsing"] <= 2, "at most the process's spool lock, and the file being written"
    assert body["reading"] <= 2


def test_an_uploaded_zip_is_read_by_the_archive_reader_straight_from_the_spool(client):
    members = {"site/a.png": os.urandom(300_000), "site/b.png": os.urandom(1_500_000)}
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as writer:
        for name, data in members.items():
            writer.writestr(name, data)
    response = client.post(reverse("upload"), {"archive": _named(archive.getvalue(), "survey.zip")})
    (seen,) = response.json()["files"]
    assert seen["members"] == [[name, hashlib.sha256(data).hexdigest()] for name, data in members.items()]


def spooled(handler: EncryptingUploadHandler, content: bytes, name: str = "a.tif") -> EncryptedUpload:
    """Drive the handler as Django's parser does, for one file sent in 64 KiB chunks."""
    handler.new_file("file", name, "image/tiff", None)
    for start in range(0, len(content), handler.chunk_size):
        assert handler.receive_data_chunk(content[start : start + handler.chunk_size], start) is None
    upload = handler.file_complete(len(content))
    assert isinstance(upload, EncryptedUpload)
    return upload


def test_an_upload_rewinds_on_open_and_is_gone_for_good_once_closed():
    handler = EncryptingUploadHandler()
    content = os.urandom(200_000)
    upload = spooled(handler, content)
    try:
        assert upload.read(10) == content[:10]
        assert upload.open() is upload
        assert b"".join(upload.chunks(50_000)) == content
        upload.file.close()
        assert upload.open().read() == content, "a closed reader is replaced by a fresh one"
        with pytest.raises(ValueError, match="read-only"):
            upload.open("wb")
        upload.close()
        assert upload.spool.deleted
        assert not upload.spool.path.exists()
        with pytest.raises(ValueError, match="cannot be reopened"):
            upload.open()
        assert not hasattr(upload, "temporary_file_path"), "there is no plaintext path to offer"
    finally:
        handler.delete_spools()


def test_the_end_of_another_threads_request_leaves_this_requests_spools_alone():
    """request_finished does not say which request finished; under a threaded server another thread's request
    may end while this one is still reading its upload."""
    handler = EncryptingUploadHandler()
    upload = spooled(handler, os.urandom(100_000))
    try:
        other = threading.Thread(target=request_finished.send, kwargs={"sender": WSGIHandler})
        other.start()
        other.join()
        assert upload.spool.path.exists()
        assert len(upload.read()) == 100_000
    finally:
        handler.delete_spools()
    assert not upload.spool.path.exists()


# Caps --------------------------------------------------------------------------------------------------------------


def test_a_file_over_the_file_cap_is_refused_with_413_and_the_reason(client, settings, blob_dir):
    settings.UPLOAD_MAX_FILE_BYTES = 100_000
    response = client.post(reverse("upload"), {"file": _named(os.urandom(100_001), "huge.tif")})
    assert response.status_code == 413
    assert response.content.decode() == (
        "The file 'huge.tif' is larger than 100,000 bytes, the most one uploaded file may be."
    )
    assert spool_files(blob_dir) == []


def test_a_file_exactly_at_the_file_cap_is_accepted(client, settings):
    settings.UPLOAD_MAX_FILE_BYTES = 100_000
    response = client.post(reverse("upload"), {"file": _named(os.urandom(100_000), "edge.tif")})
    assert response.status_code == 200


def test_files_over_the_request_cap_together_are_refused_with_413_and_the_reason(client, settings, blob_dir):
    settings.UPLOAD_MAX_REQUEST_BYTES = 3 * MiB
    files = [_named(os.urandom(2 * MiB), "one.tif"), _named(os.urandom(2 * MiB), "two.tif")]
    response = client.post(reverse("upload"), {"file": files})
    assert response.status_code == 413
    assert response.content.decode() == (
        "The files of this upload come to more than 3 MiB, the most one upload may bring (stopped at 'two.tif'). "
        "Send them in several uploads."
    )
    # The first file was complete before the refusal; it was in request.FILES, and is gone with the request.
    assert [upload.name for upload in response.wsgi_request.FILES.getlist("file")] == ["one.tif"]
    assert spool_files(blob_dir) == []


def test_a_part_that_declares_a_length_over_the_cap_is_refused_before_anything_is_spooled(settings):
    settings.UPLOAD_MAX_FILE_BYTES = 1000
    handler = EncryptingUploadHandler()
    with pytest.raises(StopUpload) as stopped:
        handler.new_file("file", "big.tif", "image/tiff", 5000)
    assert not stopped.value.connection_reset, "the client must get the 413, not a reset connection"
    assert handler.refusal is not None
    assert (handler.refusal.scope, handler.refusal.limit, handler.refusal.file_name) == ("file", 1000, "big.tif")
    assert handler.spools == []


# Interrupted and malformed uploads ---------------------------------------------------------------------------------


def test_an_upload_cut_off_mid_file_leaves_nothing_even_during_the_request(client, blob_dir):
    """The body ends inside the second file: Django reports the interruption, and its spool goes at once."""
    body = multipart([("file", "done.tif", os.urandom(300_000)), ("file", "cut.tif", os.urandom(500_000))], close=False)
    response = post_raw(client, reverse("upload"), body)
    assert response.status_code == 200
    seen = response.json()
    assert [f["name"] for f in seen["files"]] == ["done.tif"]
    assert len([p for p in seen["disk"] if p.endswith(".spool")]) == 1, "only the completed file's spool remained"
    assert spool_files(blob_dir) == []


def test_a_body_that_breaks_the_parser_mid_file_leaves_no_spool(blob_dir):
    """Invalid base64 in the middle of a part raises inside Django's parser, which neither completes the file nor
    tells the handler: the request_finished signal removes it. The response keeps the request, its handler and
    the spool object alive (and the garbage collector is off), so nothing but that cleanup could have done it."""
    good = base64.b64encode(os.urandom(200_000))
    content = good + b"!!!! not base64 !!!!" + good
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.tif"\r\n'
            "Content-Type: image/tiff\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    client = Client(raise_request_exception=False)
    gc.disable()
    try:
        response = post_raw(client, reverse("upload"), body)
        handler = response.wsgi_request.upload_handlers[0]
        assert response.status_code == 400
        assert isinstance(handler, EncryptingUploadHandler)
        assert len(handler.spools) == 1, "the part was being spooled when the parser failed"
        assert handler.spools[0].deleted
        assert spool_files(blob_dir) == []
    finally:
        gc.enable()


def test_refusal_is_none_for_an_upload_within_the_caps(rf):
    request = rf.post("/upload", {"file": _named(b"small", "a.tif")})
    assert upload_refusal(request) is None
    handler = request.upload_handlers[0]
    assert isinstance(handler, EncryptingUploadHandler)
    handler.delete_spools()


# Memory ------------------------------------------------------------------------------------------------------------


class GeneratedBody:
    """A multipart body with one file of `size` bytes, produced as it is read: the payload is never held."""

    def __init__(self, size: int, block: bytes) -> None:
        self.digest = hashlib.sha256()
        self._pieces = self._generate(size, block)
        self._buffer = b""
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.tif"\r\n'
            "Content-Type: image/tiff\r\n\r\n"
        ).encode()
        self._head, self._tail = head, f"\r\n--{BOUNDARY}--\r\n".encode()
        self.length = len(head) + size + len(self._tail)

    def _generate(self, size: int, block: bytes) -> Iterator[bytes]:
        yield self._head
        for _ in range(size // len(block)):
            self.digest.update(block)
            yield block
        yield self._tail

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            piece = next(self._pieces, b"")
            if not piece:
                break
            self._buffer += piece
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def readline(self, size: int = -1) -> bytes:
        raise io.UnsupportedOperation("the multipart parser reads in chunks, never by line")


def test_a_64_mib_upload_holds_one_chunk_and_about_two_segments_in_memory(settings):
    settings.VAULT_SEGMENT_SIZE = MiB
    body = GeneratedBody(64 * MiB, os.urandom(MiB // 4))
    request = WSGIRequest(
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/upload",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "wsgi.url_scheme": "http",
            "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
            "CONTENT_LENGTH": str(body.length),
            "wsgi.input": body,
        }
    )
    tracemalloc.start()
    try:
        upload = request.FILES["file"]
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    handler = request.upload_handlers[0]
    try:
        assert isinstance(upload, EncryptedUpload)
        assert upload.size == 64 * MiB
        assert upload.sha256 == body.digest.hexdigest()
        # Django's 64 KiB chunk (and its parser's look-ahead), the segment being filled, the sealed segment being
        # written, and the generated body's own quarter-MiB block: about 2.5 MiB, nothing that grows with the file.
        assert peak < 3 * MiB + EncryptingUploadHandler.chunk_size, peak
        # What a completed upload keeps until someone reads it: no segment, only bookkeeping.
        assert held < 256 * 1024, held
    finally:
        assert isinstance(handler, EncryptingUploadHandler)
        handler.delete_spools()


def _named(content: bytes, name: str) -> SimpleUploadedFile:
    content_type = "application/zip" if name.endswith(".zip") else "image/tiff"
    return SimpleUploadedFile(name, content, content_type=content_type)
