"""Reads of labeling, already narrowed by the access decision: nothing here returns what the caller may not see.

A project is gated like a dataset (its stored label, its own members). A task is reached only through its
project, and must also pass the gates of its item's dataset: a member of the project who lost access to one of
its datasets loses that dataset's tasks too. Every refusal is the audited 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, QuerySet

from appliance.access.decision import Subject, decide, visible
from appliance.access.denial import deny
from appliance.access.fetch import authorize
from appliance.labeling.models import (
    EDITABLE_STATES,
    Annotation,
    AnnotationRevision,
    Project,
    ReviewComment,
    Task,
    TaskState,
)

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


def latest_review_comments(task: Task) -> QuerySet[ReviewComment]:
    """The remarks of the task's most recent review (the ones the analyst has to act on)."""
    latest = ReviewComment.objects.filter(task=task).order_by("-round").values_list("round", flat=True).first()
    return ReviewComment.objects.filter(task=task, round=latest or 0).select_related("author")


def authors_of(task: Task) -> set[Any]:
    """Whose work the task is: its assignee and whoever last edited any of its annotations."""
    authors = set(Annotation.objects.filter(task=task).values_list("updated_by_id", flat=True))
    if task.assignee_id is not None:
        authors.add(task.assignee_id)
    return authors


def tasks_to_review(user: Subject, project: Project) -> QuerySet[Task]:
    """Submitted tasks of an already authorized project that `user` may review and did not work on, oldest first.

    Own work is excluded by assignee and by last editor, the same rule `review_task` enforces; the datasets are
    those the reviewer passes the gates of.
    """
    datasets = datasets_open_to(user, project, "annotation.review")
    own = Annotation.objects.filter(task=OuterRef("pk"), updated_by=user.pk)
    return (
        Task.objects.filter(project=project, state=TaskState.SUBMITTED, item__dataset__in=datasets)
        .exclude(assignee=user.pk)
        .exclude(Exists(own))
        .order_by("updated_at", "id")
    )


@dataclass(frozen=True)
class AnalystProgress:
    username: str
    counts: dict[str, int]  # tasks assigned to them, per state (every state present)

    @property
    def assigned(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Progress:
    counts: dict[str, int]  # every task of the project, per state (every state present)
    unassigned: int  # tasks still to be labeled that nobody is assigned to
    analysts: list[AnalystProgress]  # per assignee (and per labeler with nothing yet), by user name

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _per_state(rows: Any) -> dict[str, int]:
    counts = dict.fromkeys(TaskState.values, 0)
    for state, count in rows:
        counts[state] = count
    return counts


def progress_of(project: Project, *, labelers: Sequence[str] = ()) -> Progress:
    """An already authorized project's progress: counts per state, and per analyst, in two grouped queries
    whatever the number of tasks. `labelers` adds a zero row for members who have nothing assigned yet."""
    tasks = Task.objects.filter(project=project).order_by()
    counts = _per_state(tasks.values_list("state").annotate(n=Count("id")))
    per_user: dict[str, dict[str, int]] = {name: dict.fromkeys(TaskState.values, 0) for name in labelers}
    rows = tasks.filter(assignee__isnull=False).values_list("assignee__username", "state").annotate(n=Count("id"))
    for username, state, count in rows:
        per_user.setdefault(username, dict.fromkeys(TaskState.values, 0))[state] = count
    unassigned = tasks.filter(assignee__isnull=True, state__in=EDITABLE_STATES).count()
    analysts = [AnalystProgress(username=name, counts=per_user[name]) for name in sorted(per_user)]
    return Progress(counts=counts, unassigned=unassigned, analysts=analysts)


def state_counts_of(projects: list[Project]) -> dict[int, dict[str, int]]:
    """Task counts per state of each of already authorized `projects`, in one grouped query."""
    tasks = Task.objects.filter(project__in=projects).order_by()
    rows = tasks.values_list("project_id", "state").annotate(n=Count("id"))
    counts: dict[int, dict[str, int]] = {project.pk: dict.fromkeys(TaskState.values, 0) for project in projects}
    for project_id, state, count in rows:
        counts[project_id][state] = count
    return counts


@dataclass(frozen=True)
class TaskPage:
    items: list[Task]
    next_after: int | None


def tasks_of(
    project: Project,
    *,
    datasets: Sequence[int],
    after: int | None = None,
    limit: int = 50,
    states: Sequence[str] = (),
) -> TaskPage:
    """One keyset page of an already authorized project's tasks on `datasets` (those the caller may see), with
    item, assignee and lock holder, in id order."""
    limit = max(1, min(limit, MAX_PROJECTS))
    queryset = Task.objects.filter(project=project, item__dataset__in=datasets)
    queryset = queryset.select_related("item", "assignee", "lock_holder").order_by("id")
    if states:
        queryset = queryset.filter(state__in=states)
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    rows = list(queryset[: limit + 1])
    items = rows[:limit]
    return TaskPage(items=items, next_after=items[-1].pk if len(rows) > limit else None)


def own_tasks(user: Subject, project: Project) -> QuerySet[Task]:
    """The tasks of an already authorized project assigned to `user`, on datasets they still pass the gates of."""
    datasets = datasets_open_to(user, project, "annotation.edit")
    return Task.objects.filter(project=project, assignee=user.pk, item__dataset__in=datasets)


def datasets_open_to(user: Subject, project: Project, permission: str) -> list[int]:
    """The ids of the project's datasets whose own gates `user` passes for `permission`."""
    return [dataset.pk for dataset in project.datasets.all() if decide(user, permission, dataset)]
