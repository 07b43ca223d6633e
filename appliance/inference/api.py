"""Inference API: the registry (read; retire), a project's pre-labeling settings and jobs (start, see, cancel,
resume). Thin: selectors fetch and authorize, actions write; every view names its permission."""

from __future__ import annotations

from typing import ClassVar

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from appliance.access.denial import deny
from appliance.access.drf_views import FIELD_400, HIDDEN_404, Conflict, PermissionByMethod
from appliance.inference import actions
from appliance.inference.jobs import enqueue_job
from appliance.inference.models import PrelabelSettings
from appliance.inference.selectors import (
    access_job,
    access_model,
    jobs_of,
    managed_projects,
    may_see_registry,
    models_for,
    quality,
)
from appliance.inference.serializers import JobOut, JobStartIn, ModelOut, RetireIn, SettingsIn, quality_out
from appliance.labeling.selectors import access_project


def _refused(exc: actions.InferenceError) -> APIException:
    detail = {exc.field or "non_field_errors": [str(exc)]}
    return Conflict(detail) if isinstance(exc, actions.JobConflict) else ValidationError(detail)


class ModelCollectionView(PermissionByMethod):
    """GET: the registry, for admins (who manage it) and managers (who pre-label with it)."""

    required_permission = "account.self"

    @extend_schema(
        operation_id="models_list", responses={200: inline_serializer("ModelList", {"results": ModelOut(many=True)})}
    )
    def get(self, request: Request) -> Response:
        if not may_see_registry(request.user):  # type: ignore[arg-type]
            raise deny(permission="model.manage", gate="role", object_type="model", path=request.path)
        return Response({"results": ModelOut(models_for(request.user), many=True).data})  # type: ignore[arg-type]


class ModelDetailView(PermissionByMethod):
    """GET: one model and its measured quality on the projects the caller may manage."""

    required_permission = "account.self"

    @extend_schema(responses={200: inline_serializer("ModelDetail", {"model": ModelOut()}), 404: HIDDEN_404})
    def get(self, request: Request, model_id: int) -> Response:
        model = access_model(request.user, model_id)  # type: ignore[arg-type]
        measured = quality(model, managed_projects(request.user))  # type: ignore[arg-type]
        return Response({"model": ModelOut(model).data, "quality": quality_out(measured)})


class ModelRetireView(PermissionByMethod):
    required_permission = "model.manage"

    @extend_schema(request=RetireIn, responses={200: ModelOut, 404: HIDDEN_404, 409: FIELD_400})
    def post(self, request: Request, model_id: int) -> Response:
        model = access_model(request.user, model_id, self.required_permission)  # type: ignore[arg-type]
        given = RetireIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            model = actions.retire_model(request.user, model=model, reason=given.validated_data["reason"])  # type: ignore[arg-type]
        except actions.InferenceError as exc:
            raise _refused(exc) from exc
        return Response(ModelOut(model).data)


class ProjectSettingsView(PermissionByMethod):
    """GET/PUT: the project's confidence threshold for proposals."""

    required_permission = "project.manage"

    @extend_schema(responses={200: SettingsIn, 404: HIDDEN_404})
    def get(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        return Response({"min_confidence": actions.min_confidence_of(project)})

    @extend_schema(request=SettingsIn, responses={200: SettingsIn, 400: FIELD_400, 404: HIDDEN_404})
    def put(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        given = SettingsIn(data=request.data)
        given.is_valid(raise_exception=True)
        row: PrelabelSettings = actions.set_min_confidence(
            request.user,  # type: ignore[arg-type]
            project=project,
            min_confidence=given.validated_data["min_confidence"],
        )
        return Response({"min_confidence": row.min_confidence})


class ProjectJobsView(PermissionByMethod):
    """GET: the project's latest jobs; POST: start one (queued for the workers)."""

    required_permission = "project.manage"

    @extend_schema(responses={200: inline_serializer("JobList", {"results": JobOut(many=True)}), 404: HIDDEN_404})
    def get(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        return Response({"results": JobOut(jobs_of(project), many=True).data})

    @extend_schema(request=JobStartIn, responses={202: JobOut, 400: FIELD_400, 404: HIDDEN_404})
    def post(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        given = JobStartIn(data=request.data)
        given.is_valid(raise_exception=True)
        model = access_model(request.user, given.validated_data["model"])  # type: ignore[arg-type]
        try:
            with transaction.atomic():
                job = actions.start_job(
                    request.user,  # type: ignore[arg-type]
                    project=project,
                    model=model,
                    min_confidence=given.validated_data.get("min_confidence"),
                )
                enqueue_job(job)
        except actions.InferenceError as exc:
            raise _refused(exc) from exc
        return Response(JobOut(job).data, status=status.HTTP_202_ACCEPTED)


class JobDetailView(PermissionByMethod):
    required_permission = "project.manage"

    @extend_schema(responses={200: JobOut, 404: HIDDEN_404})
    def get(self, request: Request, job_id: int) -> Response:
        return Response(JobOut(access_job(request.user, job_id)).data)  # type: ignore[arg-type]


class JobCommandView(PermissionByMethod):
    """POST cancel / resume."""

    required_permission = "project.manage"
    command: ClassVar[str] = ""

    @extend_schema(request=None, responses={200: JobOut, 404: HIDDEN_404, 409: FIELD_400})
    def post(self, request: Request, job_id: int) -> Response:
        job = access_job(request.user, job_id)  # type: ignore[arg-type]
        try:
            with transaction.atomic():
                if self.command == "cancel":
                    job = actions.cancel_job(request.user, job=job)  # type: ignore[arg-type]
                else:
                    job = actions.resume_job(request.user, job=job)  # type: ignore[arg-type]
                    enqueue_job(job)
        except actions.InferenceError as exc:
            raise _refused(exc) from exc
        return Response(JobOut(job).data)


class JobCancelView(JobCommandView):
    command = "cancel"


class JobResumeView(JobCommandView):
    command = "resume"
