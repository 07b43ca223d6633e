"""Throughput of the batch save: 100 new box annotations per request through the real endpoint, against a bare DRF
insert of the same rows.

The acceptance rule: saving a batch of 100 annotations through `POST /api/projects/<p>/tasks/<t>/annotations`,
with everything on (the policy's role gate, the label and need-to-know gates on the project, the dataset and the
task, geometry and schema validation, the task's row lock and version check, one revision per annotation, one
audit record per batch, the task's whole state in the answer), must reach at least half the throughput of a bare
DRF view that writes the same 100 rows into the same `Annotation` table with a `ModelSerializer(many=True)` and
nothing else. The ratio is ours_rate / bare_rate in annotations per second; the goal is 0.5.

Set up once per run, in the benchmark database: a manager and an analyst (created directly, like the tests'
personas), a SECRET//ALPHA dataset of three real PNGs imported through the real import action (blob folder and KEK
in a temporary folder, removed afterwards), a project over it with a schema, its tasks, and the analyst's task
taken through `next_task`. Ours is `django.test.Client` signed in as the analyst (with the keys that a completed
sign-in leaves, as `tests.conftest.sign_in` sets them), so every request goes through the whole middleware stack.
The bare view is called directly through `APIRequestFactory` + `force_authenticate`, without the middleware, and
writes to another task of the same project, so that its rows do not grow the state the real endpoint reads and
answers with. Both sides run ROUNDS rounds of PER_ROUND requests, interleaved, alternating which side goes first.

The rows are left in place (the audit records are append-only, and annotations are never deleted by design); each
run uses fresh names, so runs do not collide. Run through the runner, which prepares the database:
`.venv/bin/python bench/run.py labeling_save`.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from django.conf import settings
from django.db import connection
from django.test import Client
from PIL import Image
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from appliance.accounts.models import User
from appliance.auditlog.context import AuditContext, audit_context
from appliance.datasets.actions import add_member, create_dataset
from appliance.datasets.imports import import_images
from appliance.datasets.models import Item
from appliance.labeling.actions import add_project_member, create_project, create_tasks, next_task
from appliance.labeling.models import Annotation, Task
from bench._common import BenchResult
from bench.import_memory import encode, isolated_vault

GOAL = 0.5
ROUNDS = 4
PER_ROUND = 10  # requests per side and round: 40 requests, 4,000 annotations per side in all
BATCH = 100
WARM_UP = 2  # requests per side before timing (first queries, caches, the policy)
IMAGE_SIZE = (640, 480)
CLASSES = ("vessel", "building")
SCHEMA: dict[str, Any] = {
    "classes": [
        {
            "name": "vessel",
            "colour": "#ff0000",
            "shortcut": "v",
            "attributes": [{"name": "moored", "kind": "checkbox"}],
        },
        {"name": "building", "colour": "#00ff00", "shortcut": "b", "attributes": []},
    ]
}


# ----------------------------------------------------------------------------------------------- the baseline


class BareAnnotationIn(serializers.ModelSerializer[Annotation]):
    """The same content fields the real save takes; the foreign keys come from the view (`save(**fixed)`)."""

    class Meta:
        model = Annotation
        fields = ("kind", "geometry", "class_name", "attributes")


class BareSave(APIView):
    """Bulk insert and nothing else: no access check, no content check beyond the serializer's, no revision, no
    audit record, no task state in the answer. Not routed: called directly with a forced user."""

    permission_classes: ClassVar[list[Any]] = []
    authentication_classes: ClassVar[list[Any]] = []
    fixed: ClassVar[dict[str, Any]] = {}

    def post(self, request: Request, task_id: int) -> Response:
        given = BareAnnotationIn(data=request.data["changes"], many=True)
        given.is_valid(raise_exception=True)
        rows = given.save(task_id=task_id, **self.fixed)
        return Response({"created": [row.pk for row in rows]}, status=status.HTTP_201_CREATED)


# ---------------------------------------------------------------------------------------------------- set-up


def _person(username: str, role: str, clearance: str) -> User:
    return User.objects.create(username=username, roles=[role], clearance=clearance, compartments=["ALPHA"])


def _png(seed: int) -> bytes:
    rng = random.Random(seed)
    width, height = IMAGE_SIZE
    return encode(Image.frombytes("RGB", IMAGE_SIZE, rng.randbytes(width * height * 3)), "PNG")


def _sign_in(client: Client, user: User) -> None:
    """The state a completed sign-in leaves, as `tests.conftest.sign_in` sets it."""
    client.force_login(user)
    store = client.session
    now = time.time()
    store["auth_time"] = now
    store["last_seen"] = now
    store["audit_session"] = f"bench-{user.username}"
    store.save()


class Stage:
    """Everything both sides need, built once through the real actions."""

    def __init__(self, run_id: str) -> None:
        manager = _person(f"bench-save-manager-{run_id}", "manager", "TOP SECRET")
        self.analyst = _person(f"bench-save-analyst-{run_id}", "analyst", "SECRET")
        context = AuditContext(component="system", actor=manager.username, roles=("manager",))
        with audit_context(context):
            dataset = create_dataset(
                manager, name=f"bench save {run_id}", classification="SECRET", compartments=["ALPHA"]
            )
            images = [(f"harbour-{seed}.png", _png(seed)) for seed in range(3)]
            import_images(manager, dataset=dataset, files=[(name, lambda data=data: data) for name, data in images])
            self.project = create_project(manager, name=f"bench save {run_id}", dataset_ids=[dataset.pk], schema=SCHEMA)
            add_member(manager, dataset=dataset, member=self.analyst)
            add_project_member(manager, project=self.project, member=self.analyst)
            create_tasks(manager, project=self.project)
        analyst_context = AuditContext(component="system", actor=self.analyst.username, roles=("analyst",))
        with audit_context(analyst_context):
            taken = next_task(self.analyst, project=self.project)
        if taken is None:
            raise SystemExit("labeling_save: the analyst was handed no task")
        self.task = taken
        self.task_version = taken.version
        self.bare_task = Task.objects.filter(project=self.project).exclude(pk=taken.pk).order_by("id").first()
        schema = self.project.current_schema()
        assert self.bare_task is not None
        assert schema is not None
        item = Item.objects.get(pk=taken.item_id)
        self.width, self.height = item.width, item.height
        self.client = Client(HTTP_HOST=settings.ALLOWED_HOSTS[0])
        _sign_in(self.client, self.analyst)
        self.url = f"/api/projects/{self.project.pk}/tasks/{taken.pk}/annotations"
        self.factory = APIRequestFactory()
        self.bare_view = BareSave.as_view(
            fixed={"schema_version": schema, "created_by": self.analyst, "updated_by": self.analyst}
        )
        self.sent = 0

    def changes(self) -> list[dict[str, Any]]:
        """BATCH new boxes inside the image, each a little different from the last."""
        out = []
        for index in range(BATCH):
            n = self.sent + index
            w, h = 8 + n % 40, 6 + n % 30
            x, y = (n * 7) % (self.width - w), (n * 11) % (self.height - h)
            name = CLASSES[n % 2]
            attributes = {"moored": n % 3 == 0} if name == "vessel" else {}
            out.append({"op": "create", "kind": "box", "geometry": [x, y, w, h], "class_name": name,
                        "attributes": attributes})  # fmt: skip
        self.sent += BATCH
        return out

    def ours(self) -> None:
        body = json.dumps({"task_version": self.task_version, "changes": self.changes()})
        response = self.client.post(self.url, data=body, content_type="application/json")
        if response.status_code != status.HTTP_200_OK:
            raise SystemExit(f"labeling_save: the save answered {response.status_code}: {response.content[:500]!r}")
        answer = response.json()
        if len(answer["created"]) != BATCH:
            raise SystemExit(f"labeling_save: the save created {len(answer['created'])} annotations, not {BATCH}")
        self.task_version = answer["task"]["version"]

    def bare(self) -> None:
        request = self.factory.post("/bare", {"changes": self.changes()}, format="json")
        force_authenticate(request, user=self.analyst)
        response = self.bare_view(request, task_id=self.bare_task.pk)  # type: ignore[union-attr]
        if response.status_code != status.HTTP_201_CREATED or len(response.data["created"]) != BATCH:
            raise SystemExit(f"labeling_save: the bare insert answered {response.status_code}: {response.data!r}")


# ------------------------------------------------------------------------------------------------ measuring


def _timed(call: Any, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        call()
    return time.perf_counter() - started


def run() -> list[BenchResult]:
    if connection.vendor != "postgresql":
        raise SystemExit("labeling_save measures PostgreSQL: set DATABASE_URL=postgres://...")
    run_id = uuid.uuid4().hex[:8]
    vault = Path(tempfile.mkdtemp(prefix="appliance-bench-vault-"))
    try:
        with isolated_vault(vault):
            stage = Stage(run_id)
            _timed(stage.ours, WARM_UP)
            _timed(stage.bare, WARM_UP)
            ours_seconds = bare_seconds = 0.0
            for round_ in range(ROUNDS):
                # Alternate which side goes first, so neither always runs on the warmer side of a round.
                if round_ % 2 == 0:
                    bare_seconds += _timed(stage.bare, PER_ROUND)
                    ours_seconds += _timed(stage.ours, PER_ROUND)
                else:
                    ours_seconds += _timed(stage.ours, PER_ROUND)
                    bare_seconds += _timed(stage.bare, PER_ROUND)
            live = Annotation.objects.filter(task=stage.task, deleted=False).count()
    finally:
        shutil.rmtree(vault, ignore_errors=True)
    requests = ROUNDS * PER_ROUND
    total = requests * BATCH
    ours_rate, bare_rate = total / ours_seconds, total / bare_seconds
    return [
        BenchResult(
            name="labeling_save",
            ratio=ours_rate / bare_rate,
            goal=GOAL,
            figures={
                "ours": f"{ours_rate:.0f}/s",
                "bare": f"{bare_rate:.0f}/s",
                "ours_ms": f"{1000 * ours_seconds / requests:.1f}",
                "bare_ms": f"{1000 * bare_seconds / requests:.1f}",
                "batch": str(BATCH),
                "n": str(total),
                "task_live_at_end": str(live),
                "db": connection.vendor,
            },
        )
    ]
