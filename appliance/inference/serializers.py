"""Input and output shapes of the inference API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from appliance.inference.models import Job, RegisteredModel
from appliance.inference.selectors import ClassQuality, ModelQuality


class ModelOut(serializers.ModelSerializer[RegisteredModel]):
    ref = serializers.CharField(read_only=True)
    classification = serializers.SerializerMethodField()
    signed_by = serializers.CharField(source="signed_by.key_id", read_only=True)

    class Meta:
        model = RegisteredModel
        fields = [
            "id", "ref", "name", "version", "task", "decoder", "classes", "sha256", "size", "licence", "signed_by",
            "classification", "state", "imported_at", "retired_at",
        ]  # fmt: skip

    def get_classification(self, row: RegisteredModel) -> str:
        return row.access_label().banner()


class JobOut(serializers.ModelSerializer[Job]):
    model = serializers.CharField(source="model.ref", read_only=True)
    started_by = serializers.CharField(source="started_by.username", read_only=True)
    rate = serializers.SerializerMethodField()
    eta_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "project", "model", "started_by", "state", "min_confidence", "total", "done", "skipped",
            "proposals", "provider", "error", "rate", "eta_seconds", "runs", "created_at", "started_at",
            "heartbeat_at", "finished_at",
        ]  # fmt: skip

    def get_rate(self, job: Job) -> float | None:
        rate = job.rate()
        return round(rate, 3) if rate is not None else None

    def get_eta_seconds(self, job: Job) -> int | None:
        return job.eta_seconds()


class JobStartIn(serializers.Serializer[Any]):
    model = serializers.IntegerField()
    min_confidence = serializers.FloatField(required=False, min_value=0, max_value=1)


class SettingsIn(serializers.Serializer[Any]):
    min_confidence = serializers.FloatField(min_value=0, max_value=1)


class RetireIn(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=500)


def class_quality(row: ClassQuality) -> dict[str, Any]:
    mean_iou, precision = row.mean_iou, row.precision
    return {
        "class_name": row.class_name,
        "proposed": row.proposed,
        "pending": row.pending,
        "accepted_unchanged": row.accepted,
        "accepted_after_edit": row.edited,
        "mean_iou_after_edit": round(mean_iou, 3) if mean_iou is not None else None,
        "reclassified": row.reclassified,
        "deleted": row.deleted,
        "precision": round(precision, 3) if precision is not None else None,
    }


def quality_out(measured: ModelQuality) -> dict[str, Any]:
    throughput = measured.throughput
    return {
        "classes": [class_quality(row) for row in measured.classes],
        "total": class_quality(measured.totals()),
        "tasks": measured.tasks,
        "tasks_per_second": round(throughput, 3) if throughput is not None else None,
    }
