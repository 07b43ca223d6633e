"""Input and output shapes of the dataset API. Shape only: the policy checks (levels, compartments, no write up,
unique name) belong to `actions.create_dataset`, which the API maps back onto these field names."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from appliance.datasets.models import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH, Dataset


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


class PageQuery(serializers.Serializer[dict[str, Any]]):
    """The keyset cursor of a list request: `after` (the last id already seen) and `limit`."""

    after = serializers.IntegerField(min_value=0, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=200, required=False, default=50)
