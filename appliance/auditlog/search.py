"""An auditor's search, shared by the page and the API: one keyset page, and the search itself recorded."""

from __future__ import annotations

from typing import Any

from appliance.auditlog.recorder import record
from appliance.auditlog.selectors import RecordPage, search_records
from appliance.auditlog.serializers import RecordQuery


def search_and_record(query: RecordQuery) -> RecordPage:
    """Run a validated query and append its "audit.search" record (privileged reads are themselves audited)."""
    data = query.validated_data
    filters = query.filters()
    page = search_records(filters, before=data.get("before"), after=data.get("after"), limit=data["limit"])
    details: dict[str, Any] = {"filters": filters.as_details(), "returned": len(page.items)}
    for cursor in ("before", "after"):
        if cursor in data:
            details[cursor] = data[cursor]
    record(action="audit.search", details=details)
    return page
