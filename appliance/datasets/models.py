"""Datasets: labeled, need-to-know containers of imagery (items and imagery arrive with the vault).

A dataset carries a classification label (level + compartment marking) and an explicit member list; the access
decision reads both through `access_fields`, so the same columns drive `decide` for one dataset and `visible` for
a list. This module holds no authorization logic and no writes: those live in `access` and in `actions`.
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


class Dataset(models.Model):
    """One dataset. `compartments` is the canonical marking ("/ALPHA/", "/" for none) so the label gate can run
    as one regular-expression match in SQL; `version` counts changes for optimistic concurrency and caches."""

    access_fields: ClassVar[AccessFields] = AccessFields(
        level="classification", compartments="compartments", members="members"
    )

    name = models.CharField(max_length=NAME_MAX_LENGTH, unique=True)
    description = models.TextField(max_length=DESCRIPTION_MAX_LENGTH, blank=True)
    classification = models.CharField(max_length=64)
    compartments = models.CharField(max_length=512, default="/")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="datasets", blank=True)
    # PROTECT: the creator is part of the record of who introduced classified data; accounts are disabled, not
    # deleted, so this never blocks normal operation.
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    def access_label(self) -> Label:
        """The dataset's label; everything derived from it (items, annotations, exports) carries at least this."""
        return label_of(self, self.access_fields)
