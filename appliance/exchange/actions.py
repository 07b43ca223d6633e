"""Every write of the exchange app: verb-first, keyword-only, the acting user first, one transaction with its
audit record.

Gates are the project's: an export carries the project's label, so whoever may not see the project (clearance,
compartments, membership) may not make, request, approve or download its exports, and is answered with the
audited 404 like any hidden object. Separation of duties is read from the policy's `not_on_own_work`; whether a
level needs a second person, and whether it may leave unencrypted, from the `[release]` table (`policy.py`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import IO, Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from appliance.access.decision import decide
from appliance.access.denial import deny
from appliance.access.policy import get_policy
from appliance.accounts.models import User
from appliance.auditlog.recorder import record, record_on_its_own
from appliance.exchange import certificates
from appliance.exchange.importing import ImportRefused, Plan, plan_import
from appliance.exchange.jobs import read_export, run_export_job
from appliance.exchange.models import Export, ExportFormat, ExportState, Recipient, Release, ReleaseState
from appliance.exchange.policy import rule_for
from appliance.labeling.models import Annotation, AnnotationRevision, Project, Task, TaskState

EXPORT = "export"
RELEASE = "release"
RECIPIENT = "recipient"
REASON_MAX_LENGTH = 2000


class ExchangeError(ValueError):
    """A request the data refuses (answered 400); `field` names the input at fault."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class Conflict(ExchangeError):
    """The object is not in a state that allows the request, or changed meanwhile (answered 409)."""


class OwnRequest(ExchangeError):
    """The policy forbids acting on one's own request (answered 403)."""


def authorize_project(by: User, permission: str, project: Project, object_type: str, object_id: Any) -> None:
    decision = decide(by, permission, project)
    if not decision:
        raise deny(permission=permission, gate=decision.gate, object_type=object_type, object_id=str(object_id))


# --- exports ----------------------------------------------------------------------------------------------------


def create_export(by: User, *, project: Project, format: str, include_images: bool = False) -> Export:
    """Queue an export of the project's live annotations in `format`; the worker builds it into the vault.

    It takes the project's label, never a lower one. Images are included only when asked, decrypted in memory.
    """
    authorize_project(by, "export.request", project, "project", project.pk)
    if format not in ExportFormat.values:
        raise ExchangeError(f"unknown format {format!r}; one of {', '.join(ExportFormat.values)}", field="format")
    if project.current_schema() is None:
        raise ExchangeError("the project has no schema, so there are no classes to export", field="project")
    total = Annotation.objects.filter(task__project=project, deleted=False).count()
    with transaction.atomic():
        export = Export.objects.create(
            project=project,
            format=format,
            include_images=include_images,
            classification=project.classification,
            compartments=project.compartments,
            total=total,
            created_by=by,
        )
        record(
            action="export.create",
            object_type=EXPORT,
            object_id=export.pk,
            label=export.access_label().banner(),
            details={"project": project.pk, "format": format, "include_images": include_images, "total": total},
        )
        transaction.on_commit(lambda: _enqueue(export))
    return export


def _enqueue(export: Export) -> None:
    result = run_export_job.enqueue(export.pk)
    Export.objects.filter(pk=export.pk).update(task_result_id=str(result.id))


# --- releases ---------------------------------------------------------------------------------------------------


def _release_label(export: Export) -> str:
    return export.access_label().banner()


def request_release(
    by: User, *, export: Export, recipient: Recipient | None, plain: bool = False, reason: str
) -> Release:
    """Ask for `export` to leave the appliance, encrypted to `recipient` (or plain, where the level allows it).

    Where the policy's rule for the export's level does not ask for a second person, the request is approved as
    it is made (and the record says so).
    """
    authorize_project(by, "export.request", export.project, EXPORT, export.pk)
    if export.state != ExportState.DONE:
        raise Conflict(f"export {export.pk} is {export.state}; only a finished export can be released")
    cleaned = reason.strip()
    if not cleaned or len(cleaned) > REASON_MAX_LENGTH:
        raise ExchangeError(f"give a reason of 1 to {REASON_MAX_LENGTH} characters", field="reason")
    rule = rule_for(export.classification)
    if plain and not rule.plain:
        raise ExchangeError(f"{export.classification} exports may leave only encrypted to a recipient", field="plain")
    if not plain and recipient is None:
        raise ExchangeError("choose an enrolled recipient", field="recipient")
    if recipient is not None and (recipient.revoked_at is not None or recipient.not_after <= timezone.now()):
        raise ExchangeError(
            f"recipient {recipient.name!r} is revoked or their certificate has expired", field="recipient"
        )
    now = timezone.now()
    with transaction.atomic():
        release = Release.objects.create(
            export=export,
            recipient=None if plain else recipient,
            plain=plain,
            reason=cleaned,
            requested_by=by,
            requested_at=now,
        )
        if not rule.two_person:
            Release.objects.filter(pk=release.pk).update(state=ReleaseState.APPROVED, decided_at=now)
            release.refresh_from_db()
        record(
            action="export.release.request",
            object_type=RELEASE,
            object_id=release.pk,
            label=_release_label(export),
            details={
                "export": export.pk,
                "sha256": export.sha256,
                "recipient": recipient.fingerprint if recipient is not None and not plain else None,
                "plain": plain,
                "reason": cleaned,
                "two_person": rule.two_person,
            },
        )
    return release


def decide_release(by: User, *, release: Release, approve: bool, version: int) -> Release:
    """Approve or reject a request. Never the requester's own (policy `not_on_own_work`); a stale `version`
    (somebody decided first) is a conflict."""
    export = release.export
    authorize_project(by, "export.approve", export.project, RELEASE, release.pk)
    if "export.approve" in get_policy().not_on_own_work and release.requested_by_id == by.pk:
        record_on_its_own(
            action="export.release.decide",
            outcome="denied",
            object_type=RELEASE,
            object_id=release.pk,
            label=_release_label(export),
            details={"reason": "own request", "approve": approve},
        )
        raise OwnRequest("nobody may decide their own export request", field="release")
    now = timezone.now()
    with transaction.atomic():
        locked = Release.objects.select_for_update().get(pk=release.pk)
        if locked.version != version:
            raise Conflict(f"the request is at version {locked.version}, not {version}")
        if locked.state != ReleaseState.REQUESTED:
            raise Conflict(f"the request is already {locked.state}")
        state = ReleaseState.APPROVED if approve else ReleaseState.REJECTED
        Release.objects.filter(pk=locked.pk).update(
            state=state, decided_by=by, decided_at=now, version=F("version") + 1
        )
        locked.refresh_from_db()
        record(
            action=f"export.release.{'approve' if approve else 'reject'}",
            object_type=RELEASE,
            object_id=locked.pk,
            label=_release_label(export),
            details={"export": export.pk, "sha256": export.sha256, "requested_by": release.requested_by.get_username()},
        )
    return locked


# --- imports ----------------------------------------------------------------------------------------------------


def import_annotations(
    by: User,
    *,
    project: Project,
    format: str,
    stream: IO[bytes],
    file_name: str,
    match: str = "name",
    mode: str = "add",
    dry_run: bool = False,
) -> dict[str, Any]:
    """Import a file's annotations into the project's tasks, or with `dry_run` only say what would change.

    Everything is read and checked first (`importing.plan_import`); then, in one transaction, each shape becomes
    an annotation with its first revision (and, replacing, each live annotation of a touched task is deleted with
    its revision), each touched task's version moves on (an analyst's open editor then gets 409, not an
    overwrite), and one audit record names the file's SHA-256 and the counts. A refusal writes nothing.
    """
    authorize_project(by, "project.manage", project, "project", project.pk)
    for dataset in project.datasets.all():
        decision = decide(by, "dataset.view", dataset)
        if not decision:
            raise deny(permission="dataset.view", gate=decision.gate, object_type="dataset", object_id=str(dataset.pk))
    try:
        plan = plan_import(format, stream, file_name=file_name, project=project, match=match, mode=mode)
        if mode == "replace":
            task_ids = [planned.task.pk for planned in plan.tasks]
            plan.replaced = Annotation.objects.filter(task_id__in=task_ids, deleted=False).count()
        summary = {"format": format, "file_name": file_name, "match": match, "mode": mode, "dry_run": dry_run}
        summary |= plan.summary()
        if dry_run:
            return summary
        _apply(by, project=project, plan=plan, summary=summary)
    except ImportRefused as exc:
        raise ExchangeError(str(exc), field="file") from exc
    return summary


IMPORT_BATCH = 2000


def _replace_live(by: User, *, task_ids: list[int], now: Any) -> None:
    """Delete the live annotations of the touched tasks, each with its revision, a batch at a time."""
    live = (
        Annotation.objects.select_for_update(of=("self",))
        .filter(task_id__in=task_ids, deleted=False)
        .select_related("schema_version")
    )
    batch: list[Annotation] = []
    revisions: list[AnnotationRevision] = []
    for annotation in live.order_by("id").iterator(IMPORT_BATCH):
        before = annotation.snapshot()
        annotation.version += 1
        annotation.deleted = True
        annotation.updated_by = by
        annotation.updated_at = now
        batch.append(annotation)
        revisions.append(
            AnnotationRevision(
                annotation=annotation, version=annotation.version, before=before, after=None, actor=by, time=now
            )
        )
        if len(batch) >= IMPORT_BATCH:
            Annotation.objects.bulk_update(batch, ["version", "deleted", "updated_by", "updated_at"])
            AnnotationRevision.objects.bulk_create(revisions)
            batch, revisions = [], []
    if batch:
        Annotation.objects.bulk_update(batch, ["version", "deleted", "updated_by", "updated_at"])
        AnnotationRevision.objects.bulk_create(revisions)


def _apply(by: User, *, project: Project, plan: Plan, summary: dict[str, Any]) -> None:
    """Write the plan in one transaction, the shapes a batch at a time as `plan.shapes()` yields them again
    (checked again); the upload is then proven unchanged since it was checked, else everything rolls back."""
    schema = project.current_schema()
    now = timezone.now()
    task_ids = [planned.task.pk for planned in plan.tasks]
    created = 0

    def write(batch: list[Annotation]) -> int:
        made = Annotation.objects.bulk_create(batch)
        AnnotationRevision.objects.bulk_create(
            [
                AnnotationRevision(annotation=a, version=1, before=None, after=a.snapshot(), actor=by, time=now)
                for a in made
            ]
        )
        return len(made)

    with transaction.atomic():
        locked = dict(Task.objects.select_for_update().filter(pk__in=task_ids).values_list("pk", "version"))
        for planned in plan.tasks:
            if locked[planned.task.pk] != planned.task.version:
                raise Conflict(f"task {planned.task.pk} changed while the import was checked; run it again")
        if summary["mode"] == "replace":
            _replace_live(by, task_ids=task_ids, now=now)
        batch: list[Annotation] = []
        for task_id, shape in plan.shapes():
            batch.append(
                Annotation(
                    task_id=task_id,
                    schema_version=schema,
                    created_by=by,
                    updated_by=by,
                    created_at=now,
                    updated_at=now,
                    **shape,
                )
            )
            if len(batch) >= IMPORT_BATCH:
                created += write(batch)
                batch = []
        if batch:
            created += write(batch)
        plan.check_unchanged()
        if created != plan.created:
            raise Conflict(f"the file gave {created} shapes on writing, not the {plan.created} checked; run it again")
        Task.objects.filter(pk__in=task_ids, state=TaskState.NEW).update(state=TaskState.IN_PROGRESS)
        Task.objects.filter(pk__in=task_ids).update(version=F("version") + 1, updated_at=now)
        record(
            action="annotation.import",
            object_type="project",
            object_id=project.pk,
            label=project.access_label().banner(),
            details={
                "format": summary["format"],
                "file_name": summary["file_name"][:200],
                "sha256": plan.sha256,
                "size": plan.size,
                "match": summary["match"],
                "mode": summary["mode"],
                "images": len(plan.tasks),
                "created": created,
                "deleted": plan.replaced,
                "dropped": summary["dropped"],
            },
        )


# --- recipients and delivery ------------------------------------------------------------------------------------

NAME_MAX_LENGTH = 100


def enroll_recipient(by: User, *, name: str, certificate_pem: str) -> Recipient:
    """Enroll someone exports may be released to, by their X.509 certificate (RSA: what CMS key transport with
    `cryptography`'s envelope builder takes). Only the certificate is kept; there is no private key here."""
    decision = decide(by, "key.manage")
    if not decision:
        raise deny(permission="key.manage", gate=decision.gate, object_type=RECIPIENT)
    cleaned = name.strip()
    if not cleaned or len(cleaned) > NAME_MAX_LENGTH:
        raise ExchangeError(f"a recipient needs a name of 1 to {NAME_MAX_LENGTH} characters", field="name")
    try:
        certificate = certificates.parse(certificate_pem)
    except certificates.CertificateError as exc:
        raise ExchangeError(str(exc), field="certificate") from exc
    if Recipient.objects.filter(name=cleaned).exists():
        raise ExchangeError(f"a recipient named {cleaned!r} already exists", field="name")
    if Recipient.objects.filter(fingerprint=certificate.fingerprint).exists():
        raise ExchangeError("this certificate is already enrolled", field="certificate")
    with transaction.atomic():
        recipient = Recipient.objects.create(
            name=cleaned,
            certificate_pem=certificate.pem,
            fingerprint=certificate.fingerprint,
            subject=certificate.subject[:500],
            not_after=certificate.not_after,
            enrolled_by=by,
        )
        record(
            action="export.recipient.enroll",
            object_type=RECIPIENT,
            object_id=recipient.pk,
            details={
                "name": cleaned,
                "fingerprint": certificate.fingerprint,
                "subject": recipient.subject,
                "not_after": certificate.not_after.isoformat(),
            },
        )
    return recipient


def revoke_recipient(by: User, *, recipient: Recipient) -> Recipient:
    decision = decide(by, "key.manage")
    if not decision:
        raise deny(permission="key.manage", gate=decision.gate, object_type=RECIPIENT, object_id=str(recipient.pk))
    with transaction.atomic():
        Recipient.objects.filter(pk=recipient.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        recipient.refresh_from_db()
        record(
            action="export.recipient.revoke",
            object_type=RECIPIENT,
            object_id=recipient.pk,
            details={"name": recipient.name, "fingerprint": recipient.fingerprint},
        )
    return recipient


@dataclass(frozen=True)
class Delivery:
    data: bytes
    file_name: str
    content_type: str
    sha256: str


def download_release(by: User, *, release: Release) -> Delivery:
    """The approved export as it leaves: CMS EnvelopedData (DER, AES-256-CBC, RSA key transport) to the approved
    recipient's certificate, or the plain zip where the level's rule allows it and plain was approved.

    Only the person who asked may take it, and only while they still pass the project's gates. The delivered
    file's SHA-256 (and the export's) is on the record before a byte is returned.
    """
    export = release.export
    authorize_project(by, "export.request", export.project, RELEASE, release.pk)
    if release.requested_by_id != by.pk:
        raise deny(permission="export.request", gate="membership", object_type=RELEASE, object_id=str(release.pk))
    if release.state != ReleaseState.APPROVED:
        raise Conflict(f"the request is {release.state}; only an approved request can be downloaded")
    rule = rule_for(export.classification)
    if release.plain and not rule.plain:
        raise Conflict(f"the policy no longer lets {export.classification} exports leave unencrypted")
    recipient = release.recipient
    if not release.plain and (recipient is None or recipient.revoked_at is not None):
        raise Conflict("the recipient has been revoked since the request was approved")
    plaintext = read_export(export)
    if release.plain or recipient is None:
        data, name, content_type = plaintext, export.file_name, "application/zip"
        fingerprint = None
    else:
        data = certificates.envelope(plaintext, recipient.certificate_pem)
        name, content_type = export.file_name + ".p7m", "application/pkcs7-mime"
        fingerprint = recipient.fingerprint
    digest = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        Release.objects.filter(pk=release.pk).update(downloads=F("downloads") + 1)
        record(
            action="export.release.download",
            object_type=RELEASE,
            object_id=release.pk,
            label=_release_label(export),
            details={
                "export": export.pk,
                "export_sha256": export.sha256,
                "sha256": digest,
                "size": len(data),
                "encrypted_to": fingerprint,
                "plain": release.plain,
            },
        )
    return Delivery(data=data, file_name=name, content_type=content_type, sha256=digest)
