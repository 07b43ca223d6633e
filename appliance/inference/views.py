"""Inference pages: the model registry, one model's measured quality, and a project's pre-labeling jobs.

Thin: selectors fetch and authorize, actions write. The registry is shown to admins (who manage it) and
managers (who pre-label with it); quality counts cover only the projects the reader may manage. The jobs page
refreshes itself with a plain `<meta http-equiv="refresh">` while a job runs (no script, strict CSP).
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from appliance.access.denial import deny
from appliance.access.markers import requires
from appliance.inference import actions
from appliance.inference.jobs import enqueue_job
from appliance.inference.models import ModelState
from appliance.inference.selectors import (
    access_job,
    access_model,
    jobs_of,
    managed_projects,
    may_see_registry,
    models_for,
    quality,
)
from appliance.inference.serializers import class_quality
from appliance.labeling.selectors import access_project
from appliance.web.context import mark_page

REFRESH_SECONDS = 3


@require_GET
@requires("account.self")
def model_list(request: HttpRequest) -> HttpResponse:
    if not may_see_registry(request.user):  # type: ignore[arg-type]
        raise deny(permission="model.manage", gate="role", object_type="model", path=request.path)
    rows = [{"model": m, "banner": m.access_label().banner()} for m in models_for(request.user)]  # type: ignore[arg-type]
    return render(request, "inference/model_list.html", {"rows": rows})


@require_GET
@requires("account.self")
def model_detail(request: HttpRequest, model_id: int) -> HttpResponse:
    model = access_model(request.user, model_id)  # type: ignore[arg-type]
    projects = list(managed_projects(request.user))  # type: ignore[arg-type]
    for project in projects:
        mark_page(request, project.access_label())
    measured = quality(model, projects)
    context = {
        "model": model,
        "banner_text": model.access_label().banner(),
        "rows": [class_quality(row) for row in measured.classes],
        "total": class_quality(measured.totals()),
        "tasks": measured.tasks,
        "throughput": measured.throughput,
        "projects": len(projects),
    }
    return render(request, "inference/model_detail.html", context)


@require_http_methods(["GET", "POST"])
@requires("project.manage")
def project_jobs(request: HttpRequest, project_id: int) -> HttpResponse:
    """The project's pre-labeling: threshold, a form to start a job, and the jobs with their progress."""
    project = access_project(request.user, project_id, "project.manage")  # type: ignore[arg-type]
    mark_page(request, project.access_label())
    if request.method == "POST":
        try:
            if "min_confidence" in request.POST and "model" not in request.POST:
                actions.set_min_confidence(
                    request.user,  # type: ignore[arg-type]
                    project=project,
                    min_confidence=float(request.POST["min_confidence"]),
                )
                messages.success(request, "Threshold saved.")
            else:
                model = access_model(request.user, request.POST.get("model", ""))  # type: ignore[arg-type]
                with transaction.atomic():
                    job = actions.start_job(request.user, project=project, model=model)  # type: ignore[arg-type]
                    enqueue_job(job)
                messages.success(request, f"Job {job.pk} queued.")
        except (actions.InferenceError, ValueError) as exc:
            messages.error(request, str(exc))
        return redirect("inference:project-jobs", project_id=project.pk)
    jobs = jobs_of(project)
    models = [m for m in models_for(request.user) if m.state == ModelState.ACTIVE and actions.may_run_on(m, project)]  # type: ignore[arg-type]
    context = {
        "project": project,
        "jobs": jobs,
        "models": models,
        "min_confidence": actions.min_confidence_of(project),
        "refresh": REFRESH_SECONDS if any(not job.finished for job in jobs) else 0,
    }
    return render(request, "inference/project_jobs.html", context)


@require_POST
@requires("project.manage")
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = access_job(request.user, job_id)  # type: ignore[arg-type]
    try:
        actions.cancel_job(request.user, job=job)  # type: ignore[arg-type]
        messages.success(request, f"Job {job.pk}: cancel requested.")
    except actions.InferenceError as exc:
        messages.error(request, str(exc))
    return redirect("inference:project-jobs", project_id=job.project_id)
