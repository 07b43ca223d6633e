"""API endpoints of the shell: who am I (scripts check their token with it)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from appliance.access.drf import PolicyPermission


class MeView(APIView):
    required_permission = "account.self"
    permission_classes = [PolicyPermission]

    @extend_schema(
        responses={
            200: inline_serializer(
                "Me",
                {
                    "username": serializers.CharField(),
                    "roles": serializers.ListField(child=serializers.CharField()),
                    "clearance": serializers.CharField(),
                    "compartments": serializers.ListField(child=serializers.CharField()),
                },
            )
        }
    )
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
