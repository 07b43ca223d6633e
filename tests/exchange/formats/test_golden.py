"""Golden files: the exact bytes each writer produces for one fixed scene, checked in after being read by eye
against each format's documentation, and read back to the same scene. A change to any convention shows here.

Regenerate (after checking the change is intended): `EXCHANGE_REGENERATE_GOLDEN=1 pytest tests/exchange/formats`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.exchange.formats import coco, cvat, voc, yolo
from appliance.exchange.formats.records import DropLog, Frame, Shape
from tests.exchange.shapes import CLASSES, assert_same_shapes

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SCENE = [
    Frame(
        1,
        "harbour-1.png",
        96,
        64,
        (
            Shape("box", [10.0, 12.0, 20.5, 8.0], "vessel", {"moored": True, "type": "tanker", "length": 120}),
            Shape("rotated_box", [60.0, 30.0, 24.0, 6.0, 30.0], "vessel", {"note": "under way"}),
            Shape("polygon", [[5.0, 50.0], [30.0, 40.0], [40.0, 60.0]], "building"),
            Shape("polyline", [[0.0, 0.0], [95.5, 63.5]], "building"),
            Shape("points", [[48.0, 32.0]], "vessel"),
            Shape("tag", None, "building"),
        ),
    ),
    Frame(2, "harbour-2.png", 96, 64, ()),
]
MARKING = "SECRET//ALPHA"


def written() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    common = {"classes": CLASSES, "marking": MARKING, "project": "harbour", "drops": DropLog()}
    files["coco/instances.json"] = b"".join(coco.iter_coco(frames=lambda: SCENE, **common))  # type: ignore[arg-type]
    files["cvat/annotations.xml"] = b"".join(cvat.iter_cvat(frames=SCENE, **common))  # type: ignore[arg-type]
    files["voc/harbour-1.xml"] = voc.annotation_file(SCENE[0], classes=CLASSES, marking=MARKING, drops=DropLog())
    for layout in yolo.LAYOUTS:
        files[f"yolo-{layout}/data.yaml"] = yolo.data_yaml(CLASSES, layout=layout, marking=MARKING)
        files[f"yolo-{layout}/harbour-1.txt"] = yolo.label_file(
            SCENE[0], classes=CLASSES, layout=layout, drops=DropLog()
        )
    return files


@pytest.mark.parametrize("name", sorted(written()))
def test_writers_produce_the_golden_bytes(name: str) -> None:
    path = GOLDEN / name
    produced = written()[name]
    if os.environ.get("EXCHANGE_REGENERATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(produced)
    assert produced == path.read_bytes()


def test_golden_files_read_back_to_the_scene() -> None:
    by_kind = {shape.kind: shape for shape in SCENE[0].shapes}
    document = coco.read_coco((GOLDEN / "coco/instances.json").read_bytes(), file_name="instances.json")
    assert_same_shapes([by_kind[k] for k in ("box", "rotated_box", "polygon")], list(document.frames[0].shapes))
    document = cvat.read_cvat((GOLDEN / "cvat/annotations.xml").read_bytes(), file_name="annotations.xml")
    assert_same_shapes(list(SCENE[0].shapes), list(document.frames[0].shapes))
    frame = voc.read_annotation((GOLDEN / "voc/harbour-1.xml").read_bytes(), file_name="a.xml", classes=CLASSES)
    assert_same_shapes([by_kind["box"]], list(frame.shapes))
    images = {"harbour-1": (1, "harbour-1.png", 96, 64)}
    for layout, kinds in (("detect", ["box"]), ("obb", ["box", "rotated_box"]), ("segment", ["polygon"])):
        document = yolo.read_labels(
            (GOLDEN / f"yolo-{layout}/data.yaml").read_bytes(),
            [("labels/harbour-1.txt", (GOLDEN / f"yolo-{layout}/harbour-1.txt").read_bytes())],
            images=images,
        )
        assert_same_shapes([by_kind[k] for k in kinds], list(document.frames[0].shapes), attributes_kept=False)


def test_the_format_modules_need_no_django() -> None:
    """They are the part an auditor or a pipeline may reuse on its own, so they must not drag the app in."""
    code = (
        "import sys; import appliance.exchange.formats.coco, appliance.exchange.formats.cvat, "
        "appliance.exchange.formats.voc, appliance.exchange.formats.yolo; "
        "sys.exit(1 if any(m == 'django' or m.startswith('django.') for m in sys.modules) else 0)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False, cwd=GOLDEN.parents[2]).returncode == 0
