"""The exchange cast: the labeling crew's SECRET//ALPHA project with annotations of every kind saved through the
real labeling action, two managers who may export it (one to request, one to approve), and managers refused by
each gate. Nothing is mocked: images are real PNGs imported through the API, exports go through the vault.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import pytest

from appliance.accounts.models import User
from appliance.datasets.actions import add_member
from appliance.exchange.actions import create_export
from appliance.exchange.jobs import execute_export, read_export
from appliance.exchange.models import Export
from appliance.labeling.actions import add_project_member, save_annotations
from appliance.labeling.models import Task
from tests.datasets.conftest import person
from tests.labeling.conftest import Crew, build_crew

CHANGES = [
    {
        "op": "create",
        "kind": "box",
        "geometry": [10.0, 12.0, 20.5, 8.0],
        "class_name": "vessel",
        "attributes": {"moored": True, "type": "tanker", "length": 120},
    },
    {"op": "create", "kind": "rotated_box", "geometry": [60.0, 30.0, 24.0, 6.0, 30.0], "class_name": "vessel"},
    {
        "op": "create",
        "kind": "polygon",
        "geometry": [[5.0, 50.0], [30.0, 40.0], [40.0, 60.0]],
        "class_name": "building",
    },
    {"op": "create", "kind": "polyline", "geometry": [[0.0, 0.0], [95.0, 63.0]], "class_name": "building"},
    {"op": "create", "kind": "points", "geometry": [[48.0, 32.0]], "class_name": "vessel"},
    {"op": "create", "kind": "tag", "geometry": None, "class_name": "building"},
]


@dataclass(frozen=True)
class Scene:
    crew: Crew
    requester: User  # manager, SECRET//ALPHA, member of project and dataset
    approver: User  # another such manager
    low_manager: User  # manager, CONFIDENTIAL: refused by the label gate
    outside_manager: User  # manager, SECRET//ALPHA, not a member: refused by need-to-know
    tasks: list[Task]


def build_scene() -> Scene:
    crew = build_crew()
    owner = crew.owner
    managers = {
        "requester": person("req", "manager", "SECRET", ["ALPHA"]),
        "approver": person("appr", "manager", "SECRET", ["ALPHA"]),
        "low_manager": person("lowmgr", "manager", "CONFIDENTIAL", ["ALPHA"]),
        "outside_manager": person("outmgr", "manager", "SECRET", ["ALPHA"]),
    }
    for key, user in managers.items():
        if key != "outside_manager":
            add_member(owner, dataset=crew.dataset, member=user)
            add_project_member(owner, project=crew.project, member=user)
    tasks = list(Task.objects.filter(project=crew.project).order_by("id"))
    save_annotations(crew.analyst, task=tasks[0], changes=CHANGES, task_version=tasks[0].version)
    tasks[1].refresh_from_db()
    save_annotations(crew.analyst, task=tasks[1], changes=CHANGES[:1], task_version=tasks[1].version)
    return Scene(crew=crew, tasks=tasks, **managers)


@pytest.fixture
def scene(db: None) -> Scene:
    return build_scene()


def finished_export(scene: Scene, fmt: str, *, include_images: bool = False) -> Export:
    export = create_export(scene.requester, project=scene.crew.project, format=fmt, include_images=include_images)
    return execute_export(export.pk)


def open_zip(export: Export) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(read_export(export)))
