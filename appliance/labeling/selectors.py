"""Reads of labeling, already narrowed by the access decision: nothing here returns what the caller may not see.

A project is gated like a dataset (its stored label, its own members). A task is reached only through its
project, and must also pass the gates of its item's dataset: a member of the project who lost access to one of
its datasets loses that dataset's tasks too. Every refusal is the audited 404.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from appliance.access.decision import Subject, decide, visible
from appliance.access.denial import deny
from appliance.access.fetch import authorize
from appliance.labeling.models import Annotation, AnnotationRevision, Project, Task

MAX_PROJECTS = 200


def projects_visible_to(user: Subject, *, permission: str = "dataset.view") -> list[Project]:
    """The projects `user` may exercise `permission` on, in id order (filtered in SQL)."""
    return list(visible(Project.objects.all(), user, permission).order_by("id")[:MAX_PROJECTS])


def access_project(user: Subject, project_id: Any, permission: str) -> Project:
    """The project if `user` may exercise `permission` on it; otherwise the audited 404, whether it exists or not."""
    return authorize(user, permission, Project, project_id)


def access_task(user: Subject, project_id: Any, task_id: Any, permission: str) -> Task:
    """The task if it belongs to the project and `user` passes `permission` on the project and on the dataset of
    its item; otherwise the audited 404 (a task id under another project is as missing as one that is not)."""
    project = access_project(user, project_id, permission)
    task = Task.objects.select_related("item__dataset").filter(project=project, pk=task_id).first()
    object_id = f"{project_id}/{task_id}"
    if task is None:
        raise deny(permission=permission, gate="missing", object_type="task", object_id=object_id)
    decision = decide(user, permission, task.item.dataset)
    if not decision:
        raise deny(permission=permission, gate=decision.gate, object_type="task", object_id=object_id)
    task.project = project
    return task


def access_annotation(user: Subject, project_id: Any, task_id: Any, annotation_id: Any, permission: str) -> Annotation:
    """An annotation of a task the user may reach (deleted ones included: their history can be restored)."""
    task = access_task(user, project_id, task_id, permission)
    annotation = Annotation.objects.filter(task=task, pk=annotation_id).select_related("schema_version").first()
    if annotation is None:
        raise deny(
            permission=permission,
            gate="missing",
            object_type="annotation",
            object_id=f"{project_id}/{task_id}/{annotation_id}",
        )
    annotation.task = task
    return annotation


def annotations_of(task: Task) -> QuerySet[Annotation]:
    """The live annotations of an already authorized task, in id order."""
    return Annotation.objects.filter(task=task, deleted=False).select_related("schema_version").order_by("id")


def revisions_of(annotation: Annotation) -> QuerySet[AnnotationRevision]:
    """The history of an already authorized annotation, oldest first."""
    return AnnotationRevision.objects.filter(annotation=annotation).select_related("actor").order_by("version")
