"""Audit workspace API: search, one record with its proof, one chunk of verification, and an export.

Thin views: `serializers` validate (a bad parameter is a 400 naming it), `selectors` and `proofs` read and check.
Every view names its `required_permission` and is guarded by `PolicyPermission`, so anonymous callers get 401
and everyone without the audit permission the audited 404. Searches, record views and verifications are
recorded like the pages' (`audit.search`, `audit.view`, `audit.verify`); the export is recorded by the exporter.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from appliance.access.drf import PolicyPermission
from appliance.auditlog.proofs import StateError, VerifyState, prove_inclusion, start_verification, verify_step
from appliance.auditlog.recorder import record
from appliance.auditlog.search import search_and_record
from appliance.auditlog.selectors import export_archive, log_size, newest_checkpoint, record_by_seq
from appliance.auditlog.serializers import ProofOut, RecordOut, RecordQuery, RecordWithProofOut, VerifyStepIn


class RecordListView(APIView):
    """GET: records matching the filters, newest first, one keyset page (`before`/`after` a seq, `limit` ≤ 500)."""

    required_permission = "audit.read"
    permission_classes = [PolicyPermission]

    @extend_schema(
        operation_id="audit_records_list",
        parameters=[RecordQuery],
        responses={
            200: inline_serializer(
                "AuditRecordPage",
                {
                    "results": RecordOut(many=True),
                    "older_before": serializers.IntegerField(allow_null=True),
                    "newer_after": serializers.IntegerField(allow_null=True),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        query = RecordQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = search_and_record(query)
        return Response(
            {
                "results": RecordOut(page.items, many=True).data,
                "older_before": page.older_before,
                "newer_after": page.newer_after,
            }
        )


class RecordDetailView(APIView):
    """GET: one record, and its inclusion proof in the newest checkpoint (null until a checkpoint covers it)."""

    required_permission = "audit.read"
    permission_classes = [PolicyPermission]

    @extend_schema(responses={200: RecordWithProofOut})
    def get(self, request: Request, seq: int) -> Response:
        row = record_by_seq(seq)
        if row is None:
            raise Http404("No such audit record.")
        proof = prove_inclusion(row, newest_checkpoint())
        record(action="audit.view", object_type="audit_record", object_id=seq)
        return Response({**RecordOut(row).data, "proof": ProofOut(proof).data if proof else None})


class VerifyStepView(APIView):
    """POST {"from": 0} starts a verification of the log as it is now; each answer carries a signed `state` to
    send back with the next `from` until `done`. The start and the result are `audit.verify` records."""

    required_permission = "audit.verify"
    permission_classes = [PolicyPermission]

    @extend_schema(request=VerifyStepIn, responses={200: OpenApiResponse(description="progress and the next state")})
    def post(self, request: Request) -> Response:
        given = VerifyStepIn(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        actor = request.user.get_username()
        if data["from"] == 0 and "state" not in data:
            state = start_verification(actor=actor, total=log_size())
            record(action="audit.verify", details={"phase": "start", "total": state.total})
        else:
            try:
                state = VerifyState.loads(data["state"], actor=actor, position=data["from"])
            except StateError as exc:
                raise ValidationError({"state": [str(exc)]}) from exc
        result = verify_step(state, limit=data["limit"])
        if result.done:
            details: dict[str, Any] = {
                "phase": "end",
                "ok": result.ok,
                "checked": result.checked,
                "total": result.state.total,
                "checkpoints": result.state.checkpoints,
            }
            if not result.ok:
                details.update(problem=result.problem, bad_seq=result.bad_seq)
            record(action="audit.verify", outcome="ok" if result.ok else "error", details=details)
        return Response(
            {
                "from": data["from"],
                "checked": result.checked,
                "total": result.state.total,
                "checkpoints": result.state.checkpoints,
                "ok": result.ok,
                "done": result.done,
                "problem": result.problem,
                "bad_seq": result.bad_seq,
                "state": "" if result.done else result.state.dumps(),
            }
        )


class ExportView(APIView):
    """POST: an audit bundle (records, checkpoints, keys) as a .tar.gz download; the exporter records it."""

    required_permission = "audit.export"
    permission_classes = [PolicyPermission]

    @extend_schema(request=None, responses={(200, "application/gzip"): OpenApiResponse(description="the bundle")})
    def post(self, request: Request) -> FileResponse:
        archive = export_archive()
        response = FileResponse(archive.handle, as_attachment=True, filename=archive.filename)
        response["Content-Type"] = "application/gzip"
        response["Cache-Control"] = "no-store"
        return response
