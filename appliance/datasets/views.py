"""Dataset pages: the list of datasets the user may see, and one dataset. Thin: reads come from `selectors`.

Each page raises its classification banner to the least upper bound of the datasets it shows (`mark_page`), so
a page never carries a banner lower than its most sensitive content.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from appliance.access.decision import decide
from appliance.access.markers import requires
from appliance.accounts.models import User
from appliance.datasets import actions
from appliance.datasets.forms import DatasetForm, MemberForm
from appliance.datasets.imports import ImportRefused
from appliance.datasets.models import Dataset
from appliance.datasets.selectors import access_dataset, access_item, datasets_visible_to, items_of
from appliance.datasets.serving import record_thumbnail_page, serve
from appliance.datasets.uploading import run_upload
from appliance.datasets.uploads import upload_refusal
from appliance.web.context import mark_page

GRID_PAGE_SIZE = 48


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
    can_create = bool(decide(request.user, "dataset.create"))  # type: ignore[arg-type]
    context = {"rows": rows, "next_after": page.next_after, "can_create": can_create}
    return render(request, "datasets/list.html", context)


def _detail(
    request: HttpRequest, dataset: Dataset, *, errors: list[str] | None = None, status: int = 200
) -> HttpResponse:
    """The dataset page: its label, members, one keyset page of thumbnails (recorded once), the import form."""
    label = dataset.access_label()
    mark_page(request, label)
    members = list(dataset.members.order_by("username").values_list("username", flat=True))
    page = items_of(dataset, after=_after(request), limit=GRID_PAGE_SIZE)
    token = record_thumbnail_page(request.user, dataset, page.items)  # type: ignore[arg-type]
    context = {
        "dataset": dataset,
        "banner_text": label.banner(),
        "members": members,
        "items": page.items,
        "next_after": page.next_after,
        "page_token": token,
        "can_import": bool(decide(request.user, "dataset.import", dataset)),  # type: ignore[arg-type]
        "can_manage": bool(decide(request.user, "dataset.manage", dataset)),  # type: ignore[arg-type]
        "errors": errors or [],
    }
    return render(request, "datasets/detail.html", context, status=status)


@require_GET
@requires("dataset.view")
def dataset_detail(request: HttpRequest, dataset_id: int) -> HttpResponse:
    dataset = access_dataset(request.user, dataset_id, "dataset.view")  # type: ignore[arg-type]
    return _detail(request, dataset)


@require_POST
@requires("dataset.import")
def dataset_import(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """The import form: images or one archive; every refusal listed on the page (400), nothing imported then."""
    dataset = access_dataset(request.user, dataset_id, "dataset.import")  # type: ignore[arg-type]
    refusal = upload_refusal(request)
    if refusal is not None:
        return _detail(request, dataset, errors=[refusal.message], status=413)
    try:
        result = run_upload(request.user, dataset, request.FILES)  # type: ignore[arg-type]
    except ImportRefused as exc:
        return _detail(request, dataset, errors=exc.lines, status=400)
    messages.success(request, f"Imported {len(result.items)} image(s) into {dataset.name}.")
    return redirect("datasets:detail", dataset_id=dataset.pk)


@require_GET
@requires("dataset.view")
def item_detail(request: HttpRequest, dataset_id: int, item_id: int) -> HttpResponse:
    item = access_item(request.user, dataset_id, item_id)  # type: ignore[arg-type]
    label = item.dataset.access_label()
    mark_page(request, label)
    return render(request, "datasets/item.html", {"item": item, "banner_text": label.banner()})


@require_GET
@requires("dataset.view")
def item_imagery(request: HttpRequest, dataset_id: int, item_id: int, kind: str) -> HttpResponse:
    """Image, preview or thumbnail bytes for the pages (`<img src>`); each view recorded (serving.py)."""
    item = access_item(request.user, dataset_id, item_id)  # type: ignore[arg-type]
    download = kind == "image" and request.GET.get("download") == "1"
    return serve(request.user, item, kind, download=download, page_token=request.GET.get("t", ""))  # type: ignore[arg-type]


@require_http_methods(["GET", "POST"])
@requires("dataset.create")
def dataset_create(request: HttpRequest) -> HttpResponse:
    """Create a dataset (managers): name, description, label; the creator becomes its first member."""
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = actions.create_dataset(request.user, **form.cleaned_data)  # type: ignore[arg-type]
        except actions.DatasetError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, f"Created {dataset.name} ({dataset.access_label().banner()}).")
            return redirect("datasets:detail", dataset_id=dataset.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "datasets/create.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@requires("dataset.manage")
def dataset_members(request: HttpRequest, dataset_id: int) -> HttpResponse:
    """Need-to-know: the members of a dataset, added or removed one at a time by its managers."""
    dataset = access_dataset(request.user, dataset_id, "dataset.manage")  # type: ignore[arg-type]
    label = dataset.access_label()
    mark_page(request, label)
    form = MemberForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        member = User.objects.filter(username=form.cleaned_data["username"]).first()
        change = actions.remove_member if request.POST.get("op") == "remove" else actions.add_member
        try:
            if member is None:
                raise actions.DatasetError(f"there is no user {form.cleaned_data['username']!r}", field="member")
            change(request.user, dataset=dataset, member=member)  # type: ignore[arg-type]
        except actions.DatasetError as exc:
            error = str(exc)
        else:
            verb = "Removed" if change is actions.remove_member else "Added"
            messages.success(request, f"{verb} {member.get_username()}.")
            return redirect("datasets:members", dataset_id=dataset.pk)
    members = list(dataset.members.order_by("username"))
    context = {"dataset": dataset, "banner_text": label.banner(), "members": members, "form": form, "error": error}
    return render(request, "datasets/members.html", context, status=400 if request.method == "POST" else 200)
