"""The export job on Django's tasks framework (database queue): claim, build into the vault, finish, all audited.

The run re-checks that the person who asked may still export the project (a clearance lowered or a membership
removed since stops it), then streams the zip from `exporting.build_export` into a blob under a data key of the
export's own. Progress (`done` of `total` annotations) is written every few thousand annotations so the page and
the CLI can show it; a failure records why, leaves no blob behind and marks the export failed.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.tasks import task
from django.utils import timezone

from appliance.access.decision import decide
from appliance.auditlog.context import AuditContext, audit_context
from appliance.auditlog.recorder import record
from appliance.exchange.exporting import Built, build_export
from appliance.exchange.models import Export, ExportState
from appliance.vault import blobs
from appliance.vault.actions import create_data_key
from appliance.vault.stream import BlobIdentity

PROGRESS_EVERY = 5000


def export_identity(export: Export) -> BlobIdentity:
    return BlobIdentity(dataset=f"export:{export.pk}", item=f"project:{export.project_id}", kind="export")


@task()
def run_export_job(export_id: int) -> dict[str, int | str]:
    """The worker's entry point."""
    export = execute_export(export_id)
    return {"state": export.state, "done": export.done, "total": export.total}


def _claim(export_id: int) -> Export | None:
    with transaction.atomic():
        export = Export.objects.select_for_update().select_related("project", "created_by").get(pk=export_id)
        if export.state != ExportState.QUEUED:
            return None
        export.state = ExportState.RUNNING
        export.save(update_fields=["state"])
    return export


def _finish(export: Export, *, state: str, error: str = "", **fields: object) -> None:
    with transaction.atomic():
        Export.objects.filter(pk=export.pk).update(state=state, error=error[:500], finished_at=timezone.now(), **fields)
        export.refresh_from_db()
        record(
            action="export.finish" if state == ExportState.DONE else "export.fail",
            outcome="ok" if state == ExportState.DONE else "error",
            object_type="export",
            object_id=export.pk,
            label=export.access_label().banner(),
            details={
                "project": export.project_id,
                "format": export.format,
                "sha256": export.sha256,
                "size": export.size,
                "annotations": export.done,
                "images_included": export.include_images,
                "dropped": export.report.get("dropped", {}),
                "error": error[:500],
            },
        )


def execute_export(export_id: int, *, report: Callable[[int, int], object] = lambda done, total: None) -> Export:
    """Build one queued export (a second run of a finished one does nothing); `report(done, total)` hears the
    same progress the page shows."""
    claimed = _claim(export_id)
    if claimed is None:
        return Export.objects.get(pk=export_id)
    export = claimed
    user = export.created_by
    context = AuditContext(component="worker", actor=user.get_username(), roles=list(user.roles))
    with audit_context(context):
        if not decide(user, "export.request", export.project):
            _finish(export, state=ExportState.FAILED, error="the requester may no longer export this project")
            return export
        built = Built()
        last = [0]

        def progress(state: Built) -> None:
            if state.annotations - last[0] >= PROGRESS_EVERY:
                last[0] = state.annotations
                Export.objects.filter(pk=export.pk).update(done=state.annotations)
                report(state.annotations, export.total)

        try:
            key = create_data_key(purpose=f"export:{export.pk}")
            Export.objects.filter(pk=export.pk).update(data_key=key)
            stored = blobs.put(
                key=key, identity=export_identity(export), chunks=build_export(export, progress=progress, built=built)
            )
        except Exception as exc:
            _finish(export, state=ExportState.FAILED, error=f"{type(exc).__name__}: {exc}")
            raise
        summary = {
            "dropped": dict(sorted(built.drops.counts.items())),
            "dropped_examples": [
                {"file": entry.file_name, "what": entry.what, "reason": entry.reason}
                for entry in built.drops.entries[:50]
            ],
            "images": built.frames,
            "image_files": built.images,
        }
        _finish(
            export,
            state=ExportState.DONE,
            blob_id=stored.blob_id,
            sha256=stored.sha256,
            size=stored.plaintext_size,
            done=built.annotations,
            report=summary,
        )
    return export


def read_export(export: Export) -> bytes:
    """The export's plaintext zip, checked against the digest recorded when it was built (in memory)."""
    if export.data_key is None or not export.blob_id:
        raise ValueError(f"export {export.pk} has no file")
    return blobs.read(
        key=export.data_key, identity=export_identity(export), blob_id=export.blob_id, expected_sha256=export.sha256
    )
