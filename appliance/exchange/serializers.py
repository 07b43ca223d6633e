"""Input and output shapes of the exchange API: one input serializer per operation, plain outputs."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from appliance.exchange.importing import FORMATS, MATCH_BY, MODES
from appliance.exchange.models import Export, ExportFormat, Recipient, Release


class ExportIn(serializers.Serializer[Any]):
    format = serializers.ChoiceField(choices=ExportFormat.values)
    include_images = serializers.BooleanField(default=False)


class ExportOut(serializers.ModelSerializer[Export]):
    banner = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = Export
        fields = (
            "id",
            "project",
            "format",
            "include_images",
            "banner",
            "state",
            "done",
            "total",
            "error",
            "report",
            "sha256",
            "size",
            "created_by",
            "created_at",
            "finished_at",
        )

    def get_banner(self, export: Export) -> str:
        return export.access_label().banner()


class ImportIn(serializers.Serializer[Any]):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=FORMATS)
    match = serializers.ChoiceField(choices=MATCH_BY, default="name")
    mode = serializers.ChoiceField(choices=MODES, default="add")
    dry_run = serializers.BooleanField(default=False)


class ReleaseIn(serializers.Serializer[Any]):
    recipient = serializers.IntegerField(required=False, allow_null=True, default=None)
    plain = serializers.BooleanField(default=False)
    reason = serializers.CharField(max_length=2000)


class DecisionIn(serializers.Serializer[Any]):
    approve = serializers.BooleanField()
    version = serializers.IntegerField(min_value=1)


class ReleaseOut(serializers.ModelSerializer[Release]):
    requested_by = serializers.CharField(source="requested_by.username")
    decided_by = serializers.CharField(source="decided_by.username", default=None)
    recipient = serializers.CharField(source="recipient.name", default=None)

    class Meta:
        model = Release
        fields = (
            "id",
            "export",
            "recipient",
            "plain",
            "reason",
            "state",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "downloads",
            "version",
        )


class RecipientIn(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    certificate_pem = serializers.CharField(max_length=20_000)


class RecipientOut(serializers.ModelSerializer[Recipient]):
    class Meta:
        model = Recipient
        fields = ("id", "name", "fingerprint", "subject", "not_after", "enrolled_at", "revoked_at")
