"""The labeling manager's pages: the project list, a new project, one project's progress, its members, its
schema editor and the assignment of its tasks. Thin: reads come from `selectors`, writes from `actions`.

Every page is marked with its role permission (`requires`) and fetches its project through `access_project`,
so a project the user may not see (or not manage) answers the audited 404, exactly as a dataset does. Forms
check shape only; the actions' refusals (schema rules, who may label, task states) are shown on the page with a
400 and nothing is written. Pages carry the project's label in their banners (`mark_page`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_http_methods

from appliance.access.decision import decide, visible
from appliance.access.markers import requires
from appliance.accounts.models import User
from appliance.datasets.models import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH
from appliance.datasets.selectors import datasets_visible_to
from appliance.labeling import actions
from appliance.labeling.models import EDITABLE_STATES, Project, TaskState
from appliance.labeling.schema import ATTRIBUTE_KINDS, SchemaError, validate_schema
from appliance.labeling.selectors import (
    access_project,
    progress_of,
    projects_visible_to,
    state_counts_of,
    tasks_of,
)
from appliance.web.context import mark_page

TASK_PAGE_SIZE = 50
STATES = [(state.value, state.label) for state in TaskState]


def _after(request: HttpRequest) -> int | None:
    raw = request.GET.get("after", "")
    return int(raw) if raw.isdigit() else None


def _url(name: str, fallback: str, **kwargs: Any) -> str:
    """A named route of the labeling pages, or its plain path while that page is not installed."""
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        return fallback


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


# --- the list and a new project ---------------------------------------------------------------------------------


@require_GET
@requires("dataset.view")
def project_list(request: HttpRequest) -> HttpResponse:
    """The projects the user may see (filtered in SQL), each with its tasks counted per state."""
    projects = projects_visible_to(_user(request))
    counts = state_counts_of(projects)
    for project in projects:
        mark_page(request, project.access_label())
    rows = [
        {"project": p, "banner": p.access_label().banner(), "counts": [counts[p.pk][s] for s, _ in STATES]}
        for p in projects
    ]
    context = {"rows": rows, "states": STATES, "can_create": bool(decide(_user(request), "project.create"))}
    return render(request, "labeling/manage/list.html", context)


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_LENGTH)
    description = forms.CharField(max_length=DESCRIPTION_MAX_LENGTH, required=False, widget=forms.Textarea)
    datasets = forms.TypedMultipleChoiceField(coerce=int, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only datasets the manager may manage: binding data to a project is managing it.
        page = datasets_visible_to(user, permission="dataset.manage", limit=200)
        choices = [(d.pk, f"{d.name} ({d.access_label().banner()})") for d in page.items]
        self.fields["datasets"].choices = choices  # type: ignore[attr-defined]


@require_http_methods(["GET", "POST"])
@requires("project.create")
def project_create(request: HttpRequest) -> HttpResponse:
    """A project over datasets the manager manages; its tasks (one per image) are created with it."""
    user = _user(request)
    form = ProjectForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            project = actions.create_project(
                user, name=data["name"], description=data["description"], dataset_ids=data["datasets"]
            )
        except actions.LabelingError as exc:
            form.add_error("datasets" if exc.field == "dataset_ids" else exc.field or None, str(exc))
        else:
            created = actions.create_tasks(user, project=project)
            messages.success(request, f"Created {project.name} with {created} task(s). Publish its schema next.")
            return redirect("projects:schema", project_id=project.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "labeling/manage/create.html", {"form": form}, status=status)


# --- one project ------------------------------------------------------------------------------------------------


def _project_page(request: HttpRequest, project_id: int, permission: str) -> tuple[Project, dict[str, Any]]:
    """The project (or the audited 404) and what every project page shows about it."""
    user = _user(request)
    project = access_project(user, project_id, permission)
    label = project.access_label()
    mark_page(request, label)
    context = {
        "project": project,
        "banner_text": label.banner(),
        "can_manage": bool(decide(user, "project.manage", project)),
        "can_label": bool(decide(user, "annotation.edit", project)),
        "can_review": bool(decide(user, "annotation.review", project)),
    }
    return project, context


@require_GET
@requires("dataset.view")
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    """Progress: tasks per state, per analyst (for its managers), and one keyset page of its tasks."""
    user = _user(request)
    project, context = _project_page(request, project_id, "dataset.view")
    # Only the datasets (and so the tasks) this user may see: a project member can lack one of them.
    datasets = list(visible(project.datasets.all(), user, "dataset.view").order_by("name"))
    labelers = [member.get_username() for member in actions.labelers_of(project)] if context["can_manage"] else []
    progress = progress_of(project, labelers=labelers)
    page = tasks_of(project, after=_after(request), limit=TASK_PAGE_SIZE, datasets=[d.pk for d in datasets])
    rows = [
        {
            "task": task,
            "url": _url(
                "projects:task", f"/projects/{project.pk}/tasks/{task.pk}/", project_id=project.pk, task_id=task.pk
            ),
        }
        for task in page.items
    ]
    context |= {
        "datasets": datasets,
        "progress": progress,
        "state_counts": [(label, progress.counts[state]) for state, label in STATES],
        "analysts": [(a.username, a.assigned, [a.counts[s] for s, _ in STATES]) for a in progress.analysts],
        "states": STATES,
        "rows": rows,
        "next_after": page.next_after,
        "members": list(project.members.order_by("username").values_list("username", flat=True)),
        "next_url": _url("projects:next", f"/projects/{project.pk}/next", project_id=project.pk),
        "review_url": _url("projects:review-next", f"/projects/{project.pk}/review-next", project_id=project.pk),
    }
    return render(request, "labeling/manage/detail.html", context)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)


@require_http_methods(["GET", "POST"])
@requires("project.manage")
def project_members(request: HttpRequest, project_id: int) -> HttpResponse:
    """Need-to-know on the project: its members, and whether each may label it (role and clearance)."""
    user = _user(request)
    project, context = _project_page(request, project_id, "project.manage")
    form = MemberForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        member = User.objects.filter(username=form.cleaned_data["username"]).first()
        try:
            if member is None:
                raise actions.LabelingError(f"there is no user {form.cleaned_data['username']!r}", field="member")
            actions.add_project_member(user, project=project, member=member)
        except actions.LabelingError as exc:
            error = str(exc)
        else:
            messages.success(request, f"Added {member.get_username()}.")
            return redirect("projects:members", project_id=project.pk)
    members = [
        {"user": m, "may_label": bool(decide(m, "annotation.edit", project))}
        for m in project.members.order_by("username")
    ]
    context |= {"members": members, "form": form, "error": error}
    return render(request, "labeling/manage/members.html", context, status=400 if request.method == "POST" else 200)


# --- the schema editor ------------------------------------------------------------------------------------------


@dataclass
class AttributeRow:
    name: str = ""
    kind: str = "checkbox"
    options: str = ""
    min: str = ""
    max: str = ""
    required: bool = False


@dataclass
class ClassRow:
    name: str = ""
    colour: str = "#1f77b4"
    shortcut: str = ""
    attributes: list[AttributeRow] = field(default_factory=list)
    error: str = ""

    @property
    def blank(self) -> bool:
        return not self.name.strip() and not self.shortcut and all(not a.name.strip() for a in self.attributes)


def _number_text(value: Any) -> str:
    return "" if value is None else f"{value:g}"


def _rows_of(classes: list[dict[str, Any]]) -> list[ClassRow]:
    return [
        ClassRow(
            name=entry["name"],
            colour=entry["colour"],
            shortcut=entry.get("shortcut", ""),
            attributes=[
                AttributeRow(
                    name=a["name"],
                    kind=a["kind"],
                    options=", ".join(a.get("options", [])),
                    min=_number_text(a.get("min")),
                    max=_number_text(a.get("max")),
                    required=bool(a.get("required")),
                )
                for a in entry.get("attributes", [])
            ],
        )
        for entry in classes
    ]


def _count(data: QueryDict, key: str, limit: int) -> int:
    raw = data.get(key, "0")
    return min(int(raw), limit) if raw.isdigit() else 0


def _rows_from(data: QueryDict) -> list[ClassRow]:
    """The editor's rows as posted (removed ones dropped), whatever was typed: shown again when refused."""
    rows: list[ClassRow] = []
    for i in range(_count(data, "classes", 500)):
        prefix = f"c{i}"
        if data.get(f"{prefix}-remove"):
            continue
        attributes = []
        for j in range(_count(data, f"{prefix}-attributes", 50)):
            key = f"{prefix}-a{j}"
            if data.get(f"{key}-remove"):
                continue
            attributes.append(
                AttributeRow(
                    name=data.get(f"{key}-name", ""),
                    kind=data.get(f"{key}-kind", "checkbox"),
                    options=data.get(f"{key}-options", ""),
                    min=data.get(f"{key}-min", "").strip(),
                    max=data.get(f"{key}-max", "").strip(),
                    required=bool(data.get(f"{key}-required")),
                )
            )
        rows.append(
            ClassRow(
                name=data.get(f"{prefix}-name", ""),
                colour=data.get(f"{prefix}-colour", "#000000"),
                shortcut=data.get(f"{prefix}-shortcut", ""),
                attributes=attributes,
            )
        )
    return rows


class EditorError(ValueError):
    """What the editor refuses before the action sees it; `row` is the class row at fault, None for the whole."""

    def __init__(self, message: str, *, row: int | None) -> None:
        super().__init__(message)
        self.row = row


def _unchanged(schema: dict[str, Any], current: list[dict[str, Any]]) -> bool:
    """Whether `schema` says exactly what the current version says (a new version of it would be noise)."""
    try:
        return validate_schema(schema)["classes"] == current
    except SchemaError:
        return False  # not the same, and invalid: the action names the fault


def _bound(raw: str, what: str, row: int) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise EditorError(f"{what} must be a number, not {raw!r}", row=row)
    return value


def _schema_of(rows: list[ClassRow]) -> tuple[dict[str, Any], list[int]]:
    """The schema the rows describe (blank rows left out), and which row each of its classes came from."""
    classes: list[dict[str, Any]] = []
    origin: list[int] = []
    for index, row in enumerate(rows):
        if row.blank:
            continue
        attributes: list[dict[str, Any]] = []
        for a in row.attributes:
            if not a.name.strip():
                continue
            attribute: dict[str, Any] = {"name": a.name, "kind": a.kind, "required": a.required}
            if a.kind == "select":
                attribute["options"] = [option.strip() for option in a.options.split(",") if option.strip()]
            if a.kind == "number":
                attribute["min"] = _bound(a.min, f"{a.name.strip()}: min", index)
                attribute["max"] = _bound(a.max, f"{a.name.strip()}: max", index)
            attributes.append(attribute)
        classes.append({"name": row.name, "colour": row.colour, "shortcut": row.shortcut, "attributes": attributes})
        origin.append(index)
    return {"classes": classes}, origin


_CLASS_INDEX = re.compile(r"classes\[(\d+)\]")


def _row_of_error(exc: actions.LabelingError, origin: list[int]) -> int | None:
    found = _CLASS_INDEX.search(exc.field)
    if found is None or int(found.group(1)) >= len(origin):
        return None
    return origin[int(found.group(1))]


def _with_blanks(rows: list[ClassRow]) -> list[ClassRow]:
    """Every class gets one empty attribute row and the list one empty class row: the editor grows by typing."""
    for row in rows:
        if not row.attributes or row.attributes[-1].name.strip():
            row.attributes.append(AttributeRow())
    if not rows or not rows[-1].blank:
        rows.append(ClassRow(attributes=[AttributeRow()]))
    return rows


@require_http_methods(["GET", "POST"])
@requires("project.manage")
def project_schema(request: HttpRequest, project_id: int) -> HttpResponse:
    """Edit the classes and their attributes and publish them as a new schema version ("More rows" only
    re-renders what was typed with room for more). Annotations keep the version they were made under."""
    user = _user(request)
    project, context = _project_page(request, project_id, "project.manage")
    current = project.current_schema()
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        rows = _rows_from(request.POST)
        if request.POST.get("op") == "publish":
            try:
                schema, origin = _schema_of(rows)
                if current is not None and _unchanged(schema, current.classes):
                    raise EditorError(f"nothing changed since version {current.number}", row=None)
                version = actions.publish_schema(user, project=project, schema=schema)
            except EditorError as exc:
                if exc.row is None:
                    errors.append(str(exc))
                else:
                    rows[exc.row].error = str(exc)
                    errors.append(f"{rows[exc.row].name or 'A class'}: {exc}")
            except actions.LabelingError as exc:
                row = _row_of_error(exc, origin)
                if row is not None:
                    rows[row].error = str(exc)
                errors.append(str(exc))
            else:
                messages.success(request, f"Published schema version {version.number} of {project.name}.")
                return redirect("projects:schema", project_id=project.pk)
            status = 400
    else:
        rows = _rows_of(current.classes) if current else []
    rows = _with_blanks(rows)
    versions = list(project.schema_versions.select_related("created_by").order_by("-number"))
    context |= {
        "rows": rows,
        "kinds": ATTRIBUTE_KINDS,
        "errors": errors,
        "current": current,
        "versions": [(v, ", ".join(entry["name"] for entry in v.classes)) for v in versions],
    }
    return render(request, "labeling/manage/schema.html", context, status=status)


# --- assignment -------------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@requires("project.manage")
def project_assign(request: HttpRequest, project_id: int) -> HttpResponse:
    """Hand tasks to analysts: every unassigned task or the ones ticked, to one person or round-robin among
    those ticked (all who may label, when nobody is)."""
    user = _user(request)
    project, context = _project_page(request, project_id, "project.manage")
    labelers = actions.labelers_of(project)
    error = ""
    if request.method == "POST":
        chosen = set(request.POST.getlist("people"))
        people = [person for person in labelers if person.get_username() in chosen]
        unknown = chosen - {person.get_username() for person in people}
        raw_tasks = request.POST.getlist("tasks")
        selected = request.POST.get("scope") == "selected"
        round_robin = request.POST.get("mode", "round_robin") == "round_robin"
        try:
            if unknown:
                raise actions.LabelingError(f"{sorted(unknown)[0]} may not label this project", field="assignees")
            if selected and not all(raw.isdigit() for raw in raw_tasks):
                raise actions.LabelingError("the tasks ticked are not task numbers", field="task_ids")
            given = actions.assign_tasks(
                user,
                project=project,
                task_ids=[int(raw) for raw in raw_tasks] if selected else None,
                assignees=people,
                round_robin=round_robin,
            )
        except actions.LabelingError as exc:
            error = str(exc)
        else:
            summary = ", ".join(f"{name} {len(pks)}" for name, pks in given.items() if pks)
            messages.success(request, f"Assigned {sum(len(p) for p in given.values())} task(s): {summary}.")
            return redirect("projects:detail", project_id=project.pk)
    datasets = visible(project.datasets.all(), user, "dataset.view").values_list("pk", flat=True)
    page = tasks_of(
        project, datasets=list(datasets), after=_after(request), limit=TASK_PAGE_SIZE, states=EDITABLE_STATES
    )
    context |= {
        "labelers": labelers,
        "tasks": page.items,
        "next_after": page.next_after,
        "error": error,
        "unassigned": progress_of(project).unassigned,
    }
    return render(request, "labeling/manage/assign.html", context, status=400 if error else 200)
