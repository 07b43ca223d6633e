"""A URL map with two tiny views that receive uploads, so the upload tests exercise the encrypting handler through
Django's real request cycle (middleware, multipart parser, response closing) without any dataset view.

`receive` looks at the disk from inside the request, while the spools exist: it lists every file under the blob
folder and checks that none shares a 32-byte window with any uploaded file's plaintext. `receive_then_fail` raises
after the upload has been parsed, as a view with a bug would.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from appliance.access.markers import public
from appliance.datasets.intake import ArchiveLimits, Member, iter_archive
from appliance.datasets.uploads import EncryptedUpload, upload_refusal

WINDOW = 32


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def spool_files(blob_dir: Path) -> list[Path]:
    """The spools under the blob folder (not the process's lock file beside them, which holds nothing)."""
    return [p for p in files_under(blob_dir) if p.name.endswith(".spool")]


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def shares_a_window(plaintext: bytes, data: bytes) -> bool:
    """Whether `data` contains any WINDOW-byte run of `plaintext`.

    Any such run contains one of the plaintext's 16-byte blocks that start at a multiple of 16, so it suffices to
    look for those blocks at every offset of `data` (a stricter test: 16 bytes, not 32, must not reappear).
    """
    block = WINDOW // 2
    blocks = {plaintext[i : i + block] for i in range(0, len(plaintext) - block + 1, block)}
    view = memoryview(data)
    return any(bytes(view[i : i + block]) in blocks for i in range(len(data) - block + 1))


def leaks(plaintexts: list[bytes]) -> list[str]:
    """The files under the blob folder in which some plaintext shows."""
    found = []
    for file in files_under(Path(settings.VAULT_BLOB_DIR)):
        data = file.read_bytes()
        if any(shares_a_window(plaintext, data) for plaintext in plaintexts):
            found.append(str(file))
    return found


@public("test-only URL map: receives an upload through the encrypting handler and reports what it saw")
def receive(request: HttpRequest) -> HttpResponse:
    refusal = upload_refusal(request)
    if refusal is not None:
        return HttpResponse(refusal.message, status=413, content_type="text/plain; charset=utf-8")
    described, plaintexts = [], []
    for field, uploads in request.FILES.lists():
        for upload in uploads:
            assert isinstance(upload, EncryptedUpload)
            plaintext = b"".join(upload.chunks())
            plaintexts.append(plaintext)
            described.append(
                {
                    "field": field,
                    "name": upload.name,
                    "content_type": upload.content_type,
                    "size": upload.size,
                    "sha256": upload.sha256,
                    "read_sha256": hashlib.sha256(plaintext).hexdigest(),
                    "spool": str(upload.spool.path),
                    "members": _members(upload) if field == "archive" else [],
                }
            )
    disk = [str(p) for p in files_under(Path(settings.VAULT_BLOB_DIR))]
    return JsonResponse({"files": described, "disk": disk, "leaks": leaks(plaintexts)})


def _members(upload: EncryptedUpload) -> list[list[str]]:
    upload.open()
    entries = iter_archive(upload, name=upload.name or "archive", limits=ArchiveLimits())
    return [[entry.name, hashlib.sha256(entry.data).hexdigest()] for entry in entries if isinstance(entry, Member)]


@public("test-only URL map: parses an upload, then fails as a view with a bug would")
def receive_then_fail(request: HttpRequest) -> HttpResponse:
    assert request.FILES, "the test sends a file"
    assert spool_files(Path(settings.VAULT_BLOB_DIR)), "the upload is spooled while the view runs"
    raise RuntimeError("the view failed after the upload was parsed")


@public("test-only URL map: counts the file descriptors that a many-file upload holds")
def receive_many(request: HttpRequest) -> HttpResponse:
    before = open_descriptors()
    uploads = request.FILES.getlist("file")
    parsed = open_descriptors()
    sizes = [len(upload.read()) for upload in uploads]
    return JsonResponse(
        {"count": len(uploads), "sizes": sizes, "parsing": parsed - before, "reading": open_descriptors() - before}
    )


urlpatterns = [
    path("upload", receive, name="upload"),
    path("upload-many", receive_many, name="upload-many"),
    path("upload-then-fail", receive_then_fail, name="upload-then-fail"),
]
