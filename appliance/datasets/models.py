"""Datasets and their items: labeled, need-to-know containers of imagery, encrypted under the dataset's own key.

A dataset carries a classification label (level + compartment marking) and an explicit member list; the access
decision reads both through `access_fields`, so the same columns drive `decide` for one dataset and `visible` for
a list. An item has no label of its own: it is its dataset's, always reached through its dataset (so every gate
that guards the dataset guards its items), and its bytes exist only as vault blobs under the dataset's data key.
This module holds no authorization logic and no writes: those live in `access` and in `actions`/`imports`.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from appliance.access.decision import AccessFields, label_of
from appliance.access.labels import Label

NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 4000


class LabeledCollection(models.Model):
    """A named, labeled, need-to-know collection: what a dataset and a labeling project both are to the access
    decision (each declares its own `members`, whose reverse name is its own). `compartments` is the canonical
    marking ("/ALPHA/", "/" for none) so the label gate can run as one regular-expression match in SQL;
    `version` counts changes for optimistic concurrency and caches."""

    access_fields: ClassVar[AccessFields] = AccessFields(
        level="classification", compartments="compartments", members="members"
    )

    name = models.CharField(max_length=NAME_MAX_LENGTH, unique=True)
    description = models.TextField(max_length=DESCRIPTION_MAX_LENGTH, blank=True)
    classification = models.CharField(max_length=64)
    compartments = models.CharField(max_length=512, default="/")
    # PROTECT: the creator is part of the record of who introduced classified data; accounts are disabled, not
    # deleted, so this never blocks normal operation.
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        abstract = True
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    def access_label(self) -> Label:
        """The collection's label; everything derived from it (items, annotations, exports) carries at least this."""
        return label_of(self, self.access_fields)


class Dataset(LabeledCollection):
    """One dataset: a labeled collection whose items are encrypted under its own data key."""

    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="datasets", blank=True)
    # The dataset's DEK, wrapped (vault). PROTECT: a key is destroyed (crypto-shredded), never deleted with a row.
    data_key = models.OneToOneField(
        "vault.DataKey", on_delete=models.PROTECT, null=True, blank=True, related_name="dataset"
    )

    class Meta(LabeledCollection.Meta):
        pass


FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "TIFF": "image/tiff", "WEBP": "image/webp"}
ITEM_NAME_MAX_LENGTH = 255


class Item(models.Model):
    """One image of a dataset: what was validated at import, and the ids of its encrypted blobs.

    `uid` (random) is the item's identity inside its blobs' associated data, fixed before the blobs are written,
    so a blob decrypts only as this item's. `sha256` is of the original bytes, unique per dataset (the same file
    imported twice is one item). The preview is a downscaled copy for images too large to show whole; empty when
    the original is small enough.
    """

    uid = models.CharField(max_length=32, unique=True, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="items")
    name = models.CharField(max_length=ITEM_NAME_MAX_LENGTH)
    format = models.CharField(max_length=8, choices=[(name, name) for name in FORMATS])
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    byte_size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    image_blob = models.CharField(max_length=32)
    thumbnail_blob = models.CharField(max_length=32)
    thumbnail_sha256 = models.CharField(max_length=64)
    preview_blob = models.CharField(max_length=32, blank=True)
    preview_sha256 = models.CharField(max_length=64, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["dataset", "sha256"], name="datasets_item_unique_content")]
        indexes = [models.Index(fields=["dataset", "id"], name="datasets_item_keyset")]

    def __str__(self) -> str:
        return f"{self.name} ({self.dataset_id}/{self.pk})"

    @property
    def mime_type(self) -> str:
        return FORMATS[self.format]

    def access_label(self) -> Label:
        return self.dataset.access_label()
