"""Exchange API: thin views that check input, fetch through the selectors (audited 404 for hidden objects) and
call one action each. Refusals of the data are 400 naming the field, state conflicts 409, own-request 403.
"""

from __future__ import annotations

from typing import ClassVar

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from appliance.access.drf_views import FIELD_400, HIDDEN_404, Conflict, PermissionByMethod
from appliance.exchange import actions
from appliance.exchange.models import Recipient
from appliance.exchange.selectors import access_export, access_release, active_recipients, exports_of, releases_of
from appliance.exchange.serializers import (
    DecisionIn,
    ExportIn,
    ExportOut,
    ImportIn,
    RecipientIn,
    RecipientOut,
    ReleaseIn,
    ReleaseOut,
)
from appliance.labeling.selectors import access_project


def refused(exc: actions.ExchangeError) -> APIException:
    detail = {exc.field or "non_field_errors": [str(exc)]}
    if isinstance(exc, actions.Conflict):
        return Conflict(detail)
    if isinstance(exc, actions.OwnRequest):
        return PermissionDenied(detail)
    return ValidationError(detail)


class ExportCollectionView(PermissionByMethod):
    """GET: the project's exports; POST: queue a new one (202, poll the export for progress)."""

    required_permission = "export.request"

    @extend_schema(responses={200: ExportOut(many=True), 404: HIDDEN_404})
    def get(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        return Response({"results": ExportOut(exports_of(project), many=True).data})

    @extend_schema(request=ExportIn, responses={202: ExportOut, 400: FIELD_400, 404: HIDDEN_404})
    def post(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        given = ExportIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            export = actions.create_export(request.user, project=project, **given.validated_data)  # type: ignore[arg-type]
        except actions.ExchangeError as exc:
            raise refused(exc) from exc
        return Response(ExportOut(export).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailView(PermissionByMethod):
    """GET: one export's state and progress."""

    required_permission = "export.request"

    @extend_schema(responses={200: ExportOut, 404: HIDDEN_404})
    def get(self, request: Request, export_id: int) -> Response:
        export = access_export(request.user, export_id, self.required_permission)  # type: ignore[arg-type]
        return Response(ExportOut(export).data)


class ImportView(PermissionByMethod):
    """POST (multipart): import a file into the project's tasks, or with dry_run only report what would change."""

    required_permission = "project.manage"
    parser_classes = [MultiPartParser]

    @extend_schema(request=ImportIn, responses={200: OpenApiResponse(description="what changed"), 400: FIELD_400})
    def post(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        given = ImportIn(data=request.data)
        given.is_valid(raise_exception=True)
        upload = given.validated_data["file"]
        try:
            summary = actions.import_annotations(
                request.user,  # type: ignore[arg-type]
                project=project,
                format=given.validated_data["format"],
                stream=upload,
                file_name=upload.name,
                match=given.validated_data["match"],
                mode=given.validated_data["mode"],
                dry_run=given.validated_data["dry_run"],
            )
        except actions.ExchangeError as exc:
            raise refused(exc) from exc
        return Response(summary)


class ReleaseCollectionView(PermissionByMethod):
    """GET: the requests for the project's exports; POST on an export: request its release."""

    required_permission = "export.request"

    @extend_schema(request=ReleaseIn, responses={201: ReleaseOut, 400: FIELD_400, 404: HIDDEN_404, 409: FIELD_400})
    def post(self, request: Request, export_id: int) -> Response:
        export = access_export(request.user, export_id, self.required_permission)  # type: ignore[arg-type]
        given = ReleaseIn(data=request.data)
        given.is_valid(raise_exception=True)
        recipient_id = given.validated_data["recipient"]
        recipient = Recipient.objects.filter(pk=recipient_id).first() if recipient_id is not None else None
        if recipient_id is not None and recipient is None:
            raise ValidationError({"recipient": [f"no recipient {recipient_id}"]})
        try:
            release = actions.request_release(
                request.user,  # type: ignore[arg-type]
                export=export,
                recipient=recipient,
                plain=given.validated_data["plain"],
                reason=given.validated_data["reason"],
            )
        except actions.ExchangeError as exc:
            raise refused(exc) from exc
        return Response(ReleaseOut(release).data, status=status.HTTP_201_CREATED)


class ProjectReleasesView(PermissionByMethod):
    required_permission = "export.request"

    @extend_schema(responses={200: ReleaseOut(many=True), 404: HIDDEN_404})
    def get(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        return Response({"results": ReleaseOut(releases_of(project), many=True).data})


class DecisionView(PermissionByMethod):
    """POST: approve or reject a request (never one's own: 403); a stale version is 409."""

    required_permission = "export.approve"

    @extend_schema(request=DecisionIn, responses={200: ReleaseOut, 403: FIELD_400, 404: HIDDEN_404, 409: FIELD_400})
    def post(self, request: Request, release_id: int) -> Response:
        release = access_release(request.user, release_id, self.required_permission)  # type: ignore[arg-type]
        given = DecisionIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            decided = actions.decide_release(request.user, release=release, **given.validated_data)  # type: ignore[arg-type]
        except actions.ExchangeError as exc:
            raise refused(exc) from exc
        return Response(ReleaseOut(decided).data)


class DownloadView(PermissionByMethod):
    """GET: the approved export, encrypted to its recipient (or plain where allowed); recorded before it is sent."""

    required_permission = "export.request"

    @extend_schema(responses={(200, "application/pkcs7-mime"): bytes, 404: HIDDEN_404, 409: FIELD_400})
    def get(self, request: Request, release_id: int) -> HttpResponse:
        release = access_release(request.user, release_id, self.required_permission)  # type: ignore[arg-type]
        try:
            delivery = actions.download_release(request.user, release=release)  # type: ignore[arg-type]
        except actions.ExchangeError as exc:
            raise refused(exc) from exc
        response = HttpResponse(delivery.data, content_type=delivery.content_type)
        response["Content-Disposition"] = f'attachment; filename="{delivery.file_name}"'
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        response["Digest"] = f"sha-256={delivery.sha256}"
        return response


class RecipientCollectionView(PermissionByMethod):
    """GET: recipients a requester may choose; POST: enroll one (admins, "key.manage")."""

    required_permission = "export.request"
    permission_by_method: ClassVar[dict[str, str]] = {"POST": "key.manage"}

    @extend_schema(responses={200: RecipientOut(many=True)})
    def get(self, request: Request) -> Response:
        return Response({"results": RecipientOut(active_recipients(), many=True).data})

    @extend_schema(request=RecipientIn, responses={201: RecipientOut, 400: FIELD_400})
    def post(self, request: Request) -> Response:
        given = RecipientIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            recipient = actions.enroll_recipient(request.user, **given.validated_data)  # type: ignore[arg-type]
        except actions.ExchangeError as exc:
            raise refused(exc) from exc
        return Response(RecipientOut(recipient).data, status=status.HTTP_201_CREATED)
