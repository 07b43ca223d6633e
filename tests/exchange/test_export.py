"""Exports: every format streamed into the vault as a zip with its manifest and markings, what a format cannot
carry reported, images included only on request, every step audited, and refused to anyone the project is hidden
from.

STIG: V-222643 (classified output is marked: manifest banner, portion markings, in-file markings), V-222474
(audit records say what was exported, by whom, with its digest), V-222425 (access enforced on every export),
V-222588 (exports at rest are encrypted like all imagery).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from pycocotools.coco import COCO

from appliance.access.denial import AccessDenied
from appliance.datasets.models import Item
from appliance.exchange.actions import create_export
from appliance.exchange.exporting import frames_of
from appliance.exchange.formats import coco, cvat, voc, yolo
from appliance.exchange.formats.records import class_defs
from appliance.exchange.jobs import execute_export, read_export
from appliance.exchange.models import ExportFormat, ExportState
from appliance.labeling.actions import save_annotations
from appliance.labeling.models import Annotation
from appliance.vault import blobs
from tests.exchange.conftest import CHANGES, Scene, finished_export, open_zip
from tests.exchange.shapes import assert_same_shapes
from tests.labeling.conftest import SCHEMA, records


def _db_shapes(kinds: tuple[str, ...]) -> list[coco.Shape]:
    return [
        coco.Shape(change["kind"], change["geometry"], change["class_name"], change.get("attributes", {}))
        for change in CHANGES
        if change["kind"] in kinds
    ]


def test_a_coco_export_is_a_marked_zip_that_pycocotools_reads(scene: Scene, tmp_path) -> None:
    export = finished_export(scene, ExportFormat.COCO)
    assert export.state == ExportState.DONE
    assert export.classification == "SECRET"
    assert export.access_label().banner() == "SECRET//ALPHA"
    archive = open_zip(export)
    manifest = archive.read("MANIFEST.txt").decode().splitlines()
    assert manifest[0] == "SECRET//ALPHA"
    assert manifest[-1] == "SECRET//ALPHA"
    listing = json.loads(archive.read("manifest.json"))
    assert listing["classification"] == "SECRET//ALPHA"
    assert listing["project"]["label"] == "SECRET//ALPHA"
    assert listing["dropped"] == {
        "points: COCO instances have no form for it": 1,
        "polyline: COCO instances have no form for it": 1,
        "tag: COCO instances have no form for it": 1,
    }
    data = archive.read("annotations/instances.json")
    [entry] = [f for f in listing["files"] if f["name"] == "annotations/instances.json"]
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["marking"] == "SECRET//ALPHA"
    document = coco.read_coco(data, file_name="instances.json")
    assert document.marking == "SECRET//ALPHA"
    first = next(f for f in document.frames if f.id == scene.tasks[0].pk)
    assert_same_shapes(_db_shapes(("box", "rotated_box", "polygon")), list(first.shapes))
    assert len(document.frames) == 3
    path = tmp_path / "instances.json"
    path.write_bytes(data)
    reference = COCO(str(path))
    assert len(reference.getAnnIds(imgIds=[scene.tasks[0].pk])) == 3
    assert len(reference.getAnnIds(imgIds=[scene.tasks[1].pk])) == 1
    assert export.report["dropped"] == listing["dropped"]


@pytest.mark.parametrize(
    ("fmt", "kinds"),
    [
        (ExportFormat.CVAT, ("box", "rotated_box", "polygon", "polyline", "points", "tag")),
        (ExportFormat.VOC, ("box",)),
        (ExportFormat.YOLO_DETECT, ("box",)),
        (ExportFormat.YOLO_OBB, ("box", "rotated_box")),
        (ExportFormat.YOLO_SEGMENT, ("polygon",)),
    ],
)
def test_each_format_carries_what_it_can_and_reports_the_rest(scene: Scene, fmt: str, kinds: tuple[str, ...]) -> None:
    export = finished_export(scene, fmt)
    archive = open_zip(export)
    classes = class_defs(SCHEMA["classes"])
    item = scene.tasks[0].item
    names = set(archive.namelist())
    if fmt == ExportFormat.CVAT:
        document = cvat.read_cvat(archive.read("annotations.xml"), file_name="annotations.xml", classes=classes)
        shapes = next(f for f in document.frames if f.file_name == item.name).shapes
    elif fmt == ExportFormat.VOC:
        stem = item.name.rsplit(".", 1)[0]
        assert "ImageSets/Main/default.txt" in names
        shapes = voc.read_annotation(archive.read(f"Annotations/{stem}.xml"), file_name="a.xml", classes=classes).shapes
    else:
        images = {item.name.rsplit(".", 1)[0]: (1, item.name, item.width, item.height)}
        label = yolo.label_path(item.name)
        document = yolo.read_labels(archive.read("data.yaml"), [(label, archive.read(label))], images=images)
        shapes = document.frames[0].shapes
    assert_same_shapes(_db_shapes(kinds), list(shapes), attributes_kept=fmt in (ExportFormat.CVAT, ExportFormat.VOC))
    saved = [change["kind"] for change in CHANGES] + ["box"]  # the second task holds one box
    dropped_kinds = sum(n for what, n in export.report["dropped"].items() if not what.startswith("attributes"))
    assert dropped_kinds == sum(1 for kind in saved if kind not in kinds)
    assert json.loads(archive.read("manifest.json"))["classification"] == "SECRET//ALPHA"


def test_images_are_included_only_on_request_and_are_the_originals(scene: Scene) -> None:
    without = open_zip(finished_export(scene, ExportFormat.YOLO_DETECT))
    assert not [name for name in without.namelist() if name.startswith("images/")]
    export = finished_export(scene, ExportFormat.YOLO_DETECT, include_images=True)
    archive = open_zip(export)
    for item in Item.objects.filter(dataset=scene.crew.dataset):
        assert hashlib.sha256(archive.read(f"images/{item.name}")).hexdigest() == item.sha256
    assert export.report["image_files"] == 3


def test_the_export_is_stored_encrypted_and_its_digest_is_on_the_record(scene: Scene) -> None:
    export = finished_export(scene, ExportFormat.CVAT)
    ciphertext = blobs.blob_path(export.blob_id).read_bytes()
    assert b"<annotations>" not in ciphertext
    assert b"SECRET//ALPHA" not in ciphertext
    assert hashlib.sha256(read_export(export)).hexdigest() == export.sha256
    [created] = records("export.create")
    [finished] = records("export.finish")
    assert finished["actor"] == "req"
    assert created["label"] == "SECRET//ALPHA"
    assert finished["details"]["sha256"] == export.sha256
    assert finished["details"]["annotations"] == 7


@pytest.mark.parametrize(
    ("who", "gate"),
    [("low_manager", "label"), ("outside_manager", "membership")],
)
def test_someone_the_project_is_hidden_from_cannot_export_it(scene: Scene, who: str, gate: str) -> None:
    with pytest.raises(AccessDenied):
        create_export(getattr(scene, who), project=scene.crew.project, format=ExportFormat.COCO)
    [denial] = records("access.denied")
    assert denial["details"]["gate"] == gate


def test_an_analyst_may_not_export(scene: Scene) -> None:
    with pytest.raises(AccessDenied):
        create_export(scene.crew.analyst, project=scene.crew.project, format=ExportFormat.COCO)
    assert records("access.denied")[0]["details"]["gate"] == "role"


def test_a_new_export_is_queued_for_a_worker_when_its_transaction_commits(
    scene: Scene, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        export = create_export(scene.requester, project=scene.crew.project, format=ExportFormat.COCO)
    export.refresh_from_db()
    assert export.task_result_id
    assert export.state == ExportState.QUEUED


def test_a_requester_who_lost_clearance_before_the_worker_ran_gets_a_failed_export(scene: Scene) -> None:
    export = create_export(scene.requester, project=scene.crew.project, format=ExportFormat.COCO)
    scene.requester.clearance = "CONFIDENTIAL"
    scene.requester.save(update_fields=["clearance"])
    done = execute_export(export.pk)
    assert done.state == ExportState.FAILED
    assert not done.blob_id
    [failed] = records("export.fail")
    assert "no longer" in failed["details"]["error"]


@pytest.mark.parametrize(("window_size", "batch"), [(1, 1), (1, 2), (2, 4), (50, 2000)])
def test_reading_by_windows_and_pages_gives_every_live_shape_once_in_order(
    scene: Scene, window_size: int, batch: int
) -> None:
    """The keyset reader must not lose or repeat a shape at a page or window boundary, nor show a deleted one."""
    first = scene.tasks[0]
    doomed = Annotation.objects.filter(task=first).order_by("id")[1]
    first.refresh_from_db()
    save_annotations(
        scene.crew.analyst,
        task=first,
        changes=[{"op": "delete", "id": doomed.pk, "version": doomed.version}],
        task_version=first.version,
    )
    expected = {
        task.pk: [
            (a.kind, a.geometry, a.class_name)
            for a in Annotation.objects.filter(task=task, deleted=False).order_by("id")
        ]
        for task in scene.tasks
    }
    got = {
        frame.id: [(shape.kind, shape.geometry, shape.class_name) for shape in frame.shapes]
        for _, frame in frames_of(scene.crew.project, window_size=window_size, batch=batch)
    }
    assert got == expected
    assert sum(len(shapes) for shapes in got.values()) == 6
