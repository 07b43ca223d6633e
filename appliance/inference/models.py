"""The model registry, pre-labeling jobs and the per-project pre-labeling settings. No writes or checks here.

A `RegisteredModel` is a signed model file stored as a vault blob under its own data key, with the manifest it
was signed with and a classification label: it may run only on data whose label its own label dominates (a model
cleared for SECRET//ALPHA never sees TOP SECRET or BRAVO imagery), and everything it proposes is stored on the
task, whose label is its item's, so outputs inherit the input's label. Retired models stay as rows (the record
of what proposed which annotation) but can no longer run.

A `Job` is one pre-labeling run over a project's tasks; `JobTask` marks a task done for a job in the same
transaction that writes that task's proposals, which is what makes a killed worker's job resumable without
duplicates: a resumed run skips every task with a row here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from appliance.access.labels import Label, parse_marking
from appliance.labeling.models import Project, Task

DEFAULT_MIN_CONFIDENCE = 0.5


class TrustedKey(models.Model):
    """A model-signing public key the site has enrolled (Ed25519, raw 32 bytes); `key_id` is what signatures name."""

    key_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    public_key = models.BinaryField(max_length=32)
    enrolled_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"


class ModelState(models.TextChoices):
    ACTIVE = "active"
    RETIRED = "retired"


class RegisteredModel(models.Model):
    """One imported model version. `manifest` is the signed JSON as imported; `blob_id` is its encrypted file."""

    name = models.CharField(max_length=80)
    version = models.CharField(max_length=40)
    task = models.CharField(max_length=32)
    decoder = models.CharField(max_length=32)
    classes = models.JSONField()
    manifest = models.JSONField()
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    licence = models.CharField(max_length=100)
    signed_by = models.ForeignKey(TrustedKey, on_delete=models.PROTECT, related_name="models")
    data_key = models.OneToOneField("vault.DataKey", on_delete=models.PROTECT, related_name="model")
    blob_id = models.CharField(max_length=32)
    classification = models.CharField(max_length=64)
    compartments = models.CharField(max_length=512, default="/")
    state = models.CharField(max_length=16, choices=ModelState.choices, default=ModelState.ACTIVE)
    imported_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="inference_model_unique_version")]

    def __str__(self) -> str:
        return self.ref

    @property
    def ref(self) -> str:
        """How an annotation names the model that proposed it (`Annotation.model_ref`)."""
        return f"{self.name}@{self.version}"

    def access_label(self) -> Label:
        """What the model is cleared for: the data it may run on must be dominated by this."""
        return Label(level=self.classification, compartments=parse_marking(self.compartments))


class PrelabelSettings(models.Model):
    """A project's pre-labeling settings: proposals under `min_confidence` are not stored."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="prelabel_settings")
    min_confidence = models.FloatField(default=DEFAULT_MIN_CONFIDENCE)
    version = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.project_id}: >= {self.min_confidence}"


class JobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    DONE = "done"
    FAILED = "failed"


FINISHED_STATES = (JobState.CANCELLED, JobState.DONE, JobState.FAILED)


class Job(models.Model):
    """One pre-labeling run of one model over a project's new tasks. Progress is `done`/`total` tasks."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prelabel_jobs")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="jobs")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    min_confidence = models.FloatField()
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    proposals = models.PositiveIntegerField(default=0)
    provider = models.CharField(max_length=64, blank=True)
    busy_seconds = models.FloatField(default=0.0)  # wall time of finished runs, for the model's throughput
    run_started_done = models.PositiveIntegerField(default=0)  # `done` when the current run began, for its rate
    error = models.CharField(max_length=500, blank=True)
    task_result_id = models.CharField(max_length=64, blank=True)
    runs = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "id"], name="inference_job_project")]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.model_id} on {self.project_id}: {self.state})"

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def rate(self) -> float | None:
        """Tasks per second of the current (or last) run, once it has done any."""
        if self.started_at is None or self.heartbeat_at is None:
            return None
        seconds = (self.heartbeat_at - self.started_at).total_seconds()
        done = self.done - self.run_started_done
        return done / seconds if seconds > 0 and done > 0 else None

    def eta_seconds(self) -> int | None:
        rate = self.rate()
        if rate is None or self.finished:
            return None
        return round(max(0, self.total - self.done) / rate)


class JobTask(models.Model):
    """A task a job has finished with: written in the transaction that stores the task's proposals."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="finished_tasks")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="+")
    proposals = models.PositiveIntegerField(default=0)
    skipped = models.BooleanField(default=False)
    finished_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "task"]
        constraints = [models.UniqueConstraint(fields=["job", "task"], name="inference_jobtask_unique")]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.task_id}"
