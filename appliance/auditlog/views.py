"""The auditor's workspace pages: search, one record with its inclusion proof, verify now, and export.

Thin views: input is checked by `serializers.RecordQuery`, reads come from `selectors` and `proofs`. Every page
is guarded by an audit permission, which only the auditor role holds, so an administrator (who must never read
the log they could be tempted to cover up) gets the same audited 404 as anyone else. Reading the log is itself
recorded (`audit.search`, `audit.view`): an auditor's privileged reads leave a trail like everyone's.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from appliance.access.markers import requires
from appliance.auditlog.proofs import prove_inclusion, recomputed_leaf
from appliance.auditlog.recorder import OUTCOMES, record
from appliance.auditlog.search import search_and_record
from appliance.auditlog.selectors import export_archive, newest_checkpoint, record_by_seq
from appliance.auditlog.serializers import RecordQuery, problems_of

# The search form's fields, in the order the page shows them (the cursor is not a field: it rides in the links).
FILTER_FIELDS = ("from", "to", "actor", "action", "object_type", "object_id", "outcome", "label")


def _given(query: QueryDict) -> QueryDict:
    """The query without the empty fields a submitted form always carries (an empty filter means "any")."""
    given = QueryDict(mutable=True)
    for name, values in query.lists():
        kept = [value for value in values if value != ""]
        if kept:
            given.setlist(name, kept)
    return given


def _link(filters: dict[str, Any], **cursor: int) -> str:
    return f"{reverse('auditlog:search')}?{urlencode({**filters, **cursor})}"


@require_GET
@never_cache
@requires("audit.read")
def search(request: HttpRequest) -> HttpResponse:
    """Filtered search, newest first, in keyset pages (`before`/`after` a seq, never an offset)."""
    given = _given(request.GET)
    query = RecordQuery(data=given)
    context: dict[str, Any] = {"values": given.dict(), "outcomes": OUTCOMES}
    if not query.is_valid():
        return render(request, "auditlog/search.html", {**context, "problems": problems_of(query.errors)}, status=400)
    page = search_and_record(query)
    kept = {name: given[name] for name in (*FILTER_FIELDS, "limit") if name in given}
    return render(
        request,
        "auditlog/search.html",
        {
            **context,
            "rows": page.items,
            "older_url": _link(kept, before=page.older_before) if page.older_before is not None else "",
            "newer_url": _link(kept, after=page.newer_after) if page.newer_after is not None else "",
        },
    )


@require_GET
@never_cache
@requires("audit.read")
def record_detail(request: HttpRequest, seq: int) -> HttpResponse:
    """One record in full, its leaf hash, and its inclusion proof against the newest checkpoint (checked here)."""
    row = record_by_seq(seq)
    if row is None:
        raise Http404("No such audit record.")
    checkpoint = newest_checkpoint()
    proof = prove_inclusion(row, checkpoint)
    record(action="audit.view", object_type="audit_record", object_id=seq)
    leaf = recomputed_leaf(row)
    return render(
        request,
        "auditlog/detail.html",
        {
            "row": row,
            "pretty": json.dumps(json.loads(row.canonical), indent=2, sort_keys=True, ensure_ascii=False),
            "leaf_hex": leaf.hex(),
            "stored_leaf_differs": bytes(row.leaf_hash) != leaf,
            "proof": proof,
            "proof_hashes": [value.hex() for value in proof.hashes] if proof else [],
            "checkpoint": checkpoint,
        },
    )


@require_GET
@never_cache
@requires("audit.verify")
def verify(request: HttpRequest) -> HttpResponse:
    """ "Verify now": the page's module script drives the chunked verification API and shows its progress."""
    return render(request, "auditlog/verify.html", {"step_url": reverse("auditlog-api:verify-step")})


@require_http_methods(["GET", "POST"])
@never_cache
@requires("audit.export")
def export(request: HttpRequest) -> HttpResponseBase:
    """GET: what an export holds; POST: build a bundle (audited by the exporter) and download it as .tar.gz."""
    if request.method == "GET":
        return render(request, "auditlog/export.html")
    archive = export_archive()
    response = FileResponse(archive.handle, as_attachment=True, filename=archive.filename)
    response["Content-Type"] = "application/gzip"
    response["Cache-Control"] = "no-store"
    return response
