"""Submit and review: a submitted task is accepted or sent back to its analyst with comments; nobody reviews
their own work (the policy's `not_on_own_work`), and every state change is on the record.

STIG: V-222425 (enforce approved authorizations), separation of duties (AC-5).
"""

from __future__ import annotations

import pytest
from django.db.models import Q
from django.test import Client

from appliance.access.policy import get_policy
from appliance.auditlog.models import AuditRecord
from appliance.labeling.actions import OwnWork, TaskConflict, next_task, review_task, save_annotations, submit_task
from appliance.labeling.models import Annotation, Task, TaskState
from tests.conftest import sign_in
from tests.labeling.conftest import Crew, box, denials, post, records


@pytest.fixture
def submitted(crew: Crew) -> Task:
    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    saved = save_annotations(crew.analyst, task=task, changes=[box()], task_version=task.version)
    return submit_task(crew.analyst, task=saved.task)


def _review(client: Client, crew: Crew, task: Task, decision: str, comments: str = "") -> object:
    url = f"/api/projects/{crew.project.pk}/tasks/{task.pk}/review"
    return post(client, url, {"decision": decision, "comments": comments})


def test_a_submit_releases_the_lock_and_is_recorded(submitted: Task) -> None:
    assert (submitted.state, submitted.lock_holder, submitted.locked_until) == (TaskState.SUBMITTED, None, None)
    [entry] = records("task.submit")
    assert entry["details"]["annotations"] == 1


def test_a_submitted_task_can_no_longer_be_edited(crew: Crew, submitted: Task) -> None:
    with pytest.raises(TaskConflict):
        save_annotations(crew.analyst, task=submitted, changes=[box()], task_version=submitted.version)


def test_a_reviewer_accepts(client: Client, crew: Crew, submitted: Task) -> None:
    sign_in(client, crew.reviewer)
    response = _review(client, crew, submitted, "accept")
    assert response.status_code == 200, response.content  # type: ignore[attr-defined]
    submitted.refresh_from_db()
    assert (submitted.state, submitted.reviewed_by) == (TaskState.ACCEPTED, crew.reviewer)
    assert records("task.accept")[0]["actor"] == "rev"


def test_a_rejection_goes_back_to_the_analyst_with_its_comments(crew: Crew, submitted: Task) -> None:
    review_task(crew.reviewer, task=submitted, decision="reject", comments="the stern is cut off")
    assert next_task(crew.second, project=crew.project).pk != submitted.pk  # type: ignore[union-attr]
    back = next_task(crew.analyst, project=crew.project)
    assert back is not None
    assert back.pk == submitted.pk
    assert (back.state, back.review_comments) == (TaskState.IN_PROGRESS, "the stern is cut off")
    assert records("task.reject")[0]["details"]["comments"] == "the stern is cut off"
    fixed = save_annotations(crew.analyst, task=back, changes=[box(x=50)], task_version=back.version)
    again = submit_task(crew.analyst, task=fixed.task)
    assert review_task(crew.reviewer, task=again, decision="accept").state == TaskState.ACCEPTED


def test_a_rejection_needs_comments(crew: Crew, submitted: Task) -> None:
    with pytest.raises(ValueError, match="say what to fix"):
        review_task(crew.reviewer, task=submitted, decision="reject", comments=" ")


def test_nobody_reviews_their_own_work(client: Client, crew: Crew) -> None:
    assert "annotation.review" in get_policy().not_on_own_work
    task = next_task(crew.reviewer, project=crew.project)
    assert task is not None
    saved = save_annotations(crew.reviewer, task=task, changes=[box()], task_version=task.version)
    mine = submit_task(crew.reviewer, task=saved.task)
    sign_in(client, crew.reviewer)
    response = _review(client, crew, mine, "accept")
    assert response.status_code == 403  # type: ignore[attr-defined]
    [denial] = denials()
    assert denial["details"] == {"permission": "annotation.review", "gate": "own_work"}
    mine.refresh_from_db()
    assert mine.state == TaskState.SUBMITTED
    assert records("task.accept") == []


def test_the_last_editor_may_not_review_either(crew: Crew, submitted: Task) -> None:
    """The assignee is the analyst, but the reviewer was the last to touch one of the annotations."""
    Annotation.objects.filter(task=submitted).update(updated_by=crew.reviewer)
    with pytest.raises(OwnWork):
        review_task(crew.reviewer, task=submitted, decision="accept")


def test_an_analyst_may_not_review(client: Client, crew: Crew, submitted: Task) -> None:
    sign_in(client, crew.second)
    assert _review(client, crew, submitted, "accept").status_code == 404  # type: ignore[attr-defined]
    assert denials()[-1]["details"]["gate"] == "role"


def test_only_a_submitted_task_is_reviewed(client: Client, crew: Crew) -> None:
    task = Task.objects.filter(project=crew.project).first()
    sign_in(client, crew.reviewer)
    assert _review(client, crew, task, "accept").status_code == 409  # type: ignore[arg-type, attr-defined]


def test_a_bad_decision_is_a_400(client: Client, crew: Crew, submitted: Task) -> None:
    sign_in(client, crew.reviewer)
    response = _review(client, crew, submitted, "maybe")
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "decision" in response.json()  # type: ignore[attr-defined]


def test_only_the_assignee_submits(crew: Crew) -> None:
    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    Task.objects.filter(pk=task.pk).update(locked_until=None, lock_holder=None)
    with pytest.raises(TaskConflict, match="assigned to someone else"):
        submit_task(crew.second, task=task)


def test_every_state_change_of_a_round_trip_is_on_the_record(crew: Crew, submitted: Task) -> None:
    """From project creation to acceptance, each change left one record, in order, under the item's label."""
    review_task(crew.reviewer, task=submitted, decision="reject", comments="redo")
    back = next_task(crew.analyst, project=crew.project)
    assert back is not None
    again = submit_task(crew.analyst, task=back)
    review_task(crew.reviewer, task=again, decision="accept")
    changes = AuditRecord.objects.filter(Q(action__startswith="task.") | Q(action__startswith="annotation."))
    actions = [entry.action for entry in changes.order_by("seq")]
    assert actions == [
        "task.lock", "annotation.save", "task.submit", "task.reject", "task.lock", "task.submit", "task.accept",
    ]  # fmt: skip
    project_actions = [r.action for r in AuditRecord.objects.filter(action__startswith="project.").order_by("seq")]
    assert project_actions[:2] == ["project.create", "project.schema.publish"]
    assert "project.member.add" in project_actions
    assert project_actions[-1] == "project.tasks.create"
    for action in ("task.lock", "annotation.save", "task.submit", "task.reject", "task.accept"):
        assert all(entry["label"] == "SECRET//ALPHA" for entry in records(action))
