"""Imports: exports come back exactly; images match by name or by SHA-256; a dry run only reports; any bad input
(malformed, entity tricks, unknown classes, shapes outside the image, a huge file with the wrong header) is refused
naming the file and element, and changes nothing.

STIG: V-222606 (all input validated), V-222608 (no XML-oriented attacks: external entities refused), V-222593
(XML entity-expansion DoS refused by parser options), V-222609 (a huge mislabeled upload is refused from its
header), V-222474 (the import is on the record with the file's digest).
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from appliance.access.denial import AccessDenied
from appliance.exchange.actions import ExchangeError, import_annotations
from appliance.exchange.jobs import read_export
from appliance.exchange.models import ExportFormat
from appliance.labeling.actions import create_project, create_tasks
from appliance.labeling.models import Annotation, AnnotationRevision, Project, Task
from tests.exchange.conftest import Scene, finished_export
from tests.labeling.conftest import SCHEMA, records

CARRIED = {
    ExportFormat.COCO: {"box", "rotated_box", "polygon"},
    ExportFormat.CVAT: {"box", "rotated_box", "polygon", "polyline", "points", "tag"},
    ExportFormat.VOC: {"box"},
    ExportFormat.YOLO_DETECT: {"box"},
    ExportFormat.YOLO_OBB: {"box", "rotated_box"},
    ExportFormat.YOLO_SEGMENT: {"polygon"},
}


def _fresh_project(scene: Scene, name: str = "harbour again") -> Project:
    project = create_project(scene.crew.owner, name=name, dataset_ids=[scene.crew.dataset.pk], schema=SCHEMA)
    create_tasks(scene.crew.owner, project=project)
    return project


def _content(project: Project) -> list[tuple[str, str, Any, str, Any]]:
    rows = Annotation.objects.filter(task__project=project, deleted=False).order_by("task__item_id", "id")
    return [(a.task.item.name, a.kind, a.geometry, a.class_name, a.attributes) for a in rows]


def _state(project: Project) -> tuple[int, int, list[int]]:
    return (
        Annotation.objects.filter(task__project=project).count(),
        AnnotationRevision.objects.filter(annotation__task__project=project).count(),
        list(Task.objects.filter(project=project).order_by("id").values_list("version", flat=True)),
    )


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a))
    return bool(a == b)


@pytest.mark.parametrize("fmt", list(CARRIED))
def test_an_export_imports_back_into_another_project_exactly(scene: Scene, fmt: str) -> None:
    data = read_export(finished_export(scene, fmt))
    target = _fresh_project(scene)
    summary = import_annotations(
        scene.crew.owner, project=target, format=fmt, stream=io.BytesIO(data), file_name="export.zip"
    )
    keeps_attributes = fmt in (ExportFormat.COCO, ExportFormat.CVAT, ExportFormat.VOC)
    expected = [
        (name, kind, geometry, class_name, attributes if keeps_attributes else {})
        for name, kind, geometry, class_name, attributes in _content(scene.crew.project)
        if kind in CARRIED[fmt]
    ]
    got = _content(target)
    assert summary["create"] == len(expected)
    assert len(got) == len(expected)
    for want, have in zip(sorted(expected, key=str), sorted(got, key=str), strict=True):
        assert want[0:2] == have[0:2]
        assert _close(want[2], have[2]), (want, have)
        assert want[3:] == have[3:]
    [entry] = records("annotation.import")
    assert entry["details"]["created"] == len(expected)
    assert entry["label"] == "SECRET//ALPHA"
    assert len(entry["details"]["sha256"]) == 64


def test_a_dry_run_reports_and_writes_nothing(scene: Scene) -> None:
    data = read_export(finished_export(scene, ExportFormat.CVAT))
    target = _fresh_project(scene)
    before = _state(target)
    summary = import_annotations(
        scene.crew.owner, project=target, format="cvat", stream=io.BytesIO(data), file_name="e.zip", dry_run=True
    )
    assert summary["dry_run"] is True
    assert summary["create"] == 7
    assert summary["images"] == 2
    assert _state(target) == before
    assert records("annotation.import") == []


def test_images_in_the_zip_match_items_by_sha256_whatever_their_names(scene: Scene) -> None:
    data = read_export(finished_export(scene, ExportFormat.COCO, include_images=True))
    source = zipfile.ZipFile(io.BytesIO(data))
    renamed = io.BytesIO()
    with zipfile.ZipFile(renamed, "w") as out:
        instances = json.loads(source.read("annotations/instances.json"))
        for image in instances["images"]:
            old = image["file_name"]
            image["file_name"] = "renamed-" + old
            out.writestr("images/renamed-" + old, source.read("images/" + old))
        out.writestr("annotations/instances.json", json.dumps(instances))
    target = _fresh_project(scene)
    with pytest.raises(ExchangeError, match="matches no item of the project by name"):
        import_annotations(
            scene.crew.owner, project=target, format="coco", stream=io.BytesIO(renamed.getvalue()), file_name="r.zip"
        )
    summary = import_annotations(
        scene.crew.owner,
        project=target,
        format="coco",
        stream=io.BytesIO(renamed.getvalue()),
        file_name="r.zip",
        match="sha256",
    )
    assert summary["create"] == 4


def test_replace_deletes_the_live_annotations_of_each_touched_image_with_revisions(scene: Scene) -> None:
    data = read_export(finished_export(scene, ExportFormat.VOC))
    project = scene.crew.project
    summary = import_annotations(
        scene.crew.owner, project=project, format="voc", stream=io.BytesIO(data), file_name="v.zip", mode="replace"
    )
    assert summary["delete"] == 7
    assert Annotation.objects.filter(task__project=project, deleted=False).count() == 2
    assert AnnotationRevision.objects.filter(annotation__task__project=project, after__isnull=True).count() == 7


def _coco(**change: Any) -> bytes:
    task = Task.objects.select_related("item").order_by("id").first()
    assert task is not None
    body: dict[str, Any] = {
        "images": [{"id": 1, "file_name": task.item.name, "width": task.item.width, "height": task.item.height}],
        "categories": [{"id": 1, "name": "vessel"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "segmentation": []}],
    }
    for key, value in change.items():
        body[key] = value
    return json.dumps(body).encode()


BAD = [
    pytest.param(b'{"images": [}', "line 1 column 13", id="malformed-json"),
    pytest.param(
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bb"><!ENTITY c "&b;&b;">]><annotations>&c;</annotations>',
        "refused",
        id="entity-expansion",
    ),
    pytest.param(
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotations>&x;</annotations>',
        "refused",
        id="external-entity",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_malformed_and_hostile_files_are_refused_and_change_nothing(scene: Scene, body: bytes, message: str) -> None:
    project = scene.crew.project
    before = _state(project)
    fmt = "coco" if body.startswith(b"{") else "cvat"
    with pytest.raises(ExchangeError, match=message) as caught:
        import_annotations(scene.crew.owner, project=project, format=fmt, stream=io.BytesIO(body), file_name="bad.x")
    assert str(caught.value).startswith("bad.x")
    assert _state(project) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"categories": [{"id": 1, "name": "submarine"}]},
            "image '.*' shape 0: class 'submarine' is not in the project",
        ),
        (
            {"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [90, 1, 50, 5], "segmentation": []}]},
            "shape 0: geometry.* lies outside the image",
        ),
        (
            {
                "annotations": [
                    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                ]
            },
            r"annotations\[1\]: duplicate annotation id 1",
        ),
        ({"images": [{"id": 1, "file_name": "nowhere.png", "width": 96, "height": 64}]}, "matches no item"),
        ({"images": [{"id": 1, "file_name": "img-1.png", "width": 100, "height": 64}]}, "is 100x64 in the file"),
    ],
)
def test_content_errors_name_the_image_and_shape_and_change_nothing(
    scene: Scene, change: dict[str, Any], message: str
) -> None:
    project = scene.crew.project
    before = _state(project)
    with pytest.raises(ExchangeError, match=message):
        import_annotations(
            scene.crew.owner, project=project, format="coco", stream=io.BytesIO(_coco(**change)), file_name="c.json"
        )
    assert _state(project) == before


def test_a_2_gb_file_with_the_wrong_header_is_refused_after_its_first_bytes(scene: Scene, tmp_path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.write(b"\x00GARBAGE")
        handle.truncate(2 * 1024**3)  # sparse: 2 GB long, a few bytes on disk
    before = _state(scene.crew.project)
    with path.open("rb") as stream:
        with pytest.raises(ExchangeError, match=r"huge\.json: does not start like json or zip"):
            import_annotations(
                scene.crew.owner, project=scene.crew.project, format="coco", stream=stream, file_name="huge.json"
            )
        assert stream.tell() <= 64
    assert _state(scene.crew.project) == before


def test_someone_without_the_datas_clearance_cannot_import(scene: Scene) -> None:
    with pytest.raises(AccessDenied):
        import_annotations(
            scene.low_manager, project=scene.crew.project, format="coco", stream=io.BytesIO(_coco()), file_name="c.json"
        )
    assert records("access.denied")[0]["details"]["gate"] == "label"
