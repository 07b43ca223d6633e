"""Input and output shapes of the dataset API. Shape only: the policy checks (levels, compartments, no write up,
unique name) belong to `actions.create_dataset`, which the API maps back onto these field names."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from appliance.datasets.models import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH, Dataset, Item


class DatasetOut(serializers.ModelSerializer[Dataset]):
    compartments = serializers.SerializerMethodField()
    banner = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = ("id", "name", "description", "classification", "compartments", "banner", "created_at", "version")
        read_only_fields = fields

    def get_compartments(self, dataset: Dataset) -> list[str]:
        return sorted(dataset.access_label().compartments)

    def get_banner(self, dataset: Dataset) -> str:
        return dataset.access_label().banner()


class DatasetCreateIn(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH, allow_blank=True, default="")
    classification = serializers.CharField(max_length=64)
    compartments = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=64, allow_empty=True, default=list
    )


class DatasetDeleteIn(serializers.Serializer[dict[str, Any]]):
    confirm_name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    reason = serializers.CharField(max_length=1000)


class PageQuery(serializers.Serializer[dict[str, Any]]):
    """The keyset cursor of a list request: `after` (the last id already seen) and `limit`."""

    after = serializers.IntegerField(min_value=0, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=200, required=False, default=50)


class ItemOut(serializers.ModelSerializer[Item]):
    """An item's metadata and where its imagery is; never its bytes."""

    banner = serializers.SerializerMethodField()
    mime_type = serializers.CharField(read_only=True)
    urls = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = (
            "id", "dataset", "name", "format", "mime_type", "width", "height", "byte_size", "sha256",
            "created_at", "banner", "urls",
        )  # fmt: skip
        read_only_fields = fields

    def get_banner(self, item: Item) -> str:
        return item.dataset.access_label().banner()

    def get_urls(self, item: Item) -> dict[str, str]:
        base = f"/api/datasets/{item.dataset_id}/items/{item.pk}"
        return {kind: f"{base}/{kind}" for kind in ("image", "preview", "thumbnail")}
