"""Every write of inference: the registry, pre-labeling settings and jobs, and the proposals themselves.

Verb-first, keyword-only, the acting user first, one transaction with its audit record. Registry changes need
"model.manage" (admins) or the console operator (`by=None` inside a `cli` audit context, as account commands
do); running pre-labeling needs "project.manage" on the project. A model import is checked completely before
anything is written (signature by an enrolled key over the exact manifest bytes, the file's SHA-256 against the
signed manifest, the file opened as ONNX, the manifest's input against the graph's, the label against the
policy): a refusal names what was wrong and leaves nothing registered, and is itself on the record.

Proposals are written per task in one transaction with the task's `JobTask` row and one audit record, so a job
killed at any point resumes by skipping the tasks already marked, and never proposes twice for one task.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import onnxruntime as ort
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from appliance.access.decision import decide
from appliance.access.denial import deny
from appliance.access.labels import compartment_marking, dominates
from appliance.access.policy import get_policy
from appliance.accounts.models import User
from appliance.auditlog.context import current
from appliance.auditlog.recorder import record, record_on_its_own
from appliance.inference import conf
from appliance.inference.decoders import Proposal, check_params
from appliance.inference.manifest import GraphInput, ManifestError, check_graph, parse_manifest
from appliance.inference.models import (
    DEFAULT_MIN_CONFIDENCE,
    FINISHED_STATES,
    Job,
    JobState,
    JobTask,
    ModelState,
    PrelabelSettings,
    RegisteredModel,
    TrustedKey,
)
from appliance.inference.signing import (
    SignatureError,
    key_id,
    load_public_pem,
    parse_signature,
    public_from_raw,
    raw_public,
    verify,
)
from appliance.labeling.geometry import GeometryError, validate_geometry
from appliance.labeling.models import Annotation, AnnotationRevision, Project, Source, Task, TaskState
from appliance.labeling.schema import SchemaError, class_of, validate_attributes
from appliance.vault import blobs
from appliance.vault.actions import create_data_key
from appliance.vault.stream import BlobIdentity

MODEL = "model"
JOB = "prelabel_job"
MANAGE = "model.manage"
RUN = "project.manage"


class InferenceError(ValueError):
    """A request the data refuses; `field` names the input at fault so an API can answer 400."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class ModelRefused(InferenceError):
    """A model import refused: unsigned, altered, unknown key, not ONNX, or a manifest that does not fit."""


class JobConflict(InferenceError):
    """The job is not in a state that allows the request (answered 409)."""


def model_identity(model_ref: str) -> BlobIdentity:
    """A model file's blob identity: bound into its encryption, so it decrypts only as this model's file."""
    return BlobIdentity(dataset="models", item=model_ref, kind="onnx")


def _authorize_registry(by: User | None, object_id: str) -> None:
    if by is None:
        context = current()
        if context.component != "cli" or not context.actor:
            raise RuntimeError("a registry change without an acting user must run in a console audit context")
        return
    decision = decide(by, MANAGE)
    if not decision:
        raise deny(permission=MANAGE, gate=decision.gate, object_type=MODEL, object_id=object_id)


def _authorize_project(by: User, project: Project) -> None:
    decision = decide(by, RUN, project)
    if not decision:
        raise deny(permission=RUN, gate=decision.gate, object_type="project", object_id=str(project.pk))


# --- trusted keys -------------------------------------------------------------------------------------------------


def trust_key(by: User | None, *, name: str, public_pem: bytes) -> TrustedKey:
    """Enrol a model-signing public key; models signed by it can then be imported. Idempotent per key."""
    _authorize_registry(by, "key")
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 100:
        raise InferenceError("a trusted key needs a name of 1 to 100 characters", field="name")
    try:
        public = load_public_pem(public_pem)
    except SignatureError as exc:
        raise InferenceError(str(exc), field="public_key") from exc
    ident = key_id(public)
    existing = TrustedKey.objects.filter(key_id=ident).first()
    if existing is not None and existing.revoked_at is None:
        return existing
    with transaction.atomic():
        if existing is not None:
            TrustedKey.objects.filter(pk=existing.pk).update(revoked_at=None, name=cleaned)
            existing.refresh_from_db()
            trusted = existing
        else:
            trusted = TrustedKey.objects.create(key_id=ident, name=cleaned, public_key=raw_public(public))
        record(action="model.key.trust", object_type="model_key", object_id=ident, details={"name": cleaned})
    return trusted


# --- model import and retirement ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    manifest: Any
    signer: TrustedKey
    level: str
    marking: str


def _graph_inputs(model: bytes) -> list[GraphInput]:
    try:
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for every kind of bad file
        raise ModelRefused(f"the model file is not a valid ONNX model ({type(exc).__name__})", field="model") from exc
    return [
        GraphInput(name=i.name, shape=tuple(d if isinstance(d, int) else None for d in i.shape))
        for i in session.get_inputs()
    ]


def _check_label(level: str, compartments: Iterable[str]) -> tuple[str, str]:
    classification = get_policy().classification
    if level not in {known.name for known in classification.levels}:
        known = ", ".join(known.name for known in classification.levels)
        raise ModelRefused(f"unknown classification {level!r} (the policy defines: {known})", field="classification")
    wanted = sorted(set(compartments))
    unknown = [name for name in wanted if name not in classification.compartments]
    if unknown:
        raise ModelRefused(f"unknown compartment(s): {', '.join(unknown)}", field="compartments")
    return level, compartment_marking(wanted)


def check_model(
    *, manifest: bytes, signature: bytes | None, model: bytes, classification: str, compartments: Iterable[str]
) -> Checked:
    """Every check an import makes, in order, before anything is written; `ModelRefused` names the first fault."""
    if not signature:
        raise ModelRefused("the model is unsigned: a detached signature by an enrolled key is required", field="sig")
    try:
        detached = parse_signature(signature)
    except SignatureError as exc:
        raise ModelRefused(str(exc), field="signature") from exc
    signer = TrustedKey.objects.filter(key_id=detached.key_id, revoked_at__isnull=True).first()
    if signer is None:
        raise ModelRefused(
            f"the manifest is signed by key {detached.key_id}, which this site has not enrolled (models trust-key)",
            field="signature",
        )
    try:
        verify(public_from_raw(bytes(signer.public_key)), detached, manifest)
    except SignatureError as exc:
        raise ModelRefused(f"{exc}: the manifest was altered or signed by another key", field="signature") from exc
    try:
        parsed = parse_manifest(manifest)
    except ManifestError as exc:
        raise ModelRefused(str(exc), field="manifest") from exc
    digest = hashlib.sha256(model).hexdigest()
    if digest != parsed.sha256 or len(model) != parsed.size:
        raise ModelRefused(
            f"the model file's SHA-256 {digest[:16]}... ({len(model)} bytes) is not the signed manifest's "
            f"{parsed.sha256[:16]}... ({parsed.size} bytes): the file was modified",
            field="model",
        )
    try:
        check_params(parsed)
        check_graph(parsed, _graph_inputs(model))
    except ManifestError as exc:
        raise ModelRefused(str(exc), field="manifest") from exc
    level, marking = _check_label(classification, compartments)
    if RegisteredModel.objects.filter(name=parsed.name, version=parsed.version).exists():
        raise ModelRefused(f"model {parsed.ref} is already registered", field="manifest")
    return Checked(parsed, signer, level, marking)


def import_model(
    by: User | None,
    *,
    manifest: bytes,
    signature: bytes | None,
    model: bytes,
    classification: str,
    compartments: Sequence[str] = (),
) -> RegisteredModel:
    """Register a signed model, its file encrypted under a data key of its own; refusals are recorded too."""
    _authorize_registry(by, "import")
    try:
        checked = check_model(
            manifest=manifest,
            signature=signature,
            model=model,
            classification=classification,
            compartments=compartments,
        )
    except ModelRefused as exc:
        record_on_its_own(
            action="model.import", outcome="error", object_type=MODEL, details={"refused": str(exc), "field": exc.field}
        )
        raise
    parsed = checked.manifest
    key = create_data_key(purpose=f"model:{parsed.ref}")
    stored = blobs.put(key=key, identity=model_identity(parsed.ref), chunks=[model])
    try:
        with transaction.atomic():
            row = RegisteredModel.objects.create(
                name=parsed.name,
                version=parsed.version,
                task=parsed.task,
                decoder=parsed.decoder,
                classes=list(parsed.classes),
                manifest=parsed.raw,
                sha256=parsed.sha256,
                size=parsed.size,
                licence=parsed.licence,
                signed_by=checked.signer,
                data_key=key,
                blob_id=stored.blob_id,
                classification=checked.level,
                compartments=checked.marking,
            )
            record(
                action="model.import",
                object_type=MODEL,
                object_id=row.pk,
                label=row.access_label().banner(),
                details={
                    "model": parsed.ref,
                    "task": parsed.task,
                    "decoder": parsed.decoder,
                    "sha256": parsed.sha256,
                    "signed_by": checked.signer.key_id,
                    "licence": parsed.licence,
                    "classes": list(parsed.classes),
                },
            )
    except IntegrityError as exc:
        blobs.delete(blob_id=stored.blob_id)
        raise ModelRefused(f"model {parsed.ref} is already registered", field="manifest") from exc
    except BaseException:
        blobs.delete(blob_id=stored.blob_id)
        raise
    return row


def retire_model(by: User | None, *, model: RegisteredModel, reason: str) -> RegisteredModel:
    """Stop a model from running; its row and file stay, as the record of what proposed which annotation."""
    _authorize_registry(by, str(model.pk))
    if not reason.strip():
        raise InferenceError("retiring a model needs a reason for the record", field="reason")
    with transaction.atomic():
        row = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        if row.state == ModelState.RETIRED:
            raise JobConflict(f"model {row.ref} is already retired", field="model")
        row.state = ModelState.RETIRED
        row.retired_at = timezone.now()
        row.save(update_fields=["state", "retired_at"])
        record(
            action="model.retire",
            object_type=MODEL,
            object_id=row.pk,
            label=row.access_label().banner(),
            details={"model": row.ref, "reason": reason.strip()[:500]},
        )
    return row


# --- per-project settings -----------------------------------------------------------------------------------------


def min_confidence_of(project: Project) -> float:
    settings_row = PrelabelSettings.objects.filter(project=project).first()
    return settings_row.min_confidence if settings_row else DEFAULT_MIN_CONFIDENCE


def _check_confidence(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InferenceError("min_confidence must be a number from 0 to 1", field="min_confidence")
    return float(value)


def set_min_confidence(by: User, *, project: Project, min_confidence: Any) -> PrelabelSettings:
    """The project's confidence threshold: proposals below it are never stored."""
    _authorize_project(by, project)
    value = _check_confidence(min_confidence)
    with transaction.atomic():
        row, created = PrelabelSettings.objects.select_for_update().get_or_create(
            project=project, defaults={"min_confidence": value}
        )
        if not created:
            row.min_confidence = value
            row.version += 1
            row.save(update_fields=["min_confidence", "version"])
        record(
            action="prelabel.settings",
            object_type="project",
            object_id=project.pk,
            label=project.access_label().banner(),
            details={"min_confidence_percent": round(value * 100), "version": row.version},
        )
    return row


# --- jobs ---------------------------------------------------------------------------------------------------------


def may_run_on(model: RegisteredModel, project: Project) -> bool:
    """A model runs only on data whose label its own label dominates (the project's label bounds its data's)."""
    label = model.access_label()
    return dominates(
        clearance=label.level,
        held=label.compartments,
        label=project.access_label(),
        classification=get_policy().classification,
    )


def _check_model_for(model: RegisteredModel, project: Project) -> None:
    if model.state != ModelState.ACTIVE:
        raise InferenceError(f"model {model.ref} is retired", field="model")
    if not may_run_on(model, project):
        raise InferenceError(
            f"model {model.ref} is cleared for {model.access_label().banner()} and may not see this project's data",
            field="model",
        )


def start_job(by: User, *, project: Project, model: RegisteredModel, min_confidence: Any = None) -> Job:
    """A pre-labeling job over the project's new tasks; the caller enqueues it (see `jobs.enqueue_job`)."""
    _authorize_project(by, project)
    _check_model_for(model, project)
    threshold = min_confidence_of(project) if min_confidence is None else _check_confidence(min_confidence)
    with transaction.atomic():
        total = Task.objects.filter(project=project, state=TaskState.NEW).count()
        job = Job.objects.create(project=project, model=model, started_by=by, min_confidence=threshold, total=total)
        record(
            action="prelabel.job.start",
            object_type=JOB,
            object_id=job.pk,
            label=project.access_label().banner(),
            details={
                "project": project.pk,
                "model": model.ref,
                "tasks": total,
                "min_confidence_percent": round(threshold * 100),
            },
        )
    return job


def cancel_job(by: User, *, job: Job) -> Job:
    """Stop a job: a queued one at once, a running one after the task in hand (its worker sees the request)."""
    _authorize_project(by, job.project)
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.state in FINISHED_STATES:
            raise JobConflict(f"the job is already {locked.state}", field="job")
        was = locked.state
        locked.state = JobState.CANCELLED if was == JobState.QUEUED else JobState.CANCELLING
        if locked.state == JobState.CANCELLED:
            locked.finished_at = timezone.now()
        locked.save(update_fields=["state", "finished_at"])
        record(
            action="prelabel.job.cancel",
            object_type=JOB,
            object_id=locked.pk,
            label=locked.project.access_label().banner(),
            details={"from": was, "to": locked.state, "done": locked.done, "total": locked.total},
        )
    return locked


def resume_job(by: User, *, job: Job) -> Job:
    """Queue a job again after its worker died (or it failed or was cancelled): tasks already done are skipped."""
    _authorize_project(by, job.project)
    _check_model_for(job.model, job.project)
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        silence = timedelta(seconds=conf.stale_seconds())
        alive = locked.heartbeat_at is not None and timezone.now() - locked.heartbeat_at < silence
        if locked.state == JobState.DONE:
            raise JobConflict("the job is done; start a new one to pre-label new tasks", field="job")
        if locked.state in (JobState.RUNNING, JobState.CANCELLING) and alive:
            raise JobConflict("the job's worker is still reporting progress", field="job")
        was = locked.state
        locked.state = JobState.QUEUED
        locked.finished_at = None
        locked.error = ""
        locked.save(update_fields=["state", "finished_at", "error"])
        record(
            action="prelabel.job.resume",
            object_type=JOB,
            object_id=locked.pk,
            label=locked.project.access_label().banner(),
            details={"from": was, "done": locked.done, "total": locked.total},
        )
    return locked


def _usable(proposal: Proposal, task: Task, schema: Any, min_confidence: float) -> dict[str, Any] | None:
    """The annotation fields for a proposal the project can take, or None: under the threshold, a class the
    schema lacks (or one with required attributes a model cannot fill), or a shape outside the image."""
    if proposal.confidence < min_confidence or schema is None:
        return None
    definition = class_of(schema.schema, proposal.class_name)
    if definition is None:
        return None
    try:
        attributes = validate_attributes(definition, {})
        geometry = validate_geometry(proposal.kind, proposal.geometry, width=task.item.width, height=task.item.height)
    except (SchemaError, GeometryError):
        return None
    return {
        "kind": proposal.kind,
        "geometry": geometry,
        "class_name": definition["name"],
        "attributes": attributes,
        "schema_version": schema,
        "confidence": round(min(1.0, max(0.0, proposal.confidence)), 4),
    }


def store_proposals(*, job: Job, task: Task, proposals: Sequence[Proposal]) -> int:
    """Write one task's proposals (source=model, revision 1 each) with its `JobTask` row and its audit record,
    in one transaction; returns how many were stored. A task already done for this job, no longer new, held by
    an analyst, or already proposed for by this model is marked done with nothing stored."""
    model_ref = job.model.ref
    now = timezone.now()
    with transaction.atomic():
        locked = Task.objects.select_for_update().select_related("item__dataset", "project").get(pk=task.pk)
        if JobTask.objects.filter(job=job, task=locked).exists():
            return 0
        schema = locked.project.current_schema()
        held = locked.lock_holder_id is not None and locked.locked_until is not None and locked.locked_until > now
        proposed_before = Annotation.objects.filter(task=locked, model_ref=model_ref).exists()
        skip = locked.state != TaskState.NEW or held or proposed_before
        rows = [] if skip else [v for p in proposals if (v := _usable(p, locked, schema, job.min_confidence))]
        by = job.started_by
        created = Annotation.objects.bulk_create(
            [
                Annotation(
                    task=locked,
                    source=Source.MODEL,
                    model_ref=model_ref,
                    created_by=by,
                    updated_by=by,
                    created_at=now,
                    updated_at=now,
                    **values,
                )
                for values in rows
            ]
        )
        AnnotationRevision.objects.bulk_create(
            [
                AnnotationRevision(annotation=a, version=1, before=None, after=a.snapshot(), actor=by, time=now)
                for a in created
            ]
        )
        if created:
            Task.objects.filter(pk=locked.pk).update(version=F("version") + 1, updated_at=now)
        JobTask.objects.create(job=job, task=locked, proposals=len(created), skipped=skip, finished_at=now)
        Job.objects.filter(pk=job.pk).update(
            done=F("done") + 1,
            skipped=F("skipped") + (1 if skip else 0),
            proposals=F("proposals") + len(created),
            heartbeat_at=now,
        )
        record(
            action="prelabel.proposals",
            object_type="task",
            object_id=locked.pk,
            label=locked.item.access_label().banner(),
            details={
                "job": job.pk,
                "project": locked.project_id,
                "model": model_ref,
                "created": [a.pk for a in created],
                "offered": len(proposals),
                "skipped": skip,
            },
        )
    return len(created)
