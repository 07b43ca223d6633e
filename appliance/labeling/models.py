"""Labeling projects, their schemas and tasks, annotations and the full history of every annotation.

A project binds datasets; its label is the least upper bound of theirs, stored on the row (`classification`,
`compartments`) so that `decide` and `visible` gate it exactly as they gate a dataset, in SQL, without a join
over the datasets; it is computed when the project is created (its datasets, and their labels, do not change
afterwards: there is no action for either yet, and one that adds one must recompute it). Its members are its own
need-to-know list. A task is one item of one of its datasets, and is only ever reached through its project
*and* that item's dataset (see `selectors.access_task`), so losing access to either hides the task.
Annotations are never deleted (a delete is a flag and a revision), and each change appends an
`AnnotationRevision`: any earlier state can be shown and restored. No authorization or writes live here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from appliance.access.labels import Label
from appliance.datasets.models import Dataset, Item, LabeledCollection

COMMENT_MAX_LENGTH = 4000


class Project(LabeledCollection):
    """One labeling project. `classification`/`compartments` hold the highest label of its datasets."""

    datasets = models.ManyToManyField(Dataset, related_name="projects")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="projects", blank=True)

    class Meta(LabeledCollection.Meta):
        pass

    def current_schema(self) -> SchemaVersion | None:
        return self.schema_versions.order_by("-number").first()


class SchemaVersion(models.Model):
    """One published schema; immutable, so an annotation's `schema_version` always explains its class."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="schema_versions")
    number = models.PositiveIntegerField()
    classes = models.JSONField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="labeling_schema_unique_number")]

    def __str__(self) -> str:
        return f"{self.project_id} v{self.number}"

    @property
    def schema(self) -> dict[str, Any]:
        return {"classes": self.classes}


class TaskState(models.TextChoices):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


EDITABLE_STATES = (TaskState.NEW, TaskState.IN_PROGRESS, TaskState.REJECTED)


class Task(models.Model):
    """One item to label in one project. `lock_holder` until `locked_until` keeps two analysts off one image."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="tasks")
    state = models.CharField(max_length=16, choices=TaskState.choices, default=TaskState.NEW)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lock_holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    locked_until = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    review_comments = models.TextField(max_length=COMMENT_MAX_LENGTH, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "item"], name="labeling_task_unique_item")]
        indexes = [models.Index(fields=["project", "state", "id"], name="labeling_task_queue")]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.project_id}/{self.item_id})"

    def access_label(self) -> Label:
        return self.item.access_label()


class Source(models.TextChoices):
    HUMAN = "human"
    MODEL = "model"


class Annotation(models.Model):
    """One shape (or image-level tag) on a task's image; `version` counts its revisions, starting at 1."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="annotations")
    kind = models.CharField(max_length=16)
    geometry = models.JSONField(null=True, blank=True)
    class_name = models.CharField(max_length=100)
    attributes = models.JSONField(default=dict, blank=True)
    schema_version = models.ForeignKey(SchemaVersion, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.HUMAN)
    model_ref = models.CharField(max_length=200, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    deleted = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["task", "deleted"], name="labeling_annotation_task")]

    def __str__(self) -> str:
        return f"annotation {self.pk} v{self.version}"

    def snapshot(self) -> dict[str, Any]:
        """The annotation's content as a revision stores it (what a restore puts back)."""
        return {
            "kind": self.kind,
            "geometry": self.geometry,
            "class_name": self.class_name,
            "attributes": self.attributes,
            "schema_version": self.schema_version.number,
            "source": self.source,
            "model_ref": self.model_ref,
            "confidence": self.confidence,
        }


class AnnotationRevision(models.Model):
    """One change of one annotation: `before` is None for a create, `after` None for a delete."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["annotation", "version"]
        constraints = [
            models.UniqueConstraint(fields=["annotation", "version"], name="labeling_revision_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.annotation_id} v{self.version}"


class ReviewComment(models.Model):
    """A reviewer's remark on one annotation (at the version reviewed) or, with no annotation, on the whole task.

    `round` is the task's version when the review was decided, so the canvas shows the remarks of the latest
    review next to the shapes they are about, and earlier rounds stay on record.
    """

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="comments")
    annotation = models.ForeignKey(
        Annotation, on_delete=models.CASCADE, null=True, blank=True, related_name="review_comments"
    )
    annotation_version = models.PositiveIntegerField(null=True, blank=True)
    round = models.PositiveIntegerField()
    text = models.TextField(max_length=COMMENT_MAX_LENGTH)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["task", "round", "id"]
        indexes = [models.Index(fields=["task", "round"], name="labeling_comment_round")]

    def __str__(self) -> str:
        return f"comment on {self.annotation_id or 'task'} ({self.task_id} r{self.round})"
