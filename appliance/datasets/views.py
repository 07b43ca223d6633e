"""Dataset pages: the list of datasets the user may see, and one dataset. Thin: reads come from `selectors`.

Each page raises its classification banner to the least upper bound of the datasets it shows (`mark_page`), so
a page never carries a banner lower than its most sensitive content.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from appliance.access.markers import requires
from appliance.datasets.selectors import access_dataset, datasets_visible_to
from appliance.web.context import mark_page


def _after(request: HttpRequest) -> int | None:
    """The keyset cursor from the query string; anything malformed restarts at the first page."""
    raw = request.GET.get("after", "")
    return int(raw) if raw.isdigit() else None


@require_GET
@requires("dataset.view")
def dataset_list(request: HttpRequest) -> HttpResponse:
    page = datasets_visible_to(request.user, after=_after(request))  # type: ignore[arg-type]
    for dataset in page.items:
        mark_page(request, dataset.access_label())
    rows = [{"dataset": d, "banner": d.access_label().banner()} for d in page.items]
    return render(request, "datasets/list.html", {"rows": rows, "next_after": page.next_after})


@require_GET
@requires("dataset.view")
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = access_dataset(request.user, dataset_id, "dataset.view")  # type: ignore[arg-type]
    label = dataset.access_label()
    mark_page(request, label)
    members = list(dataset.members.order_by("username").values_list("username", flat=True))
    return render(
        request, "datasets/detail.html", {"dataset": dataset, "banner_text": label.banner(), "members": members}
    )
