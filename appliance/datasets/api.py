"""Dataset API: thin views that validate shape, call a selector or an action, and serialize the result.

Every view names its `required_permission` and is guarded by `PolicyPermission` (role gate, 401 for anonymous,
audited 404 for refusals); object gates run in `access_dataset` and in the actions. The collection URL serves two
operations (list and create) that need different permissions, so the permission is chosen per HTTP method.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from appliance.access.drf import PolicyPermission
from appliance.datasets import actions
from appliance.datasets.selectors import access_dataset, datasets_visible_to
from appliance.datasets.serializers import DatasetCreateIn, DatasetOut, PageQuery


class DatasetCollectionView(APIView):
    """GET: the datasets the caller may see (keyset pages); POST: create one ("dataset.create")."""

    # The declared (least) permission, read by the URL walk; `initial` narrows it per method before the check.
    required_permission = "dataset.view"
    permission_by_method: ClassVar[dict[str, str]] = {"POST": "dataset.create"}
    permission_classes = [PolicyPermission]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.required_permission = self.permission_by_method.get(request.method or "", type(self).required_permission)
        super().initial(request, *args, **kwargs)

    def get(self, request: Request) -> Response:
        query = PageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = datasets_visible_to(
            request.user,  # type: ignore[arg-type]
            after=query.validated_data.get("after"),
            limit=query.validated_data["limit"],
        )
        return Response({"results": DatasetOut(page.items, many=True).data, "next_after": page.next_after})

    def post(self, request: Request) -> Response:
        given = DatasetCreateIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            dataset = actions.create_dataset(request.user, **given.validated_data)  # type: ignore[arg-type]
        except actions.DatasetError as exc:
            raise ValidationError({exc.field or "non_field_errors": [str(exc)]}) from exc
        return Response(DatasetOut(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(APIView):
    """One dataset; the audited 404 when it is missing or the caller may not see it (no existence oracle)."""

    required_permission = "dataset.view"
    permission_classes = [PolicyPermission]

    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = access_dataset(request.user, dataset_id, self.required_permission)  # type: ignore[arg-type]
        return Response(DatasetOut(dataset).data)
