"""Input and output shapes of the labeling API. Shape only: the content checks (geometry, schema, classes,
attribute types, versions) belong to the actions, which name the field at fault for the 400."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

from appliance.datasets.models import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH
from appliance.labeling.actions import MAX_CHANGES
from appliance.labeling.models import (
    COMMENT_MAX_LENGTH,
    Annotation,
    AnnotationRevision,
    Project,
    ReviewComment,
    SchemaVersion,
    Task,
)


class ProjectOut(serializers.ModelSerializer[Project]):
    banner = serializers.SerializerMethodField()
    datasets = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ("id", "name", "description", "datasets", "banner", "created_at", "version")
        read_only_fields = fields

    def get_datasets(self, project: Project) -> list[int]:
        return sorted(project.datasets.values_list("pk", flat=True))

    def get_banner(self, project: Project) -> str:
        return project.access_label().banner()


class ProjectCreateIn(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH, allow_blank=True, default="")
    dataset_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=100)
    schema = serializers.JSONField(required=False, default=None)


class SchemaIn(serializers.Serializer[dict[str, Any]]):
    schema = serializers.JSONField()


class SchemaOut(serializers.ModelSerializer[SchemaVersion]):
    class Meta:
        model = SchemaVersion
        fields = ("number", "classes", "created_at")
        read_only_fields = fields


class TaskOut(serializers.ModelSerializer[Task]):
    assignee = serializers.CharField(source="assignee.username", read_only=True, default=None)
    lock_holder = serializers.CharField(source="lock_holder.username", read_only=True, default=None)
    banner = serializers.SerializerMethodField()
    image = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = (
            "id", "project", "item", "state", "assignee", "lock_holder", "locked_until", "review_comments",
            "version", "updated_at", "banner", "image",
        )  # fmt: skip
        read_only_fields = fields

    def get_banner(self, task: Task) -> str:
        return task.item.access_label().banner()

    def get_image(self, task: Task) -> dict[str, Any]:
        item = task.item
        return {
            "width": item.width,
            "height": item.height,
            "url": f"/api/datasets/{item.dataset_id}/items/{item.pk}/image",
        }


ANNOTATION_FIELDS = (
    "id", "kind", "geometry", "class_name", "attributes", "schema_version", "source", "model_ref",
    "confidence", "version", "updated_at",
)  # fmt: skip


class AnnotationOut(serializers.ModelSerializer[Annotation]):
    schema_version = serializers.IntegerField(source="schema_version.number", read_only=True)

    class Meta:
        model = Annotation
        fields = ANNOTATION_FIELDS
        read_only_fields = fields


def annotation_rows(annotations: QuerySet[Annotation]) -> list[dict[str, Any]]:
    """The same objects `AnnotationOut(many=True)` gives, read as plain rows: a dense image's 10,000 annotations
    in a fraction of the time a serializer per object takes (the task's GET is what the canvas waits for)."""
    columns = [name if name != "schema_version" else "schema_version__number" for name in ANNOTATION_FIELDS]
    moment = serializers.DateTimeField()
    rows = []
    for values in annotations.values_list(*columns):
        row = dict(zip(ANNOTATION_FIELDS, values, strict=True))
        row["updated_at"] = moment.to_representation(row["updated_at"])
        rows.append(row)
    return rows


class SaveIn(serializers.Serializer[dict[str, Any]]):
    task_version = serializers.IntegerField(min_value=1)
    changes = serializers.ListField(child=serializers.DictField(), max_length=MAX_CHANGES)


class ReviewIn(serializers.Serializer[dict[str, Any]]):
    decision = serializers.ChoiceField(choices=["accept", "reject"])
    comments = serializers.CharField(max_length=COMMENT_MAX_LENGTH, allow_blank=True, default="")
    annotation_comments = serializers.ListField(child=serializers.DictField(), default=list)


class CommentOut(serializers.ModelSerializer[ReviewComment]):
    author = serializers.CharField(source="author.username", read_only=True)

    class Meta:
        model = ReviewComment
        fields = ("id", "annotation", "annotation_version", "round", "text", "author", "created_at")
        read_only_fields = fields


class RestoreIn(serializers.Serializer[dict[str, Any]]):
    version = serializers.IntegerField(min_value=1)


class RevisionOut(serializers.ModelSerializer[AnnotationRevision]):
    actor = serializers.CharField(source="actor.username", read_only=True)

    class Meta:
        model = AnnotationRevision
        fields = ("version", "before", "after", "actor", "time")
        read_only_fields = fields
