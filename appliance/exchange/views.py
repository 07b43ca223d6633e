"""Exchange pages: the projects a user may export, and one project's exports, imports and release requests.

Thin like every page: reads come from the selectors, writes from the actions, and each page raises its banner to
the project's label. Forms post as plain HTML; the progress module only polls the JSON API to move the bars.
"""

from __future__ import annotations

import math

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from appliance.access.decision import decide, visible
from appliance.access.markers import requires
from appliance.exchange import actions
from appliance.exchange.importing import FORMATS, MATCH_BY, MODES
from appliance.exchange.models import ExportFormat, Recipient
from appliance.exchange.policy import rule_for
from appliance.exchange.selectors import access_export, access_release, active_recipients, exports_of, releases_of
from appliance.labeling.models import Project
from appliance.labeling.selectors import access_project
from appliance.web.context import mark_page


@require_GET
@requires("export.request")
def exchange_index(request: HttpRequest) -> HttpResponse:
    projects = list(visible(Project.objects.all(), request.user, "export.request").order_by("id")[:200])  # type: ignore[arg-type]
    for project in projects:
        mark_page(request, project.access_label())
    rows = [{"project": p, "banner": p.access_label().banner()} for p in projects]
    return render(request, "exchange/index.html", {"rows": rows})


def _page(request: HttpRequest, project: Project, *, summary: dict | None = None, status: int = 200) -> HttpResponse:
    mark_page(request, project.access_label())
    exports = exports_of(project)
    rows = [
        {
            "export": export,
            "percent": math.floor(100 * export.done / export.total) if export.total else 100,
            "busy": export.state in ("queued", "running"),
        }
        for export in exports
    ]
    context = {
        "project": project,
        "banner_text": project.access_label().banner(),
        "rows": rows,
        "releases": releases_of(project),
        "formats": ExportFormat.choices,
        "import_formats": FORMATS,
        "match_by": MATCH_BY,
        "modes": MODES,
        "recipients": active_recipients(),
        "plain_allowed": rule_for(project.classification).plain,
        "can_import": bool(decide(request.user, "project.manage", project)),  # type: ignore[arg-type]
        "can_approve": bool(decide(request.user, "export.approve", project)),  # type: ignore[arg-type]
        "summary": summary,
    }
    return render(request, "exchange/project.html", context, status=status)


@require_GET
@requires("export.request")
def project_exchange(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access_project(request.user, project_id, "export.request")  # type: ignore[arg-type]
    return _page(request, project)


@require_POST
@requires("export.request")
def export_create(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access_project(request.user, project_id, "export.request")  # type: ignore[arg-type]
    try:
        export = actions.create_export(
            request.user,  # type: ignore[arg-type]
            project=project,
            format=request.POST.get("format", ""),
            include_images=request.POST.get("include_images") == "on",
        )
    except actions.ExchangeError as exc:
        messages.error(request, str(exc))
        return _page(request, project, status=400)
    messages.success(request, f"Export {export.pk} is queued; its progress shows below.")
    return redirect("exchange:project", project_id=project.pk)


@require_POST
@requires("project.manage")
def import_run(request: HttpRequest, project_id: int) -> HttpResponse:
    project = access_project(request.user, project_id, "project.manage")  # type: ignore[arg-type]
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a file to import.")
        return _page(request, project, status=400)
    try:
        summary = actions.import_annotations(
            request.user,  # type: ignore[arg-type]
            project=project,
            format=request.POST.get("format", ""),
            stream=upload,
            file_name=upload.name or "upload",
            match=request.POST.get("match", "name"),
            mode=request.POST.get("mode", "add"),
            dry_run=request.POST.get("dry_run") == "on",
        )
    except actions.ExchangeError as exc:
        messages.error(request, f"Nothing was imported: {exc}")
        return _page(request, project, status=400)
    if not summary["dry_run"]:
        messages.success(request, f"Imported {summary['create']} annotations on {summary['images']} images.")
    return _page(request, project, summary=summary)


@require_POST
@requires("export.request")
def release_request(request: HttpRequest, export_id: int) -> HttpResponse:
    export = access_export(request.user, export_id, "export.request")  # type: ignore[arg-type]
    raw = request.POST.get("recipient", "")
    recipient = Recipient.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
    try:
        actions.request_release(
            request.user,  # type: ignore[arg-type]
            export=export,
            recipient=recipient,
            plain=request.POST.get("plain") == "on",
            reason=request.POST.get("reason", ""),
        )
    except actions.ExchangeError as exc:
        messages.error(request, str(exc))
        return _page(request, export.project, status=409 if isinstance(exc, actions.Conflict) else 400)
    messages.success(request, "Release requested; another authorised person must approve it.")
    return redirect("exchange:project", project_id=export.project_id)


@require_POST
@requires("export.approve")
def release_decide(request: HttpRequest, release_id: int) -> HttpResponse:
    release = access_release(request.user, release_id, "export.approve")  # type: ignore[arg-type]
    raw = request.POST.get("version", "")
    try:
        actions.decide_release(
            request.user,  # type: ignore[arg-type]
            release=release,
            approve=request.POST.get("decision") == "approve",
            version=int(raw) if raw.isdigit() else 0,
        )
    except actions.ExchangeError as exc:
        messages.error(request, str(exc))
        status = 403 if isinstance(exc, actions.OwnRequest) else 409 if isinstance(exc, actions.Conflict) else 400
        return _page(request, release.export.project, status=status)
    messages.success(request, f"Release {release.pk} decided.")
    return redirect("exchange:project", project_id=release.export.project_id)


@require_GET
@requires("export.request")
def release_download(request: HttpRequest, release_id: int) -> HttpResponse:
    release = access_release(request.user, release_id, "export.request")  # type: ignore[arg-type]
    try:
        delivery = actions.download_release(request.user, release=release)  # type: ignore[arg-type]
    except actions.ExchangeError as exc:
        messages.error(request, str(exc))
        return _page(request, release.export.project, status=409)
    response = HttpResponse(delivery.data, content_type=delivery.content_type)
    response["Content-Disposition"] = f'attachment; filename="{delivery.file_name}"'
    response["Cache-Control"] = "no-store"
    return response
