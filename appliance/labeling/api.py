"""Labeling API: thin views that validate shape, call a selector or an action, and serialize the result.

Every view names its `required_permission` and is guarded by `PolicyPermission` (role gate, 401 for anonymous,
audited 404 for refusals); object gates run in the selectors and again in the actions. Projects are read under
"dataset.view" (a project is a working view of datasets, and the policy has no separate permission for it).
Bodies are JSON and capped: a body over `MAX_BODY_BYTES` is answered 413 before it is read.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from appliance.access.drf_views import FIELD_400, HIDDEN_404, Conflict, PermissionByMethod
from appliance.accounts.models import User
from appliance.labeling import actions, selectors
from appliance.labeling.selectors import (
    access_annotation,
    access_project,
    access_task,
    annotations_of,
    latest_review_comments,
    projects_visible_to,
    revisions_of,
)
from appliance.labeling.serializers import (
    AnnotationOut,
    CommentOut,
    ProjectCreateIn,
    ProjectOut,
    RestoreIn,
    ReviewIn,
    RevisionOut,
    SaveIn,
    SchemaIn,
    SchemaOut,
    TaskOut,
    annotation_rows,
)

MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"the request body is larger than {MAX_BODY_BYTES} bytes"
    default_code = "too_large"


class LabelingView(PermissionByMethod):
    """Permission per HTTP method (see PermissionByMethod), and the body cap, checked on the declared length
    before anything parses the body."""

    required_permission = "dataset.view"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            raise BodyTooLarge()


def _refused(exc: actions.LabelingError) -> APIException:
    """The action's refusal as the answer that fits it: 409 for a task's state, 403 for own work, else 400."""
    detail = {exc.field or "non_field_errors": [str(exc)]}
    if isinstance(exc, actions.TaskConflict):
        return Conflict(detail)
    if isinstance(exc, actions.OwnWork):
        return PermissionDenied(detail)
    return ValidationError(detail)


TASK_STATE = inline_serializer(
    "TaskState",
    {
        "task": TaskOut(),
        "annotations": AnnotationOut(many=True),
        "schema": SchemaOut(allow_null=True),
        "comments": CommentOut(many=True),
    },
)


SAVE_RESULT = inline_serializer(
    "SaveResult",
    {
        "task": TaskOut(),
        "annotations": AnnotationOut(many=True),
        "created": serializers.ListField(child=serializers.IntegerField()),
        "updated": serializers.ListField(child=serializers.IntegerField()),
        "deleted": serializers.ListField(child=serializers.IntegerField()),
    },
)


def _task_state(task: Any) -> dict[str, Any]:
    schema = task.project.current_schema()
    return {
        "task": TaskOut(task).data,
        "annotations": annotation_rows(annotations_of(task)),
        "schema": SchemaOut(schema).data if schema else None,
        "comments": CommentOut(latest_review_comments(task), many=True).data,
    }


class ProjectCollectionView(LabelingView):
    """GET: the projects the caller may see; POST: create one ("project.create")."""

    required_permission = "dataset.view"
    permission_by_method: ClassVar[dict[str, str]] = {"POST": "project.create"}

    @extend_schema(
        operation_id="projects_list",
        responses={200: inline_serializer("ProjectList", {"results": ProjectOut(many=True)})},
    )
    def get(self, request: Request) -> Response:
        projects = projects_visible_to(request.user)  # type: ignore[arg-type]
        return Response({"results": ProjectOut(projects, many=True).data})

    @extend_schema(request=ProjectCreateIn, responses={201: ProjectOut, 400: FIELD_400})
    def post(self, request: Request) -> Response:
        given = ProjectCreateIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            project = actions.create_project(request.user, **given.validated_data)  # type: ignore[arg-type]
        except actions.LabelingError as exc:
            raise _refused(exc) from exc
        return Response(ProjectOut(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(LabelingView):
    required_permission = "dataset.view"

    @extend_schema(responses={200: ProjectOut, 404: HIDDEN_404})
    def get(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        schema = project.current_schema()
        return Response(ProjectOut(project).data | {"schema": SchemaOut(schema).data if schema else None})


class SchemaView(LabelingView):
    """POST: publish a new schema version."""

    required_permission = "project.manage"

    @extend_schema(request=SchemaIn, responses={201: SchemaOut, 400: FIELD_400, 404: HIDDEN_404})
    def post(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        given = SchemaIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            version = actions.publish_schema(request.user, project=project, schema=given.validated_data["schema"])  # type: ignore[arg-type]
        except actions.LabelingError as exc:
            raise _refused(exc) from exc
        return Response(SchemaOut(version).data, status=status.HTTP_201_CREATED)


class TaskCollectionView(LabelingView):
    """POST: one task per item of the project's datasets (idempotent)."""

    required_permission = "project.manage"

    @extend_schema(
        request=None,
        responses={200: inline_serializer("TasksCreated", {"created": serializers.IntegerField()}), 404: HIDDEN_404},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        created = actions.create_tasks(request.user, project=project)  # type: ignore[arg-type]
        return Response({"created": created}, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class NextTaskView(LabelingView):
    """POST: lock and return the caller's next task; 404 with a plain message when the queue is empty."""

    required_permission = "annotation.edit"

    @extend_schema(request=None, responses={200: TASK_STATE, 404: HIDDEN_404})
    def post(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        task = actions.next_task(request.user, project=project)  # type: ignore[arg-type]
        if task is None:
            raise NotFound("no task is waiting for you in this project")
        return Response(_task_state(task))


class TaskDetailView(LabelingView):
    """GET: the task, its live annotations and the project's current schema: everything the canvas loads."""

    required_permission = "dataset.view"

    @extend_schema(responses={200: TASK_STATE, 404: HIDDEN_404})
    def get(self, request: Request, project_id: int, task_id: int) -> Response:
        task = access_task(request.user, project_id, task_id, self.required_permission)  # type: ignore[arg-type]
        return Response(_task_state(task))


class AnnotationSaveView(LabelingView):
    """POST: the batch save; 409 with the current state when a version edited is no longer current."""

    required_permission = "annotation.edit"

    @extend_schema(
        request=SaveIn,
        responses={
            200: SAVE_RESULT,
            400: FIELD_400,
            404: HIDDEN_404,
            409: OpenApiResponse(description="a version edited is stale: the body holds the current state"),
            413: OpenApiResponse(description="the body is over the cap"),
        },
    )
    def post(self, request: Request, project_id: int, task_id: int) -> Response:
        task = access_task(request.user, project_id, task_id, self.required_permission)  # type: ignore[arg-type]
        given = SaveIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            result = actions.save_annotations(request.user, task=task, **given.validated_data)  # type: ignore[arg-type]
        except actions.StaleVersion as exc:
            body = {
                "detail": str(exc),
                "code": "stale",
                "task": TaskOut(exc.task).data,
                "annotations": AnnotationOut(exc.annotations, many=True).data,
            }
            return Response(body, status=status.HTTP_409_CONFLICT)
        except actions.LabelingError as exc:
            raise _refused(exc) from exc
        # What changed, not the whole task: a dense image holds thousands of annotations, and the client has them.
        return Response(
            {
                "task": TaskOut(result.task).data,
                "annotations": AnnotationOut(result.created + result.updated, many=True).data,
                "created": [a.pk for a in result.created],
                "updated": [a.pk for a in result.updated],
                "deleted": [a.pk for a in result.deleted],
            }
        )


class SubmitView(LabelingView):
    required_permission = "annotation.edit"

    @extend_schema(
        request=None, responses={200: TaskOut, 404: HIDDEN_404, 409: OpenApiResponse(description="not editable")}
    )
    def post(self, request: Request, project_id: int, task_id: int) -> Response:
        task = access_task(request.user, project_id, task_id, self.required_permission)  # type: ignore[arg-type]
        try:
            task = actions.submit_task(request.user, task=task)  # type: ignore[arg-type]
        except actions.LabelingError as exc:
            raise _refused(exc) from exc
        return Response(TaskOut(task).data)


class ReviewView(LabelingView):
    required_permission = "annotation.review"

    @extend_schema(
        request=ReviewIn,
        responses={200: TaskOut, 400: FIELD_400, 403: OpenApiResponse(description="own work"), 404: HIDDEN_404},
    )
    def post(self, request: Request, project_id: int, task_id: int) -> Response:
        task = access_task(request.user, project_id, task_id, self.required_permission)  # type: ignore[arg-type]
        given = ReviewIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            task = actions.review_task(request.user, task=task, **given.validated_data)  # type: ignore[arg-type]
        except actions.LabelingError as exc:
            raise _refused(exc) from exc
        return Response(TaskOut(task).data)


class RevisionsView(LabelingView):
    required_permission = "dataset.view"

    @extend_schema(
        operation_id="projects_annotation_revisions_list",
        responses={200: inline_serializer("RevisionList", {"results": RevisionOut(many=True)}), 404: HIDDEN_404},
    )
    def get(self, request: Request, project_id: int, task_id: int, annotation_id: int) -> Response:
        annotation = access_annotation(request.user, project_id, task_id, annotation_id, self.required_permission)  # type: ignore[arg-type]
        return Response({"results": RevisionOut(revisions_of(annotation), many=True).data})


class RestoreView(LabelingView):
    required_permission = "annotation.edit"

    @extend_schema(request=RestoreIn, responses={200: AnnotationOut, 400: FIELD_400, 404: HIDDEN_404})
    def post(self, request: Request, project_id: int, task_id: int, annotation_id: int) -> Response:
        annotation = access_annotation(request.user, project_id, task_id, annotation_id, self.required_permission)  # type: ignore[arg-type]
        given = RestoreIn(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            restored = actions.restore_revision(request.user, annotation=annotation, **given.validated_data)  # type: ignore[arg-type]
        except actions.LabelingError as exc:
            raise _refused(exc) from exc
        return Response(AnnotationOut(restored).data)


class AssignIn(serializers.Serializer[dict[str, Any]]):
    task_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), allow_null=True, default=None, max_length=actions.MAX_ASSIGN
    )
    assignees = serializers.ListField(child=serializers.CharField(max_length=150), default=list, max_length=500)
    round_robin = serializers.BooleanField(default=False)


class AssignView(LabelingView):
    """POST: assign tasks (the listed ones, or every unassigned one) to one person or round-robin."""

    required_permission = "project.manage"

    @extend_schema(
        request=AssignIn,
        responses={
            200: inline_serializer(
                "Assigned",
                {"assigned": serializers.DictField(child=serializers.ListField(child=serializers.IntegerField()))},
            ),
            400: FIELD_400,
            404: HIDDEN_404,
            409: OpenApiResponse(description="a task listed is no longer to be labeled"),
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        given = AssignIn(data=request.data)
        given.is_valid(raise_exception=True)
        names = given.validated_data["assignees"]
        people = list(User.objects.filter(username__in=names))
        try:
            missing = sorted(set(names) - {person.get_username() for person in people})
            if missing:
                raise actions.LabelingError(f"there is no user {missing[0]!r}", field="assignees")
            assigned = actions.assign_tasks(
                request.user,  # type: ignore[arg-type]
                project=project,
                task_ids=given.validated_data["task_ids"],
                assignees=sorted(people, key=lambda person: names.index(person.get_username())),
                round_robin=given.validated_data["round_robin"],
            )
        except actions.LabelingError as exc:
            raise _refused(exc) from exc
        return Response({"assigned": assigned})


PER_STATE = serializers.DictField(child=serializers.IntegerField())


class ProgressView(LabelingView):
    """GET: tasks per state, and per analyst (the project's labelers, and anyone with tasks assigned)."""

    required_permission = "project.manage"

    @extend_schema(
        responses={
            200: inline_serializer(
                "Progress",
                {
                    "counts": PER_STATE,
                    "total": serializers.IntegerField(),
                    "unassigned": serializers.IntegerField(),
                    "analysts": inline_serializer(
                        "AnalystProgress",
                        {
                            "username": serializers.CharField(),
                            "assigned": serializers.IntegerField(),
                            "counts": PER_STATE,
                        },
                        many=True,
                    ),
                },
            ),
            404: HIDDEN_404,
        }
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = access_project(request.user, project_id, self.required_permission)  # type: ignore[arg-type]
        labelers = [person.get_username() for person in actions.labelers_of(project)]
        progress = selectors.progress_of(project, labelers=labelers)
        analysts = [{"username": a.username, "assigned": a.assigned, "counts": a.counts} for a in progress.analysts]
        body = {"counts": progress.counts, "total": progress.total, "unassigned": progress.unassigned}
        return Response(body | {"analysts": analysts})
