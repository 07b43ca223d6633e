"""A base API view for URLs whose HTTP methods need different permissions, and the answers every API shares.

Apart from `drf.py` because DRF imports that module while it defines `APIView` itself (it is the default
permission class in the settings), so nothing there may subclass `APIView`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.views import APIView

from appliance.access.drf import PolicyPermission


class PermissionByMethod(APIView):
    """`required_permission` is the declared (least) permission, read by the URL walk; `initial` narrows it to
    `permission_by_method[method]` for the request before PolicyPermission checks it."""

    required_permission = ""
    permission_by_method: ClassVar[dict[str, str]] = {}
    permission_classes = [PolicyPermission]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.required_permission = self.permission_by_method.get(request.method or "", type(self).required_permission)
        super().initial(request, *args, **kwargs)


# How the schema documents the two refusals every object endpoint can give.
HIDDEN_404 = OpenApiResponse(description="missing or hidden (the refusal is audited)")
FIELD_400 = OpenApiResponse(description="names the field at fault")


class Conflict(APIException):
    """409: the object's state (or version) does not allow the request; the body says why."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
