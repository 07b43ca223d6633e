"""Per-annotation review remarks, accepting a model's proposal, and the canvas pages' queues and modes.

A rejection may carry remarks on single annotations (at the version reviewed) besides, or instead of, a remark
on the whole task; the task's state returns the latest round's remarks, which is what the canvas shows the
analyst. A proposal (source=model) is confirmed by "accept" as it is or by an edit; either makes it human and
keeps the model's name and confidence, so the revisions tell how the model did.

STIG: V-222425 (enforce approved authorizations: the review queue and the page's mode follow the policy),
separation of duties (AC-5: a reviewer's own work never appears in their queue).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from appliance.labeling.actions import (
    LabelingError,
    next_task,
    review_task,
    save_annotations,
    submit_task,
)
from appliance.labeling.models import Annotation, AnnotationRevision, ReviewComment, Task, TaskState
from appliance.labeling.selectors import tasks_to_review
from tests.conftest import sign_in
from tests.labeling.conftest import Crew, box, denials, post, records


def _submitted(crew: Crew, *changes: dict[str, Any]) -> Task:
    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    saved = save_annotations(
        crew.analyst, task=task, changes=list(changes) or [box(), box(x=40)], task_version=task.version
    )
    return submit_task(crew.analyst, task=saved.task)


def _proposal(**extra: Any) -> dict[str, Any]:
    return box(source="model", model_ref="layout-cdla@1", confidence=0.83) | extra


# --- remarks per annotation --------------------------------------------------------------------------------------


def test_a_rejection_with_remarks_on_annotations_stores_them_at_the_version_reviewed(crew: Crew) -> None:
    task = _submitted(crew)
    _first, second = Annotation.objects.filter(task=task).order_by("id")
    review_task(
        crew.reviewer,
        task=task,
        decision="reject",
        annotation_comments=[{"annotation": second.pk, "text": " too wide "}],
    )
    [remark] = ReviewComment.objects.filter(task=task)
    assert (remark.annotation_id, remark.annotation_version, remark.text) == (second.pk, 1, "too wide")
    assert (remark.author, remark.round) == (crew.reviewer, Task.objects.get(pk=task.pk).version)
    [entry] = records("task.reject")
    assert entry["details"]["annotation_comments"] == [{"annotation": second.pk, "version": 1, "text": "too wide"}]


def test_the_task_state_carries_the_latest_rounds_remarks(client: Client, crew: Crew) -> None:
    task = _submitted(crew)
    first = Annotation.objects.filter(task=task).order_by("id").first()
    assert first is not None
    review_task(crew.reviewer, task=task, decision="reject", comments="first round")
    again = next_task(crew.analyst, project=crew.project)
    assert again is not None
    assert again.pk == task.pk
    submit_task(crew.analyst, task=again)
    review_task(
        crew.reviewer,
        task=Task.objects.get(pk=task.pk),
        decision="reject",
        comments="second round",
        annotation_comments=[{"annotation": first.pk, "text": "the bow"}],
    )
    sign_in(client, crew.analyst)
    state = client.get(f"/api/projects/{crew.project.pk}/tasks/{task.pk}").json()
    remarks = {(c["annotation"], c["text"], c["author"]) for c in state["comments"]}
    assert remarks == {(first.pk, "the bow", "rev"), (None, "second round", "rev")}
    assert ReviewComment.objects.filter(task=task).count() == 3  # the first round stays on record


@pytest.mark.parametrize(
    ("remarks", "field"),
    [
        pytest.param(
            [{"annotation": 999999, "text": "x"}], "annotation_comments[0].annotation", id="unknown-annotation"
        ),
        pytest.param([{"annotation": "first", "text": ""}], "annotation_comments[0].text", id="empty-text"),
        pytest.param([{"annotation": "first", "text": "x" * 4001}], "annotation_comments[0].text", id="too-long"),
        pytest.param("not a list", "annotation_comments", id="not-a-list"),
    ],
)
def test_bad_remarks_are_refused_and_nothing_changes(client: Client, crew: Crew, remarks: Any, field: str) -> None:
    task = _submitted(crew)
    first = Annotation.objects.filter(task=task).order_by("id").first()
    assert first is not None
    if isinstance(remarks, list):
        remarks = [{**r, "annotation": first.pk} if r["annotation"] == "first" else r for r in remarks]
    sign_in(client, crew.reviewer)
    url = f"/api/projects/{crew.project.pk}/tasks/{task.pk}/review"
    response = post(client, url, {"decision": "reject", "comments": "see remarks", "annotation_comments": remarks})
    assert response.status_code == 400, response.content
    assert field in response.json() or "annotation_comments" in response.json()
    assert Task.objects.get(pk=task.pk).state == TaskState.SUBMITTED
    assert not ReviewComment.objects.exists()
    assert records("task.reject") == []


def test_a_remark_on_an_annotation_of_another_task_is_refused(crew: Crew) -> None:
    task = _submitted(crew)
    other = next_task(crew.second, project=crew.project)
    assert other is not None
    elsewhere = save_annotations(crew.second, task=other, changes=[box()], task_version=other.version).created[0]
    with pytest.raises(LabelingError, match="no annotation"):
        review_task(
            crew.reviewer, task=task, decision="reject", annotation_comments=[{"annotation": elsewhere.pk, "text": "x"}]
        )


def test_a_rejection_needs_a_remark_somewhere(crew: Crew) -> None:
    task = _submitted(crew)
    with pytest.raises(LabelingError, match="say what to fix"):
        review_task(crew.reviewer, task=task, decision="reject", comments="  ", annotation_comments=[])


# --- proposals -----------------------------------------------------------------------------------------------------


def test_accepting_a_proposal_makes_it_human_and_keeps_its_provenance(crew: Crew) -> None:
    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    saved = save_annotations(crew.analyst, task=task, changes=[_proposal()], task_version=task.version)
    proposal = saved.created[0]
    accepted = save_annotations(
        crew.analyst,
        task=saved.task,
        changes=[{"op": "accept", "id": proposal.pk, "version": 1}],
        task_version=saved.task.version,
    )
    stored = Annotation.objects.get(pk=proposal.pk)
    assert (stored.source, stored.model_ref, stored.confidence, stored.version) == ("human", "layout-cdla@1", 0.83, 2)
    assert stored.geometry == proposal.geometry
    assert accepted.updated == [stored]
    revision = AnnotationRevision.objects.get(annotation=stored, version=2)
    assert (revision.before["source"], revision.after["source"]) == ("model", "human")
    assert revision.before["geometry"] == revision.after["geometry"]


def test_editing_a_proposal_confirms_it_as_edited(crew: Crew) -> None:
    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    saved = save_annotations(crew.analyst, task=task, changes=[_proposal()], task_version=task.version)
    proposal = saved.created[0]
    change = {"op": "update", "id": proposal.pk, "version": 1, "kind": "box", "geometry": [12, 10, 20, 10]}
    save_annotations(
        crew.analyst, task=saved.task, changes=[change | {"class_name": "vessel"}], task_version=saved.task.version
    )
    stored = Annotation.objects.get(pk=proposal.pk)
    assert (stored.source, stored.model_ref, stored.geometry) == ("human", "layout-cdla@1", [12.0, 10.0, 20.0, 10.0])


def test_only_a_proposal_can_be_accepted_and_a_refusal_writes_nothing(crew: Crew) -> None:
    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    saved = save_annotations(crew.analyst, task=task, changes=[box()], task_version=task.version)
    human = saved.created[0]
    with pytest.raises(LabelingError, match="only a model's proposal"):
        save_annotations(
            crew.analyst,
            task=saved.task,
            changes=[{"op": "accept", "id": human.pk, "version": 1}],
            task_version=saved.task.version,
        )
    assert Annotation.objects.get(pk=human.pk).version == 1
    assert len(records("annotation.save")) == 1


# --- queues and pages ------------------------------------------------------------------------------------------------


def test_the_review_queue_leaves_out_the_reviewers_own_work(crew: Crew) -> None:
    theirs = _submitted(crew)
    task = next_task(crew.reviewer, project=crew.project)  # a reviewer may label too
    assert task is not None
    saved = save_annotations(crew.reviewer, task=task, changes=[box()], task_version=task.version)
    own = submit_task(crew.reviewer, task=saved.task)
    assert list(tasks_to_review(crew.reviewer, crew.project)) == [theirs]
    assert list(tasks_to_review(crew.second, crew.project)) == []  # an analyst has no review permission
    assert own.state == TaskState.SUBMITTED
    assert list(tasks_to_review(crew.owner, crew.project)) == []  # a manager may not review


def test_open_next_locks_a_task_and_opens_its_canvas(client: Client, crew: Crew) -> None:
    sign_in(client, crew.analyst)
    page = client.get(f"/projects/{crew.project.pk}/next")
    assert page.status_code == 200
    assert b"Open my next task" in page.content
    response = client.post(f"/projects/{crew.project.pk}/next")
    task = Task.objects.get(lock_holder=crew.analyst)
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{crew.project.pk}/tasks/{task.pk}/"
    canvas = client.get(response["Location"])
    assert canvas.status_code == 200
    assert b'data-mode="edit"' in canvas.content
    assert b"labeling/canvas/main.js" in canvas.content
    assert b"SECRET//ALPHA" in canvas.content


def test_the_canvas_page_mode_follows_the_policy_and_the_state(client: Client, crew: Crew) -> None:
    task = _submitted(crew)
    url = f"/projects/{crew.project.pk}/tasks/{task.pk}/"
    for user, mode in ((crew.reviewer, b"review"), (crew.analyst, b"view"), (crew.owner, b"view")):
        sign_in(client, user)
        assert b'data-mode="' + mode + b'"' in client.get(url).content, user.username


@pytest.mark.parametrize("who", ["low_clearance", "no_compartment", "not_member", "not_dataset_member"])
def test_a_hidden_task_page_is_an_audited_404(client: Client, crew: Crew, who: str) -> None:
    task = crew.project.tasks.order_by("id").first()
    assert task is not None
    sign_in(client, getattr(crew, who))
    assert client.get(f"/projects/{crew.project.pk}/tasks/{task.pk}/").status_code == 404
    assert denials()[-1]["details"]["gate"] in ("label", "membership")


def test_review_next_opens_the_oldest_submitted_task_not_ones_own(client: Client, crew: Crew) -> None:
    task = _submitted(crew)
    sign_in(client, crew.reviewer)
    response = client.post(f"/projects/{crew.project.pk}/review-next")
    assert response.status_code == 302
    assert response["Location"].endswith(f"/tasks/{task.pk}/")
    sign_in(client, crew.analyst)
    assert client.post(f"/projects/{crew.project.pk}/review-next").status_code == 404  # no review permission


def test_the_plain_rows_of_a_task_are_what_the_serializer_gives(crew: Crew) -> None:
    from appliance.labeling.selectors import annotations_of
    from appliance.labeling.serializers import AnnotationOut, annotation_rows

    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    save_annotations(crew.analyst, task=task, changes=[box(), _proposal(x=40)], task_version=task.version)
    assert annotation_rows(annotations_of(task)) == AnnotationOut(annotations_of(task), many=True).data


def test_saving_renews_the_hold_on_the_task(crew: Crew) -> None:
    task = next_task(crew.analyst, project=crew.project)
    assert task is not None
    Task.objects.filter(pk=task.pk).update(locked_until=task.locked_until - timedelta(minutes=29))  # type: ignore[operator]
    saved = save_annotations(
        crew.analyst, task=Task.objects.get(pk=task.pk), changes=[box()], task_version=task.version
    )
    assert saved.task.lock_holder == crew.analyst
    assert saved.task.locked_until >= task.locked_until  # type: ignore[operator]
    assert next_task(crew.second, project=crew.project).pk != task.pk  # type: ignore[union-attr]


def test_previous_goes_back_to_the_analysts_own_earlier_task(client: Client, crew: Crew) -> None:
    first = _submitted(crew)
    second = next_task(crew.analyst, project=crew.project)
    assert second is not None
    assert second.pk != first.pk
    sign_in(client, crew.analyst)
    response = client.get(f"/projects/{crew.project.pk}/tasks/{second.pk}/previous")
    assert response["Location"] == f"/projects/{crew.project.pk}/tasks/{first.pk}/"
    response = client.get(f"/projects/{crew.project.pk}/tasks/{first.pk}/previous")
    assert response["Location"] == f"/projects/{crew.project.pk}/tasks/{first.pk}/"  # the first: stays
    sign_in(client, crew.second)  # someone else's earlier task is never "previous"
    theirs = next_task(crew.second, project=crew.project)
    assert theirs is not None
    response = client.get(f"/projects/{crew.project.pk}/tasks/{theirs.pk}/previous")
    assert response["Location"] == f"/projects/{crew.project.pk}/tasks/{theirs.pk}/"
