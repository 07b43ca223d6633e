"""API endpoints of the shell: who am I (scripts check their token with it)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from appliance.access.drf import PolicyPermission


class MeView(APIView):
    required_permission = "account.self"
    permission_classes = [PolicyPermission]

    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {
                "username": user.get_username(),
                "roles": sorted(user.roles),  # type: ignore[union-attr]
                "clearance": user.clearance,  # type: ignore[union-attr]
                "compartments": sorted(user.compartments),  # type: ignore[union-attr]
            }
        )
