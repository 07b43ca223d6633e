"""Exports, their release requests and the recipients they may be released to.

An export is a file in the vault (a zip of one format's files, a manifest and, optionally, the images) made from
one project. It carries the project's label, copied when it is made: nothing derived from the project is ever
labeled lower, and every gate on an export is the project's gate (its label, its members). Its blob is encrypted
under a data key of its own, so destroying that key shreds the export alone.

A release is the two-person step that lets an export leave: one person requests it for one enrolled recipient,
a different person approves it, and only then may it be downloaded, encrypted to the recipient's certificate
(CMS EnvelopedData) unless the policy lets the export's level go plain. No authorization or writes live here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from appliance.access.labels import Label, parse_marking
from appliance.labeling.models import Project


class ExportFormat(models.TextChoices):
    COCO = "coco", "COCO instances JSON"
    YOLO_DETECT = "yolo-detect", "YOLO detection"
    YOLO_OBB = "yolo-obb", "YOLO oriented boxes"
    YOLO_SEGMENT = "yolo-segment", "YOLO segmentation"
    VOC = "voc", "Pascal VOC XML"
    CVAT = "cvat", "CVAT for images 1.1 XML"


class ExportState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Export(models.Model):
    """One export of a project; `done`/`total` count annotations written, for the progress bar."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="exports")
    format = models.CharField(max_length=16, choices=ExportFormat.choices)
    include_images = models.BooleanField(default=False)
    classification = models.CharField(max_length=64)
    compartments = models.CharField(max_length=512, default="/")
    state = models.CharField(max_length=16, choices=ExportState.choices, default=ExportState.QUEUED)
    done = models.PositiveBigIntegerField(default=0)
    total = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    report = models.JSONField(default=dict, blank=True)
    data_key = models.OneToOneField(
        "vault.DataKey", on_delete=models.PROTECT, null=True, blank=True, related_name="export"
    )
    blob_id = models.CharField(max_length=32, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    task_result_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "id"], name="exchange_export_project")]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format} of project {self.project_id})"

    def access_label(self) -> Label:
        return Label(level=self.classification, compartments=parse_marking(self.compartments))

    @property
    def file_name(self) -> str:
        return f"export-{self.pk}-{self.format}.zip"


class Recipient(models.Model):
    """Someone outside the appliance an export may be released to, known by the X.509 certificate an admin
    enrolled; the file is encrypted to that certificate's public key."""

    name = models.CharField(max_length=100, unique=True)
    certificate_pem = models.TextField()
    fingerprint = models.CharField(max_length=64, unique=True)  # SHA-256 of the DER certificate, hex
    subject = models.CharField(max_length=500)
    not_after = models.DateTimeField()
    enrolled_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    enrolled_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ReleaseState(models.TextChoices):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"


class Release(models.Model):
    """A request to let one export leave, to one recipient (or plain, where policy allows), and its decision."""

    export = models.ForeignKey(Export, on_delete=models.PROTECT, related_name="releases")
    recipient = models.ForeignKey(Recipient, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    plain = models.BooleanField(default=False)
    reason = models.TextField(max_length=2000)
    state = models.CharField(max_length=16, choices=ReleaseState.choices, default=ReleaseState.REQUESTED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"release {self.pk} of export {self.export_id} ({self.state})"
