"""COCO instances JSON, both directions.

Convention: `bbox` is [x, y, w, h] in pixels from the image's top-left corner (the same as our box); `area` is
the area of the shape itself (the polygon's shoelace area, a box's w*h), not of its bounding box; `segmentation`
is a list of flat [x1, y1, x2, y2, ...] polygons; `iscrowd` is 0 for everything we write. Category ids are the
1-based position of the class in the project's schema, so they stay stable for a schema.

Extension (ignored by pycocotools and other readers): a top-level "appliance" object carries the classification
banner and the project, and each annotation's "appliance" object its kind, attribute values and, for a rotated
box, the exact [cx, cy, w, h, angle] (COCO itself only has its corner polygon). Polylines, points and tags have no
COCO instance form: they are reported as dropped.

The writer streams: images first, then annotations, each written as it comes, so memory holds one image's shapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from appliance.exchange.formats.records import (
    ClassDef,
    Document,
    DropLog,
    FormatError,
    Frame,
    Shape,
    bounds,
    polygon_area,
    rotated_corners,
)

EXTENSION = "appliance"
CARRIES = ("box", "rotated_box", "polygon")


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def annotation_of(shape: Shape) -> dict[str, Any]:
    """The COCO fields (bbox, area, segmentation) of a shape COCO can carry, plus our extension."""
    extension: dict[str, Any] = {"kind": shape.kind, "attributes": shape.attributes}
    if shape.kind == "box":
        x, y, w, h = shape.geometry
        polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
        return {"bbox": [x, y, w, h], "area": w * h, "segmentation": [polygon], EXTENSION: extension}
    if shape.kind == "rotated_box":
        corners = rotated_corners(shape.geometry)
        extension["geometry"] = list(shape.geometry)
        return {
            "bbox": bounds(corners),
            "area": shape.geometry[2] * shape.geometry[3],
            "segmentation": [[value for corner in corners for value in corner]],
            EXTENSION: extension,
        }
    points = [tuple(point) for point in shape.geometry]
    return {
        "bbox": bounds(points),
        "area": polygon_area(points),
        "segmentation": [[value for point in points for value in point]],
        EXTENSION: extension,
    }


def iter_coco(
    *,
    classes: list[ClassDef],
    frames: Callable[[], Iterable[Frame]],
    marking: str,
    project: str,
    drops: DropLog,
    progress: Callable[[int], object] = lambda count: None,
) -> Iterator[bytes]:
    """The whole file, piece by piece; `frames` is called twice (images, then annotations), so a caller can
    stream both from the database without holding either."""
    category = {entry.name: index + 1 for index, entry in enumerate(classes)}
    yield b'{"info":'
    yield _dump({"description": f"{project} ({marking})", "version": "1.0"})
    yield b',"licenses":[],"' + EXTENSION.encode() + b'":'
    yield _dump({"classification": marking, "project": project, "format": "appliance-coco/1"})
    yield b',"categories":'
    yield _dump([{"id": category[entry.name], "name": entry.name, "supercategory": ""} for entry in classes])
    yield b',"images":['
    first = True
    for frame in frames():
        entry = {"id": frame.id, "file_name": frame.file_name, "width": frame.width, "height": frame.height}
        yield (b"" if first else b",") + _dump(entry)
        first = False
    yield b'],"annotations":['
    written = 0
    for frame in frames():
        entries: list[dict[str, Any]] = []
        for shape in frame.shapes:
            if shape.kind not in CARRIES:
                drops.add(frame.file_name, shape.kind, "COCO instances have no form for it")
                continue
            if shape.class_name not in category:
                drops.add(frame.file_name, shape.kind, f"class {shape.class_name!r} is not in the schema")
                continue
            entry = {
                "id": written + len(entries) + 1,
                "image_id": frame.id,
                "category_id": category[shape.class_name],
                "iscrowd": 0,
            }
            entry.update(annotation_of(shape))
            entries.append(entry)
        if entries:
            # One dumps per image, not per annotation: the list's brackets are cut off, its commas kept.
            yield (b"," if written else b"") + _dump(entries)[1:-1]
            written += len(entries)
        progress(written)
    yield b"]}\n"


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"must be an integer, got {value!r}", where=where)
    return value


def _numbers(value: Any, where: str, count: int | None = None) -> list[float]:
    if not isinstance(value, list) or (count is not None and len(value) != count):
        raise FormatError(f"must be a list of {count or 'some'} numbers", where=where)
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise FormatError(f"[{index}] must be a number, got {item!r}", where=where)
    return [float(item) for item in value]


def _pairs(flat: list[float], where: str) -> list[list[float]]:
    if len(flat) < 6 or len(flat) % 2:
        raise FormatError("a polygon needs an even count of at least 6 numbers", where=where)
    return [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)]


def _shapes(ann: dict[str, Any], where: str, name: str, file_name: str, drops: DropLog) -> list[Shape]:
    found = ann.get(EXTENSION)
    extension: dict[str, Any] = found if isinstance(found, dict) else {}
    attributes = extension.get("attributes", {})
    if not isinstance(attributes, dict):
        raise FormatError("appliance.attributes must be an object", where=where)
    bbox = _numbers(ann.get("bbox"), f"{where}.bbox", 4)
    kind = extension.get("kind")
    segmentation = ann.get("segmentation", [])
    if kind == "box":
        return [Shape("box", bbox, name, attributes)]
    if kind == "rotated_box":
        return [
            Shape(
                "rotated_box", _numbers(extension.get("geometry"), f"{where}.appliance.geometry", 5), name, attributes
            )
        ]
    if kind not in (None, "polygon"):
        raise FormatError(f"appliance.kind {kind!r} is not one COCO can carry", where=where)
    if isinstance(segmentation, dict) or ann.get("iscrowd") == 1:
        drops.add(file_name, f"annotation {ann.get('id')}", "a crowd mask (RLE) has no shape here; its bbox is kept")
        return [Shape("box", bbox, name, attributes)]
    if not isinstance(segmentation, list):
        raise FormatError("segmentation must be a list of polygons", where=f"{where}.segmentation")
    if not segmentation:
        return [Shape("box", bbox, name, attributes)]
    polygons = [
        _pairs(_numbers(part, f"{where}.segmentation[{i}]"), f"{where}.segmentation[{i}]")
        for i, part in enumerate(segmentation)
    ]
    if kind is None and len(polygons) == 1:
        x, y, w, h = bbox
        if polygons[0] == [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]:
            return [Shape("box", bbox, name, attributes)]
    return [Shape("polygon", polygon, name, attributes) for polygon in polygons]


def read_coco(data: bytes, *, file_name: str) -> Document:
    """Parse and structurally check a COCO instances file; every error names `file_name` and the element."""
    try:
        raw = json.loads(data)
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text (byte {exc.start})", where=file_name) from None
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"malformed JSON: {exc.msg}", where=f"{file_name}: line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(raw, dict):
        raise FormatError("a COCO file is a JSON object", where=file_name)
    for key in ("images", "annotations", "categories"):
        if not isinstance(raw.get(key), list):
            raise FormatError(f'"{key}" must be a list', where=file_name)
    categories: dict[int, str] = {}
    names: list[str] = []
    for index, entry in enumerate(raw["categories"]):
        where = f"{file_name}: categories[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise FormatError("a category needs an id and a name", where=where)
        category_id = _int(entry.get("id"), f"{where}.id")
        if category_id in categories:
            raise FormatError(f"duplicate category id {category_id}", where=where)
        if entry["name"] in names:
            raise FormatError(f"duplicate category name {entry['name']!r}", where=where)
        categories[category_id] = entry["name"]
        names.append(entry["name"])
    images: dict[int, dict[str, Any]] = {}
    seen_names: set[str] = set()
    for index, entry in enumerate(raw["images"]):
        where = f"{file_name}: images[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise FormatError("an image needs an id, a file_name, a width and a height", where=where)
        image_id = _int(entry.get("id"), f"{where}.id")
        width, height = _int(entry.get("width"), f"{where}.width"), _int(entry.get("height"), f"{where}.height")
        if width <= 0 or height <= 0:
            raise FormatError("width and height must be above 0", where=where)
        if image_id in images:
            raise FormatError(f"duplicate image id {image_id}", where=where)
        if entry["file_name"] in seen_names:
            raise FormatError(f"duplicate file_name {entry['file_name']!r}", where=where)
        seen_names.add(entry["file_name"])
        images[image_id] = {"file_name": entry["file_name"], "width": width, "height": height, "shapes": []}
    drops = DropLog()
    annotation_ids: set[int] = set()
    for index, ann in enumerate(raw["annotations"]):
        where = f"{file_name}: annotations[{index}]"
        if not isinstance(ann, dict):
            raise FormatError("an annotation must be an object", where=where)
        annotation_id = _int(ann.get("id"), f"{where}.id")
        if annotation_id in annotation_ids:
            raise FormatError(f"duplicate annotation id {annotation_id}", where=where)
        annotation_ids.add(annotation_id)
        image_id = _int(ann.get("image_id"), f"{where}.image_id")
        if image_id not in images:
            raise FormatError(f"image_id {image_id} names no image", where=where)
        category_id = _int(ann.get("category_id"), f"{where}.category_id")
        if category_id not in categories:
            raise FormatError(f"category_id {category_id} names no category", where=where)
        image = images[image_id]
        image["shapes"].extend(_shapes(ann, where, categories[category_id], image["file_name"], drops))
    frames = [
        Frame(image_id, image["file_name"], image["width"], image["height"], tuple(image["shapes"]))
        for image_id, image in images.items()
    ]
    found = raw.get(EXTENSION)
    marking = found.get("classification", "") if isinstance(found, dict) else ""
    marking = marking if isinstance(marking, str) else ""
    return Document(classes=names, frames=frames, dropped=list(drops), marking=marking)
