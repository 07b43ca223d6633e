"""Dataset API: thin views that validate shape, call a selector or an action, and serialize the result.

Every view names its `required_permission` and is guarded by `PolicyPermission` (role gate, 401 for anonymous,
audited 404 for refusals); object gates run in `access_dataset` and in the actions. The collection URL serves two
operations (list and create) that need different permissions, so the permission is chosen per HTTP method.
"""

from __future__ import annotations

from typing import ClassVar

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from appliance.access.drf import PolicyPermission
from appliance.access.drf_views import PermissionByMethod
from appliance.datasets import actions
from appliance.datasets.imports import ImportRefused
from appliance.datasets.selectors import access_dataset, access_item, datasets_visible_to, items_of
from appliance.datasets.serializers import DatasetCreateIn, DatasetDeleteIn, DatasetOut, ItemOut, PageQuery
from appliance.datasets.serving import serve
from appliance.datasets.uploading import run_upload
from appliance.datasets.uploads import upload_refusal


class DatasetCollectionView(PermissionByMethod):
    """GET: the datasets the caller may see (keyset pages); POST: create one ("dataset.create")."""

    # The declared (least) permission, read by the URL walk; `initial` narrows it per method before the check.
    required_permission = "dataset.view"
    permission_by_method: ClassVar[dict[str, str]] = {"POST": "dataset.create"}
    permission_classes = [PolicyPermission]

    @extend_schema(
        operation_id="datasets_list",
        parameters=[PageQuery],
        responses={
            200: inline_serializer(
                "DatasetPage",
                {"results": DatasetOut(many=True), "next_after": serializers.IntegerField(allow_null=True)},
            )
        },
    )
    def get(self, request: Request) -> Response:
        query = PageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = datasets_visible_to(
            request.user,  # type: ignore[arg-type]
            after=query.validated_data.get("after"),
            limit=query.validated_data["limit"],
        )
        return Response({"results": DatasetOut(page.items, many=True).data, "next_after": page.next_after})

    @extend_schema(
        request=DatasetCreateIn, responses={201: DatasetOut, 400: OpenApiResponse(description="names the field")}
    )
    def post(self, request: Request) -> Response:
        given = DatasetCreateIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            dataset = actions.create_dataset(request.user, **given.validated_data)  # type: ignore[arg-type]
        except actions.DatasetError as exc:
            raise ValidationError({exc.field or "non_field_errors": [str(exc)]}) from exc
        return Response(DatasetOut(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(PermissionByMethod):
    """One dataset; the audited 404 when it is missing or the caller may not see it (no existence oracle).
    DELETE (`dataset.manage`, with `confirm_name` and `reason`) deletes it and crypto-shreds its imagery."""

    required_permission = "dataset.view"
    permission_by_method: ClassVar[dict[str, str]] = {"DELETE": "dataset.manage"}
    permission_classes = [PolicyPermission]

    @extend_schema(request=DatasetDeleteIn, responses={204: None, 400: OpenApiResponse(description="names the field")})
    def delete(self, request: Request, dataset_id: int) -> Response:
        dataset = access_dataset(request.user, dataset_id, "dataset.manage")  # type: ignore[arg-type]
        given = DatasetDeleteIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            actions.delete_dataset(request.user, dataset=dataset, **given.validated_data)  # type: ignore[arg-type]
        except actions.DatasetError as exc:
            raise ValidationError({exc.field or "non_field_errors": [str(exc)]}) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: DatasetOut, 404: OpenApiResponse(description="missing or hidden")})
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = access_dataset(request.user, dataset_id, self.required_permission)  # type: ignore[arg-type]
        return Response(DatasetOut(dataset).data)


def _refused(exc: ImportRefused) -> ValidationError:
    return ValidationError({"files": exc.lines})


class ItemCollectionView(PermissionByMethod):
    """GET: a dataset's items (keyset pages); POST: import images (`files`, repeated) or one archive (`archive`)."""

    required_permission = "dataset.view"
    permission_by_method: ClassVar[dict[str, str]] = {"POST": "dataset.import"}
    permission_classes = [PolicyPermission]
    parser_classes = [MultiPartParser]  # uploads only; the upload handlers decide where the bytes go

    @extend_schema(
        operation_id="datasets_items_list",
        parameters=[PageQuery],
        responses={
            200: inline_serializer(
                "ItemPage", {"results": ItemOut(many=True), "next_after": serializers.IntegerField(allow_null=True)}
            )
        },
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = access_dataset(request.user, dataset_id, "dataset.view")  # type: ignore[arg-type]
        query = PageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = items_of(dataset, after=query.validated_data.get("after"), limit=query.validated_data["limit"])
        return Response({"results": ItemOut(page.items, many=True).data, "next_after": page.next_after})

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "ImportUpload",
                {
                    "files": serializers.ListField(child=serializers.FileField(), required=False),
                    "archive": serializers.FileField(required=False),
                },
            )
        },
        responses={
            201: inline_serializer(
                "ImportResult",
                {"items": ItemOut(many=True), "report": serializers.ListField(child=serializers.CharField())},
            ),
            400: OpenApiResponse(description="every refused file with its reason; nothing imported"),
            413: OpenApiResponse(description="over the upload caps"),
        },
    )
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = access_dataset(request.user, dataset_id, "dataset.import")  # type: ignore[arg-type]
        refusal = upload_refusal(request._request)
        if refusal is not None:
            return Response({"files": [refusal.message]}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        try:
            result = run_upload(request.user, dataset, request.FILES)  # type: ignore[arg-type]
        except ImportRefused as exc:
            raise _refused(exc) from exc
        return Response(
            {"items": ItemOut(result.items, many=True).data, "report": result.report}, status=status.HTTP_201_CREATED
        )


class ItemDetailView(APIView):
    required_permission = "dataset.view"
    permission_classes = [PolicyPermission]

    @extend_schema(responses={200: ItemOut})
    def get(self, request: Request, dataset_id: int, item_id: int) -> Response:
        item = access_item(request.user, dataset_id, item_id)  # type: ignore[arg-type]
        return Response(ItemOut(item).data)


class ItemImageryView(APIView):
    """The item's image, preview or thumbnail; each view recorded (see serving.py). `?download=1` for a file."""

    required_permission = "dataset.view"
    permission_classes = [PolicyPermission]

    @extend_schema(
        operation_id="datasets_items_imagery",
        responses={(200, "image/*"): OpenApiResponse(description="the decrypted image; each view is recorded")},
    )
    def get(self, request: Request, dataset_id: int, item_id: int, kind: str) -> HttpResponse:
        item = access_item(request.user, dataset_id, item_id)  # type: ignore[arg-type]
        download = kind == "image" and request.query_params.get("download") == "1"
        return serve(request.user, item, kind, download=download, page_token=request.query_params.get("t", ""))  # type: ignore[arg-type]
