"""Every write to labeling: verb-first, keyword-only, the acting user first, one transaction with its audit record.

Permissions are checked before the transaction opens (`decide`, then the audited `deny`), so a refusal is on the
record and nothing is written. A batch of annotation changes is validated as a whole before the first row is
touched, then applied in one transaction: a bad change, or one made against a version somebody else has since
replaced, leaves nothing behind (`StaleVersion` carries the current state so the client can reload or merge).
Separation of duties is read from the policy's `not_on_own_work`, never decided by role names here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from appliance.access.decision import decide
from appliance.access.denial import deny
from appliance.access.labels import compartment_marking, highest
from appliance.access.policy import get_policy
from appliance.accounts.models import User
from appliance.auditlog.recorder import record
from appliance.datasets.models import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH, Dataset, Item
from appliance.labeling.geometry import GeometryError, validate_geometry
from appliance.labeling.models import (
    COMMENT_MAX_LENGTH,
    EDITABLE_STATES,
    Annotation,
    AnnotationRevision,
    Project,
    ReviewComment,
    SchemaVersion,
    Source,
    Task,
    TaskState,
)
from appliance.labeling.schema import SchemaError, class_of, validate_attributes, validate_schema
from appliance.labeling.selectors import authors_of, datasets_open_to

PROJECT = "project"
TASK = "task"
ANNOTATION = "annotation"
# How long `next_task` holds a task for its analyst; the policy has no key for it yet, so it is a constant here.
LOCK_MINUTES = 30
MAX_CHANGES = 5000
OPERATIONS = ("create", "update", "delete", "accept")


class LabelingError(ValueError):
    """A request the data refuses; `field` names the input at fault so an API can answer 400."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class TaskConflict(LabelingError):
    """The task is not in a state that allows the request (submitted, locked by someone else): answered 409."""


class OwnWork(LabelingError):
    """The policy's separation of duties forbids this person acting on their own work (answered 403)."""


class StaleVersion(Exception):
    """A save edited a version that is no longer current; nothing was written. `task` and `annotations` are the
    current state, for the client to reload or merge."""

    def __init__(self, message: str, *, task: Task, annotations: list[Annotation]) -> None:
        super().__init__(message)
        self.task = task
        self.annotations = annotations


def _authorize(by: User, permission: str, obj: Project | Dataset, object_type: str, object_id: Any) -> None:
    decision = decide(by, permission, obj)
    if not decision:
        raise deny(permission=permission, gate=decision.gate, object_type=object_type, object_id=str(object_id))


def _authorize_task(by: User, permission: str, task: Task) -> None:
    """A task needs the permission on its project and on its item's dataset: either gate alone hides it."""
    _authorize(by, permission, task.project, TASK, task.pk)
    _authorize(by, permission, task.item.dataset, TASK, task.pk)


def _project_label(datasets: Iterable[Dataset]) -> tuple[str, str]:
    label = highest((dataset.access_label() for dataset in datasets), get_policy().classification)
    return label.level, compartment_marking(label.compartments)


def _bump(model: type[Project] | type[Task], obj: Project | Task, **changes: Any) -> None:
    model.objects.filter(pk=obj.pk).update(version=F("version") + 1, **changes)
    obj.refresh_from_db()


# --- projects and schemas -------------------------------------------------------------------------------------


def _check_schema(raw: Any) -> dict[str, Any]:
    try:
        return validate_schema(raw)
    except SchemaError as exc:
        raise LabelingError(str(exc), field=exc.field) from exc


def _publish(by: User, project: Project, schema: dict[str, Any]) -> SchemaVersion:
    current = project.current_schema()
    version = SchemaVersion.objects.create(
        project=project, number=(current.number + 1) if current else 1, classes=schema["classes"], created_by=by
    )
    record(
        action="project.schema.publish",
        object_type=PROJECT,
        object_id=project.pk,
        label=project.access_label().banner(),
        details={"number": version.number, "classes": [entry["name"] for entry in schema["classes"]]},
    )
    return version


def create_project(
    by: User, *, name: str, description: str = "", dataset_ids: Sequence[int], schema: Any = None
) -> Project:
    """Create a project over `dataset_ids`, labeled the highest of their labels; its creator becomes its first
    member, and `schema`, when given, is published as version 1.

    The creator must see every dataset (no binding data one could not read); a dataset they cannot see is refused
    exactly like a missing one, and the refusal is on the record.
    """
    decision = decide(by, "project.create")
    if not decision:
        raise deny(permission="project.create", gate=decision.gate, object_type=PROJECT)
    cleaned = name.strip()
    if not cleaned or len(cleaned) > NAME_MAX_LENGTH:
        raise LabelingError(f"a project needs a name of 1 to {NAME_MAX_LENGTH} characters", field="name")
    if Project.objects.filter(name=cleaned).exists():
        raise LabelingError(f"a project named {cleaned!r} already exists", field="name")
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise LabelingError(f"a description has at most {DESCRIPTION_MAX_LENGTH} characters", field="description")
    if not dataset_ids:
        raise LabelingError("a project needs at least one dataset", field="dataset_ids")
    datasets: list[Dataset] = []
    for dataset_id in dict.fromkeys(dataset_ids):
        dataset = Dataset.objects.filter(pk=dataset_id).first()
        gate = "missing" if dataset is None else decide(by, "dataset.view", dataset).gate
        if dataset is None or gate != "granted":
            deny(permission="dataset.view", gate=gate, object_type="dataset", object_id=str(dataset_id))
            raise LabelingError(f"dataset {dataset_id} does not exist", field="dataset_ids")
        datasets.append(dataset)
    checked_schema = _check_schema(schema) if schema is not None else None
    level, marking = _project_label(datasets)
    with transaction.atomic():
        try:
            with transaction.atomic():
                project = Project.objects.create(
                    name=cleaned, description=description, classification=level, compartments=marking, created_by=by
                )
        except IntegrityError as exc:
            raise LabelingError(f"a project named {cleaned!r} already exists", field="name") from exc
        project.datasets.set(datasets)
        project.members.add(by)
        record(
            action="project.create",
            object_type=PROJECT,
            object_id=project.pk,
            label=project.access_label().banner(),
            details={"name": cleaned, "datasets": [d.pk for d in datasets], "members": [by.get_username()]},
        )
        if checked_schema is not None:
            _publish(by, project, checked_schema)
    return project


def add_project_member(by: User, *, project: Project, member: User) -> Project:
    """Give `member` need-to-know on `project`; they still need clearance for its label and for each dataset."""
    _authorize(by, "project.manage", project, PROJECT, project.pk)
    if project.members.filter(pk=member.pk).exists():
        raise LabelingError(f"{member.get_username()} is already a member of {project.name}", field="member")
    with transaction.atomic():
        project.members.add(member)
        _bump(Project, project)
        record(
            action="project.member.add",
            object_type=PROJECT,
            object_id=project.pk,
            label=project.access_label().banner(),
            details={"member": member.get_username(), "version": project.version},
        )
    return project


def publish_schema(by: User, *, project: Project, schema: Any) -> SchemaVersion:
    """Publish a new schema version; annotations already made keep the version they were made under."""
    _authorize(by, "project.manage", project, PROJECT, project.pk)
    checked = _check_schema(schema)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # one publisher at a time: dense numbers
        version = _publish(by, project, checked)
        _bump(Project, project)
    return version


# --- tasks ------------------------------------------------------------------------------------------------------


def create_tasks(by: User, *, project: Project) -> int:
    """One task per item of the project's datasets; items that already have one are skipped. Returns how many."""
    _authorize(by, "project.manage", project, PROJECT, project.pk)
    with transaction.atomic():
        items = Item.objects.filter(dataset__in=project.datasets.all()).exclude(tasks__project=project)
        created = Task.objects.bulk_create(
            [Task(project=project, item=item) for item in items.only("pk")], ignore_conflicts=True
        )
        count = len(created)
        record(
            action="project.tasks.create",
            object_type=PROJECT,
            object_id=project.pk,
            label=project.access_label().banner(),
            details={"created": count, "total": Task.objects.filter(project=project).count()},
        )
    return count


def _lock_minutes() -> int:
    return int(getattr(get_policy().security, "lock_minutes", LOCK_MINUTES))


def next_task(by: User, *, project: Project) -> Task | None:
    """The analyst's next task, locked to them: their own task in progress first, then one sent back to them,
    then one a manager assigned to them, then the first unassigned one (never one assigned to someone else). A
    task held by someone else (lock not expired) is skipped; on PostgreSQL the row lock is taken with SKIP
    LOCKED, so two analysts asking at once never get the same task. None when nothing is left.
    """
    _authorize(by, "annotation.edit", project, PROJECT, project.pk)
    now = timezone.now()
    mine = Q(assignee=by) | Q(assignee__isnull=True)
    candidates = (
        Task.objects.filter(project=project)
        .filter((Q(state__in=[TaskState.NEW, TaskState.IN_PROGRESS]) & mine) | Q(state=TaskState.REJECTED, assignee=by))
        .exclude(Q(locked_until__gt=now) & ~Q(lock_holder=by))
        .filter(item__dataset__in=datasets_open_to(by, project, "annotation.edit"))
    )
    with transaction.atomic():
        locking = candidates.select_for_update(skip_locked=True, of=("self",))
        task = (
            locking.filter(lock_holder=by, state=TaskState.IN_PROGRESS).order_by("id").first()
            or locking.filter(state=TaskState.REJECTED).order_by("id").first()
            or locking.filter(assignee=by).order_by("id").first()
            or locking.order_by("id").first()
        )
        if task is None:
            return None
        was = task.state
        _bump(
            Task,
            task,
            state=TaskState.IN_PROGRESS,
            assignee=task.assignee or by,
            lock_holder=by,
            locked_until=now + timedelta(minutes=_lock_minutes()),
            updated_at=now,
        )
        record(
            action="task.lock",
            object_type=TASK,
            object_id=task.pk,
            label=task.item.access_label().banner(),
            details={"project": project.pk, "from": was, "until": task.locked_until.isoformat()},  # type: ignore[union-attr]
        )
    return task


def _check_editable(by: User, task: Task) -> None:
    if task.state not in EDITABLE_STATES:
        raise TaskConflict(f"the task is {task.state} and can no longer be edited", field="task")
    if task.lock_holder_id not in (None, by.pk) and task.locked_until and task.locked_until > timezone.now():
        raise TaskConflict("the task is being worked on by someone else", field="task")
    # Assigned work is its assignee's: after a reassignment the previous analyst can no longer change it.
    if task.assignee_id not in (None, by.pk):
        raise TaskConflict("the task is assigned to someone else; only they can change it", field="task")


def submit_task(by: User, *, task: Task) -> Task:
    """Hand the task in for review; its lock is released."""
    _authorize_task(by, "annotation.edit", task)
    with transaction.atomic():
        task = Task.objects.select_for_update().select_related("project", "item__dataset").get(pk=task.pk)
        _check_editable(by, task)
        _bump(
            Task,
            task,
            state=TaskState.SUBMITTED,
            assignee=task.assignee or by,
            lock_holder=None,
            locked_until=None,
            updated_at=timezone.now(),
        )
        record(
            action="task.submit",
            object_type=TASK,
            object_id=task.pk,
            label=task.item.access_label().banner(),
            details={"project": task.project_id, "annotations": _live(task).count(), "version": task.version},
        )
    return task


def _check_annotation_comments(task: Task, raw: Any) -> list[tuple[Annotation, str]]:
    """Each `{"annotation": id, "text": ...}` names a live annotation of this task and says something."""
    if not isinstance(raw, list):
        raise LabelingError("annotation_comments must be a list", field="annotation_comments")
    if len(raw) > MAX_CHANGES:
        raise LabelingError(f"at most {MAX_CHANGES} annotation comments", field="annotation_comments")
    ids = [entry.get("annotation") for entry in raw if isinstance(entry, dict)]
    live = {a.pk: a for a in _live(task).filter(pk__in=[i for i in ids if isinstance(i, int)])}
    checked: list[tuple[Annotation, str]] = []
    for index, entry in enumerate(raw):
        where = f"annotation_comments[{index}]"
        annotation_id = entry.get("annotation") if isinstance(entry, dict) else None
        text = entry.get("text") if isinstance(entry, dict) else None
        if isinstance(annotation_id, bool) or annotation_id not in live:
            raise LabelingError(f"{where}: no annotation {annotation_id!r} on this task", field=f"{where}.annotation")
        if not isinstance(text, str) or not text.strip():
            raise LabelingError(f"{where}: the comment is empty", field=f"{where}.text")
        if len(text) > COMMENT_MAX_LENGTH:
            raise LabelingError(f"{where}: at most {COMMENT_MAX_LENGTH} characters", field=f"{where}.text")
        checked.append((live[annotation_id], text.strip()))
    return checked


def review_task(by: User, *, task: Task, decision: str, comments: str = "", annotation_comments: Any = ()) -> Task:
    """Accept a submitted task, or reject it back to its analyst with `comments` and/or remarks per annotation.

    Refused, and recorded, when the policy lists "annotation.review" under `not_on_own_work` and the reviewer is
    the task's assignee or the last editor of any of its annotations.
    """
    permission = "annotation.review"
    _authorize_task(by, permission, task)
    if decision not in ("accept", "reject"):
        raise LabelingError("decision must be accept or reject", field="decision")
    if len(comments) > COMMENT_MAX_LENGTH:
        raise LabelingError(f"comments have at most {COMMENT_MAX_LENGTH} characters", field="comments")
    remarks = _check_annotation_comments(task, list(annotation_comments))
    if decision == "reject" and not comments.strip() and not remarks:
        raise LabelingError("say what to fix: a rejection goes back to the analyst with its comments", field="comments")
    if permission in get_policy().not_on_own_work and by.pk in authors_of(task):
        deny(permission=permission, gate="own_work", object_type=TASK, object_id=str(task.pk))
        raise OwnWork("nobody reviews their own work", field="task")
    with transaction.atomic():
        task = Task.objects.select_for_update().select_related("project", "item__dataset").get(pk=task.pk)
        if task.state != TaskState.SUBMITTED:
            raise TaskConflict(f"the task is {task.state}; only a submitted task can be reviewed", field="task")
        accepted = decision == "accept"
        _bump(
            Task,
            task,
            state=TaskState.ACCEPTED if accepted else TaskState.REJECTED,
            reviewed_by=by,
            review_comments=comments.strip(),
            updated_at=timezone.now(),
        )
        record(
            action="task.accept" if accepted else "task.reject",
            object_type=TASK,
            object_id=task.pk,
            label=task.item.access_label().banner(),
            details={
                "project": task.project_id,
                "comments": comments.strip(),
                "annotation_comments": [{"annotation": a.pk, "version": a.version, "text": t} for a, t in remarks],
                "version": task.version,
            },
        )
        kept = [
            ReviewComment(task=task, annotation=a, annotation_version=a.version, round=task.version, text=t, author=by)
            for a, t in remarks
        ]
        if comments.strip():
            kept.append(ReviewComment(task=task, round=task.version, text=comments.strip(), author=by))
        ReviewComment.objects.bulk_create(kept)
    return task


# --- annotations ------------------------------------------------------------------------------------------------


def _live(task: Task) -> Any:
    return Annotation.objects.filter(task=task, deleted=False).order_by("id")


@dataclass
class _Checked:
    """One change, validated: ready to apply without another check."""

    op: str
    annotation_id: int | None = None
    version: int | None = None
    values: dict[str, Any] = field(default_factory=dict)


def _content(
    change: Mapping[str, Any], where: str, *, kind: Any, task: Task, schema: SchemaVersion, creating: bool
) -> dict[str, Any]:
    item = task.item
    try:
        geometry = validate_geometry(kind, change.get("geometry"), width=item.width, height=item.height)
    except GeometryError as exc:
        raise LabelingError(f"{where}: {exc}", field=f"{where}.{exc.field}") from exc
    definition = class_of(schema.schema, change.get("class_name"))
    if definition is None:
        raise LabelingError(
            f"{where}: class {change.get('class_name')!r} is not in schema version {schema.number}",
            field=f"{where}.class_name",
        )
    try:
        attributes = validate_attributes(definition, change.get("attributes"), field=f"{where}.attributes")
    except SchemaError as exc:
        raise LabelingError(f"{where}: {exc}", field=exc.field) from exc
    values: dict[str, Any] = {
        "geometry": geometry,
        "class_name": definition["name"],
        "attributes": attributes,
        "schema_version": schema,
    }
    if creating:
        source = change.get("source", Source.HUMAN)
        if source not in Source.values:
            raise LabelingError(f"{where}: source must be human or model", field=f"{where}.source")
        confidence = change.get("confidence")
        if confidence is not None and (
            isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1
        ):
            raise LabelingError(f"{where}: confidence must be a number from 0 to 1", field=f"{where}.confidence")
        model_ref = change.get("model_ref", "")
        if not isinstance(model_ref, str) or len(model_ref) > 200 or (source == Source.MODEL and not model_ref):
            raise LabelingError(f"{where}: a model's annotation names its model", field=f"{where}.model_ref")
        values |= {"kind": kind, "source": source, "confidence": confidence, "model_ref": model_ref}
    return values


def _check_changes(changes: Any, task: Task, schema: SchemaVersion | None) -> list[_Checked]:
    if not isinstance(changes, list):
        raise LabelingError("changes must be a list", field="changes")
    if len(changes) > MAX_CHANGES:
        raise LabelingError(f"at most {MAX_CHANGES} changes per save", field="changes")
    # Only the annotations this batch names: a dense image holds thousands, and a save must not read them all.
    named = [c.get("id") for c in changes if isinstance(c, dict) and c.get("op") != "create"]
    ids = [value for value in named if isinstance(value, int) and not isinstance(value, bool)]
    existing = {a.pk: a for a in Annotation.objects.filter(task=task, deleted=False, pk__in=ids)}
    checked: list[_Checked] = []
    touched: set[int] = set()
    for index, change in enumerate(changes):
        where = f"changes[{index}]"
        if not isinstance(change, dict):
            raise LabelingError(f"{where} must be an object", field=where)
        op = change.get("op")
        if op not in OPERATIONS:
            raise LabelingError(f"{where}.op must be one of {', '.join(OPERATIONS)}", field=f"{where}.op")
        if op == "create":
            if schema is None:
                raise LabelingError("the project has no schema yet", field=f"{where}.class_name")
            values = _content(change, where, kind=change.get("kind"), task=task, schema=schema, creating=True)
            checked.append(_Checked(op="create", values=values))
            continue
        annotation_id, version = change.get("id"), change.get("version")
        if isinstance(annotation_id, bool) or not isinstance(annotation_id, int) or annotation_id not in existing:
            raise LabelingError(f"{where}: no annotation {annotation_id!r} on this task", field=f"{where}.id")
        if isinstance(version, bool) or not isinstance(version, int):
            raise LabelingError(f"{where}: the version edited is required", field=f"{where}.version")
        if annotation_id in touched:
            raise LabelingError(f"{where}: annotation {annotation_id} is changed twice", field=f"{where}.id")
        touched.add(annotation_id)
        if op == "update":
            if schema is None:
                raise LabelingError("the project has no schema yet", field=f"{where}.class_name")
            kind = existing[annotation_id].kind
            values = _content(change, where, kind=kind, task=task, schema=schema, creating=False)
            # An analyst's edit of a model's proposal makes it theirs; model_ref and confidence stay as provenance.
            values["source"] = Source.HUMAN
            checked.append(_Checked(op="update", annotation_id=annotation_id, version=version, values=values))
        elif op == "accept":
            if existing[annotation_id].source != Source.MODEL:
                raise LabelingError(f"{where}: only a model's proposal can be accepted", field=f"{where}.op")
            checked.append(
                _Checked(op="update", annotation_id=annotation_id, version=version, values={"source": Source.HUMAN})
            )
        else:
            checked.append(_Checked(op="delete", annotation_id=annotation_id, version=version))
    return checked


def _stale(task: Task, message: str) -> StaleVersion:
    current = Task.objects.select_related("project", "item__dataset").get(pk=task.pk)
    return StaleVersion(message, task=current, annotations=list(_live(current).select_related("schema_version")))


@dataclass(frozen=True)
class SaveResult:
    task: Task
    created: list[Annotation]
    updated: list[Annotation]
    deleted: list[Annotation]


def save_annotations(by: User, *, task: Task, changes: Any, task_version: int) -> SaveResult:
    """Apply a batch of creates, updates, deletes and accepts to a task's annotations, all or nothing.

    "accept" confirms a model's proposal as it is; an update of a proposal confirms it as edited. Either makes the
    annotation human while keeping `model_ref` and `confidence`, so the revisions tell the model's real precision.

    Every change is validated first (geometry against the image, class in the current schema, attribute types);
    then, under a row lock on the task, `task_version` and each edited annotation's `version` must still be
    current, else `StaleVersion` with the current state and nothing written. Each change appends a revision; the
    batch is one audit record.
    """
    _authorize_task(by, "annotation.edit", task)
    schema = task.project.current_schema()
    checked = _check_changes(changes, task, schema)
    now = timezone.now()
    created: list[Annotation] = []
    updated: list[Annotation] = []
    deleted: list[Annotation] = []
    with transaction.atomic():
        locked = Task.objects.select_for_update().select_related("project", "item__dataset").get(pk=task.pk)
        _check_editable(by, locked)
        if locked.version != task_version:
            raise _stale(locked, f"the task is at version {locked.version}, not {task_version}")
        ids = [change.annotation_id for change in checked if change.annotation_id is not None]
        current = {a.pk: a for a in Annotation.objects.select_for_update().filter(pk__in=ids, task=locked)}
        for change in checked:
            annotation = current.get(change.annotation_id) if change.annotation_id is not None else None
            if change.op != "create" and (
                annotation is None or annotation.deleted or annotation.version != change.version
            ):
                have = "deleted" if annotation is None or annotation.deleted else f"at version {annotation.version}"
                raise _stale(locked, f"annotation {change.annotation_id} is {have}, not version {change.version}")
        revisions: list[AnnotationRevision] = []
        created = Annotation.objects.bulk_create(
            [
                Annotation(task=locked, created_by=by, updated_by=by, created_at=now, updated_at=now, **change.values)
                for change in checked
                if change.op == "create"
            ]
        )
        revisions += [_revision(annotation, None, annotation.snapshot(), by, now) for annotation in created]
        for change in checked:
            if change.op == "create":
                continue
            annotation = current[change.annotation_id]  # type: ignore[index]
            before = annotation.snapshot()
            annotation.version += 1
            annotation.updated_by = by
            annotation.updated_at = now
            if change.op == "update":
                for name, value in change.values.items():
                    setattr(annotation, name, value)
                annotation.save()
                revisions.append(_revision(annotation, before, annotation.snapshot(), by, now))
                updated.append(annotation)
            else:
                annotation.deleted = True
                annotation.save()
                revisions.append(_revision(annotation, before, None, by, now))
                deleted.append(annotation)
        AnnotationRevision.objects.bulk_create(revisions)
        state = TaskState.IN_PROGRESS if locked.state == TaskState.NEW else locked.state
        # Working on the task renews the hold on it: an analyst busy on a dense image does not lose it mid-way.
        _bump(
            Task,
            locked,
            state=state,
            assignee=locked.assignee or by,
            lock_holder=by,
            locked_until=now + timedelta(minutes=_lock_minutes()),
            updated_at=now,
        )
        record(
            action="annotation.save",
            object_type=TASK,
            object_id=locked.pk,
            label=locked.item.access_label().banner(),
            details={
                "project": locked.project_id,
                "created": [a.pk for a in created],
                "updated": [a.pk for a in updated],
                "deleted": [a.pk for a in deleted],
                "counts": {"created": len(created), "updated": len(updated), "deleted": len(deleted)},
                "version": locked.version,
            },
        )
    return SaveResult(task=locked, created=created, updated=updated, deleted=deleted)


def _revision(
    annotation: Annotation, before: dict[str, Any] | None, after: dict[str, Any] | None, by: User, now: Any
) -> AnnotationRevision:
    return AnnotationRevision(
        annotation=annotation, version=annotation.version, before=before, after=after, actor=by, time=now
    )


def restore_revision(by: User, *, annotation: Annotation, version: int) -> Annotation:
    """Make the annotation what it was at `version`: a new revision on top, so the history itself never changes.

    The content comes back with the schema version it was made under (it was valid then; the class it names is
    explained by that version). Restoring a deletion's revision is refused: delete with a save instead.
    """
    task = Task.objects.select_related("project", "item__dataset").get(pk=annotation.task_id)
    _authorize_task(by, "annotation.edit", task)
    revision = AnnotationRevision.objects.filter(annotation=annotation, version=version).first()
    if revision is None:
        raise LabelingError(f"annotation {annotation.pk} has no version {version}", field="version")
    if revision.after is None:
        raise LabelingError(f"version {version} is a deletion; there is nothing to restore", field="version")
    now = timezone.now()
    with transaction.atomic():
        locked_task = Task.objects.select_for_update().select_related("item__dataset").get(pk=task.pk)
        _check_editable(by, locked_task)
        locked = Annotation.objects.select_for_update().select_related("schema_version").get(pk=annotation.pk)
        before = None if locked.deleted else locked.snapshot()
        after = revision.after
        schema = SchemaVersion.objects.get(project_id=task.project_id, number=after["schema_version"])
        locked.geometry = after["geometry"]
        locked.class_name = after["class_name"]
        locked.attributes = after["attributes"]
        locked.schema_version = schema
        locked.deleted = False
        locked.version += 1
        locked.updated_by = by
        locked.updated_at = now
        locked.save()
        AnnotationRevision.objects.create(
            annotation=locked, version=locked.version, before=before, after=locked.snapshot(), actor=by, time=now
        )
        _bump(Task, locked_task, updated_at=now)
        record(
            action="annotation.restore",
            object_type=ANNOTATION,
            object_id=locked.pk,
            label=locked_task.item.access_label().banner(),
            details={"task": task.pk, "restored": version, "version": locked.version},
        )
    return locked


# --- assignment -------------------------------------------------------------------------------------------------

ASSIGNABLE_STATES = EDITABLE_STATES
MAX_ASSIGN = 10000


def _may_label(user: User, dataset: Dataset, dataset_ok: dict[tuple[Any, Any], bool]) -> bool:
    """Whether `user` passes "annotation.edit" on the task's dataset (cached per user and dataset)."""
    key = (user.pk, dataset.pk)
    if key not in dataset_ok:
        dataset_ok[key] = bool(decide(user, "annotation.edit", dataset))
    return dataset_ok[key]


def labelers_of(project: Project) -> list[User]:
    """The members who may label the project (role, label and membership gates, as the policy says), by name.

    Round-robin hands work only to them: a member without "annotation.edit" (a manager, say) or without the
    clearance would be given tasks they could never open.
    """
    members = project.members.filter(is_active=True).order_by("username")
    return [member for member in members if decide(member, "annotation.edit", project)]


def assign_tasks(
    by: User,
    *,
    project: Project,
    task_ids: Sequence[int] | None,
    assignees: Sequence[User],
    round_robin: bool,
) -> dict[str, list[int]]:
    """Assign tasks to analysts; returns the task ids given to each, by user name.

    `task_ids` None means every unassigned task still to be labeled. Without `round_robin` exactly one assignee
    takes them all; with it they are dealt in turn among `assignees`, or among the project's labelers when none
    is named, each task to the next person who may open it (its dataset's gates too), so nobody is handed work
    they cannot see. Only tasks still to be labeled (new, in progress, rejected) can be assigned; reassigning
    one releases its lock and bumps its version, so a save its previous holder sends against the version they
    had gets 409 instead of landing on the new assignee's task. One audit record names every assignment.
    """
    _authorize(by, "project.manage", project, PROJECT, project.pk)
    if task_ids is not None:
        if not task_ids:
            raise LabelingError("choose at least one task", field="task_ids")
        if len(task_ids) > MAX_ASSIGN:
            raise LabelingError(f"at most {MAX_ASSIGN} tasks at once", field="task_ids")
    people = list(dict.fromkeys(assignees)) if assignees else ([] if not round_robin else labelers_of(project))
    if not round_robin and len(people) != 1:
        raise LabelingError("name exactly one person, or deal the tasks round-robin", field="assignees")
    if not people:
        raise LabelingError("nobody in this project may label: add analysts as members first", field="assignees")
    for person in people:
        if not decide(person, "annotation.edit", project):
            raise LabelingError(f"{person.get_username()} may not label this project", field="assignees")
    with transaction.atomic():
        tasks = Task.objects.select_for_update().select_related("item__dataset").filter(project=project)
        if task_ids is None:
            chosen = list(tasks.filter(assignee__isnull=True, state__in=ASSIGNABLE_STATES).order_by("id")[:MAX_ASSIGN])
            if not chosen:
                raise LabelingError("every task still to be labeled is already assigned", field="task_ids")
        else:
            wanted = list(dict.fromkeys(task_ids))
            found = {task.pk: task for task in tasks.filter(pk__in=wanted)}
            missing = [pk for pk in wanted if pk not in found]
            if missing:
                raise LabelingError(f"no task {missing[0]} in this project", field="task_ids")
            done = [task for task in found.values() if task.state not in ASSIGNABLE_STATES]
            if done:
                raise TaskConflict(
                    f"task {done[0].pk} is {done[0].state} and can no longer be assigned", field="task_ids"
                )
            chosen = [found[pk] for pk in wanted]
        given: dict[str, list[int]] = {person.get_username(): [] for person in people}
        dataset_ok: dict[tuple[Any, Any], bool] = {}
        turn = 0
        plan: dict[int, list[int]] = {}
        for task in chosen:
            for step in range(len(people)):
                person = people[(turn + step) % len(people)]
                if _may_label(person, task.item.dataset, dataset_ok):
                    turn = (turn + step + 1) % len(people)
                    break
            else:
                raise LabelingError(
                    f"nobody chosen may open task {task.pk} (dataset {task.item.dataset.name})", field="assignees"
                )
            given[person.get_username()].append(task.pk)
            plan.setdefault(person.pk, []).append(task.pk)
        now = timezone.now()
        previous = {task.pk: task.assignee_id for task in chosen}
        for person_pk, pks in plan.items():
            moved = [pk for pk in pks if previous[pk] != person_pk]
            Task.objects.filter(pk__in=moved).update(
                assignee_id=person_pk, lock_holder=None, locked_until=None, version=F("version") + 1, updated_at=now
            )
        record(
            action="project.tasks.assign",
            object_type=PROJECT,
            object_id=project.pk,
            label=project.access_label().banner(),
            details={
                "round_robin": round_robin,
                "selected": task_ids is not None,
                "assigned": {name: pks for name, pks in given.items() if pks},
                "count": len(chosen),
            },
        )
    return given
