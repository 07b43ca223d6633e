"""The analyst's and the reviewer's pages: the next task in the queue, and the annotation canvas of one task.

The canvas page itself carries no annotations: it names the task, the mode and the API addresses in data
attributes, and the ES modules under `static/labeling/canvas/` load the task through the same JSON API any other
client uses (so the browser is held to exactly the API's access checks, validation and audit). The page decides
the mode from the policy and the task's state: "edit" for an analyst on an editable task, "review" for a
reviewer on a submitted task that is not their own work, "view" otherwise.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from appliance.access.decision import decide
from appliance.access.markers import requires
from appliance.access.policy import get_policy
from appliance.accounts.models import User
from appliance.labeling import actions
from appliance.labeling.models import EDITABLE_STATES, Task, TaskState
from appliance.labeling.selectors import access_project, access_task, own_tasks, tasks_to_review
from appliance.web.context import mark_page


def _mode(user: User, task: Task) -> str:
    if task.state in EDITABLE_STATES and decide(user, "annotation.edit", task.item.dataset):
        return "edit"
    if task.state == TaskState.SUBMITTED and decide(user, "annotation.review", task.item.dataset):
        own = "annotation.review" in get_policy().not_on_own_work and user.pk in actions.authors_of(task)
        return "view" if own else "review"
    return "view"


@require_http_methods(["GET", "POST"])
@requires("annotation.edit")
def next_task(request: HttpRequest, project_id: int) -> HttpResponse:
    """GET: a page with the button; POST: lock the analyst's next task and open it (a lock is a state change)."""
    project = access_project(request.user, project_id, "annotation.edit")  # type: ignore[arg-type]
    mark_page(request, project.access_label())
    if request.method == "POST":
        task = actions.next_task(request.user, project=project)  # type: ignore[arg-type]
        if task is not None:
            return redirect("projects:task", project_id=project.pk, task_id=task.pk)
        messages.info(request, f"No task is waiting for you in {project.name}.")
    return render(request, "labeling/next.html", {"project": project, "purpose": "label"})


@require_http_methods(["GET", "POST"])
@requires("annotation.review")
def next_review(request: HttpRequest, project_id: int) -> HttpResponse:
    """GET: a page with the button; POST: open the oldest submitted task that is not the reviewer's own work."""
    project = access_project(request.user, project_id, "annotation.review")  # type: ignore[arg-type]
    mark_page(request, project.access_label())
    if request.method == "POST":
        task = tasks_to_review(request.user, project).first()  # type: ignore[arg-type]
        if task is not None:
            return redirect("projects:task", project_id=project.pk, task_id=task.pk)
        messages.info(request, f"Nothing in {project.name} is waiting for your review.")
    return render(request, "labeling/next.html", {"project": project, "purpose": "review"})


@require_GET
@requires("annotation.edit")
def previous_task(request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
    """Back to the analyst's previous task in this project (theirs, before this one): to look again or fix it."""
    task = access_task(request.user, project_id, task_id, "annotation.edit")  # type: ignore[arg-type]
    earlier = own_tasks(request.user, task.project).filter(pk__lt=task.pk).order_by("-pk").first()  # type: ignore[arg-type]
    if earlier is None:
        messages.info(request, "This is your first task in this project.")
        earlier = task
    return redirect("projects:task", project_id=task.project_id, task_id=earlier.pk)


@require_GET
@requires("dataset.view")
def task_page(request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
    task = access_task(request.user, project_id, task_id, "dataset.view")  # type: ignore[arg-type]
    mark_page(request, task.item.access_label())
    mark_page(request, task.project.access_label())
    return render(request, "labeling/task.html", {"task": task, "mode": _mode(request.user, task)})  # type: ignore[arg-type]
