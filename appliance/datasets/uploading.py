"""From a multipart request to an import: shared by the upload page and the API so both accept the same fields.

`files` (repeated) are images; `archive` is one zip or tar. Each uploaded file is read when the import needs it
(twice: inspect, then store), never all at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from django.core.files.uploadedfile import UploadedFile
from django.utils.datastructures import MultiValueDict

from appliance.accounts.models import User
from appliance.datasets.imports import ImportRefused, ImportResult, import_archive, import_images
from appliance.datasets.models import Dataset


def _reader(upload: UploadedFile) -> Callable[[], bytes]:
    def read() -> bytes:
        upload.seek(0)
        return upload.read()

    return read


@contextmanager
def _rewound(upload: UploadedFile) -> Iterator[BinaryIO]:
    """The upload from its first byte, left open: the archive is read twice."""
    upload.seek(0)
    yield upload.file  # type: ignore[misc]


def run_upload(by: User, dataset: Dataset, uploaded: MultiValueDict[str, UploadedFile]) -> ImportResult:
    archives = uploaded.getlist("archive")
    images = uploaded.getlist("files")
    if archives and images:
        raise ImportRefused(["send either images (files) or one archive (archive), not both"])
    if len(archives) > 1:
        raise ImportRefused(["send one archive at a time"])
    if archives:
        archive = archives[0]
        return import_archive(
            by, dataset=dataset, name=archive.name or "archive", open_archive=lambda: _rewound(archive)
        )
    if not images:
        raise ImportRefused(["no files were sent: attach images as `files` or one archive as `archive`"])
    return import_images(by, dataset=dataset, files=[(image.name or "image", _reader(image)) for image in images])
