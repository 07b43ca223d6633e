"""The one DRF permission class: the role gate per view, the full decision per object; refusals are 404."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

if TYPE_CHECKING:  # rest_framework.views reads this module's class through DRF settings at import time
    from rest_framework.views import APIView

from appliance.access.decision import Protected, decide
from appliance.access.denial import deny


class PolicyPermission(BasePermission):
    """Views name `required_permission`; anonymous callers get 401, everyone refused gets an audited 404."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        permission = view.required_permission  # type: ignore[attr-defined]
        if not request.user or not request.user.is_authenticated:
            return False  # DRF answers 401 with the authentication header
        decision = decide(request.user, permission)
        if not decision:
            raise deny(permission=permission, gate=decision.gate, path=request.path)
        return True

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        permission = view.required_permission  # type: ignore[attr-defined]
        if not isinstance(obj, Protected):
            return True
        decision = decide(request.user, permission, obj)  # type: ignore[arg-type]
        if not decision:
            raise deny(
                permission=permission,
                gate=decision.gate,
                object_type=type(obj).__name__.lower(),
                object_id=str(getattr(obj, "pk", "")),
                path=request.path,
            )
        return True
