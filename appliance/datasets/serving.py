"""Serving an item's imagery: decrypted in memory, sent with headers that keep it out of caches and sniffers, and
recorded before a byte leaves.

Every view of an original (or its preview, which shows the same scene) is its own audit record. Thumbnails are
recorded per page: the page that lists them records which items it shows (`record_thumbnail_page`) and signs a
short-lived token naming the viewer, the dataset and the page's id range; a thumbnail fetched with that token is
covered by the page's record, and one fetched without it is recorded on its own. So no image is ever served
unrecorded, and a grid of 50 thumbnails costs one record, not 51.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.core import signing
from django.http import HttpResponse

from appliance.accounts.models import User
from appliance.auditlog.recorder import record
from appliance.datasets.imports import data_key_of, identity
from appliance.datasets.models import Dataset, Item
from appliance.vault import blobs

KINDS = ("image", "preview", "thumbnail")
_PAGE_SIGNING_SALT = "appliance.datasets.thumbnail-page"
TOKEN_MAX_AGE_SECONDS = 15 * 60


@dataclass(frozen=True)
class Imagery:
    data: bytes
    content_type: str


def _sniffed_type(data: bytes) -> str:
    """Derived images are PNG or JPEG, made by us (imagery.py): the signature says which."""
    return "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"


def load(item: Item, kind: str) -> Imagery:
    """Decrypt one of the item's blobs into memory, checked against the digest recorded at import."""
    if kind not in KINDS:
        raise ValueError(f"unknown imagery kind {kind!r}")
    if kind == "preview" and not item.preview_blob:
        kind = "image"  # small enough to be its own preview
    blob_id, digest = {
        "image": (item.image_blob, item.sha256),
        "preview": (item.preview_blob, item.preview_sha256),
        "thumbnail": (item.thumbnail_blob, item.thumbnail_sha256),
    }[kind]
    data = blobs.read(
        key=data_key_of(item.dataset),
        identity=identity(item.dataset, item.uid, kind),
        blob_id=blob_id,
        expected_sha256=digest,
    )
    return Imagery(data, item.mime_type if kind == "image" else _sniffed_type(data))


def record_view(item: Item, kind: str, *, download: bool = False) -> None:
    """The audit record of one view (or download) of an item's imagery, committed before it is sent."""
    record(
        action="item.download" if download else f"item.view.{kind}",
        object_type="item",
        object_id=item.pk,
        label=item.dataset.access_label().banner(),
        details={"dataset": item.dataset.pk, "name": item.name, "sha256": item.sha256},
    )


def record_thumbnail_page(user: User, dataset: Dataset, items: Sequence[Item]) -> str:
    """Record that `user` is shown the thumbnails of `items` (one page) and return the token their URLs carry."""
    if not items:
        return ""
    record(
        action="dataset.thumbnails.view",
        object_type="dataset",
        object_id=dataset.pk,
        label=dataset.access_label().banner(),
        details={"items": [item.pk for item in items]},
    )
    return signing.dumps([user.pk, dataset.pk, items[0].pk, items[-1].pk], salt=_PAGE_SIGNING_SALT, compress=True)


def covered_by_page(token: str, user: User, item: Item) -> bool:
    """Whether a valid, unexpired page token of this user and dataset covers `item`."""
    if not token:
        return False
    try:
        user_id, dataset_id, first, last = signing.loads(token, salt=_PAGE_SIGNING_SALT, max_age=TOKEN_MAX_AGE_SECONDS)
    except (signing.BadSignature, ValueError, TypeError):
        return False
    return user_id == user.pk and dataset_id == item.dataset.pk and first <= item.pk <= last


def response(item: Item, imagery: Imagery, *, download: bool = False) -> HttpResponse:
    """The bytes with: the validated type, no sniffing, no caching anywhere, and an attachment name if saved."""
    answer = HttpResponse(imagery.data, content_type=imagery.content_type)
    answer["X-Content-Type-Options"] = "nosniff"
    answer["Cache-Control"] = "no-store"
    answer["Content-Security-Policy"] = "default-src 'none'; sandbox"
    if download:
        safe = "".join(char if char.isalnum() or char in "._-" else "_" for char in item.name.rsplit("/", 1)[-1])
        answer["Content-Disposition"] = f'attachment; filename="{safe or "image"}"'
    return answer


def serve(user: User, item: Item, kind: str, *, download: bool = False, page_token: str = "") -> HttpResponse:
    """Load, record (unless a recorded page covers this thumbnail) and answer."""
    imagery = load(item, kind)
    if not (kind == "thumbnail" and covered_by_page(page_token, user, item)):
        record_view(item, kind, download=download)
    return response(item, imagery, download=download)
