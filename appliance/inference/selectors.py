"""Reads of inference, narrowed by access: jobs through their project, model quality over visible projects only.

A model's measured quality comes from labeling's revisions, never from anything the model says about itself:
each proposal's first revision (before=None, source=model) is what it proposed; its current row says what became
of it. Deleted: rejected. Still source=model: not yet looked at. Human with the proposal's class and geometry:
accepted unchanged. Human otherwise: accepted after an edit, scored by the IoU of proposal and final shape
(boxes; other shapes by their bounding boxes). Counts cover only projects the reader may manage, so the page
never reveals what was proposed on data they may not see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet, Sum

from appliance.access.decision import Subject, decide, visible
from appliance.access.denial import deny
from appliance.inference.decoders.base import box_iou
from appliance.inference.models import Job, JobState, RegisteredModel
from appliance.labeling.models import Annotation, AnnotationRevision, Project, Source

RUN = "project.manage"
MANAGE = "model.manage"
MAX_JOBS = 50


def may_see_registry(user: Subject) -> bool:
    """Admins manage the registry; managers choose from it to pre-label."""
    return bool(decide(user, MANAGE)) or bool(decide(user, RUN))


def models_for(user: Subject) -> QuerySet[RegisteredModel]:
    if not may_see_registry(user):
        return RegisteredModel.objects.none()
    return RegisteredModel.objects.select_related("signed_by").order_by("name", "version")


def access_model(user: Subject, model_id: Any, permission: str = "") -> RegisteredModel:
    """The model if `user` may see the registry (and holds `permission`, when given); else the audited 404."""
    allowed = decide(user, permission) if permission else may_see_registry(user)
    row = RegisteredModel.objects.filter(pk=model_id).first() if allowed else None
    if row is None:
        raise deny(
            permission=permission or MANAGE, gate="missing" if allowed else "role", object_type="model",
            object_id=str(model_id),
        )  # fmt: skip
    return row


def access_job(user: Subject, job_id: Any) -> Job:
    """The job if `user` may run pre-labeling on its project; else the audited 404."""
    job = Job.objects.select_related("project", "model", "started_by").filter(pk=job_id).first()
    if job is None:
        raise deny(permission=RUN, gate="missing", object_type="prelabel_job", object_id=str(job_id))
    decision = decide(user, RUN, job.project)
    if not decision:
        raise deny(permission=RUN, gate=decision.gate, object_type="prelabel_job", object_id=str(job_id))
    return job


def jobs_of(project: Project) -> list[Job]:
    """The latest jobs of an already authorized project."""
    return list(Job.objects.filter(project=project).select_related("model", "started_by").order_by("-id")[:MAX_JOBS])


@dataclass
class ClassQuality:
    """What became of one class's proposals."""

    class_name: str
    proposed: int = 0
    pending: int = 0
    accepted: int = 0
    edited: int = 0
    deleted: int = 0
    iou_sum: float = 0.0
    reclassified: int = 0

    @property
    def mean_iou(self) -> float | None:
        return self.iou_sum / self.edited if self.edited else None

    @property
    def precision(self) -> float | None:
        """Share of decided proposals kept (unchanged or edited), the model's precision on this site's data."""
        decided = self.accepted + self.edited + self.deleted
        return (self.accepted + self.edited) / decided if decided else None


@dataclass
class ModelQuality:
    classes: list[ClassQuality] = field(default_factory=list)
    tasks: int = 0
    busy_seconds: float = 0.0

    @property
    def throughput(self) -> float | None:
        return self.tasks / self.busy_seconds if self.busy_seconds > 0 else None

    def totals(self) -> ClassQuality:
        total = ClassQuality("all")
        for row in self.classes:
            for name in ("proposed", "pending", "accepted", "edited", "deleted", "reclassified"):
                setattr(total, name, getattr(total, name) + getattr(row, name))
            total.iou_sum += row.iou_sum
        return total


def _bounds(kind: str, geometry: Any) -> list[float] | None:
    if kind == "box" and isinstance(geometry, list) and len(geometry) == 4:
        return [float(v) for v in geometry]
    if isinstance(geometry, list) and geometry and all(isinstance(p, list) and len(p) == 2 for p in geometry):
        xs, ys = [p[0] for p in geometry], [p[1] for p in geometry]
        return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    return None


def shape_iou(kind: str, proposed: Any, final: Any) -> float:
    if kind == "tag":
        return 1.0
    a, b = _bounds(kind, proposed), _bounds(kind, final)
    return box_iou(a, b) if a and b else 0.0


def outcome(proposal: dict[str, Any], annotation: Annotation) -> tuple[str, float]:
    """What became of one proposal: pending, accepted, edited (with IoU) or deleted."""
    if annotation.deleted:
        return "deleted", 0.0
    if annotation.source == Source.MODEL:
        return "pending", 0.0
    same_class = annotation.class_name == proposal["class_name"]
    if same_class and annotation.geometry == proposal["geometry"]:
        return "accepted", 1.0
    return "edited", shape_iou(annotation.kind, proposal["geometry"], annotation.geometry)


def quality(model: RegisteredModel, projects: Iterable[Project]) -> ModelQuality:
    """Per-class outcomes of the model's proposals on `projects`, and its throughput over its finished jobs."""
    project_ids = [p.pk for p in projects]
    result = ModelQuality()
    rows: dict[str, ClassQuality] = {}
    annotations = Annotation.objects.filter(model_ref=model.ref, task__project_id__in=project_ids)
    firsts = AnnotationRevision.objects.filter(annotation__in=annotations, version=1, before__isnull=True)
    first_by_annotation = {r.annotation_id: r.after for r in firsts.only("annotation_id", "after").iterator()}
    for annotation in annotations.only(
        "id", "kind", "geometry", "class_name", "source", "deleted"
    ).iterator():  # fmt: skip
        proposal = first_by_annotation.get(annotation.pk)
        if not proposal or proposal.get("source") != Source.MODEL:
            continue  # a human drew it and only kept a model's name as provenance: not a proposal
        row = rows.setdefault(proposal["class_name"], ClassQuality(proposal["class_name"]))
        row.proposed += 1
        what, iou = outcome(proposal, annotation)
        setattr(row, what, getattr(row, what) + 1)
        if what == "edited":
            row.iou_sum += iou
            row.reclassified += annotation.class_name != proposal["class_name"]
    result.classes = sorted(rows.values(), key=lambda r: r.class_name)
    finished = Job.objects.filter(model=model, project_id__in=project_ids).filter(
        Q(state=JobState.DONE) | Q(state=JobState.CANCELLED)
    )
    sums = finished.aggregate(done=Sum("done"), skipped=Sum("skipped"), busy=Sum("busy_seconds"))
    result.tasks = (sums["done"] or 0) - (sums["skipped"] or 0)
    result.busy_seconds = float(sums["busy"] or 0.0)
    return result


def managed_projects(user: Subject) -> QuerySet[Project]:
    """The projects whose proposals `user` may count (those they may run pre-labeling on)."""
    return visible(Project.objects.all(), user, RUN)
