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
The reader streams too (ijson, yajl's C parser): one scan of the file keeps its categories and images (small), and
each further scan yields the annotations one by one, so a file of 1,000,000 annotations is checked and imported
without ever being held whole. The caller reopens the file for each scan.
"""

from __future__ import annotations

import io
import json
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import ijson  # type: ignore[import-untyped]
import numpy as np

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


CHUNK = 1 << 16
INT64 = (-(1 << 63), (1 << 63) - 1)


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    width: int
    height: int


@dataclass
class CocoHeader:
    """Everything of a COCO file but its annotations: categories (id -> name, and names in the file's order),
    images in the file's order, and the classification banner of our extension."""

    categories: dict[int, str]
    names: list[str]
    images: list[CocoImage]
    marking: str = ""


def _json_error(exc: Exception, reopen: Callable[[], IO[bytes]], file_name: str) -> FormatError:
    """yajl says what is wrong but not where: scan again to find the byte it stopped at, and name its line."""
    reason = str(exc).split("\n")[0].split("\\n")[0].removeprefix("b'").removeprefix('b"').strip()
    _offset, line, column = _error_position(reopen)
    return FormatError(f"malformed JSON: {reason}", where=f"{file_name}: line {line} column {column}")


def _sink() -> Any:
    while True:
        yield


def _error_position(reopen: Callable[[], IO[bytes]]) -> tuple[int, int, int]:
    """(offset, line, column) of the byte where the parser fails: one scan by chunks to find the failing chunk,
    then a fresh parser fed the chunks before it and that chunk byte by byte."""
    failing = -1
    with reopen() as raw:
        stream = _BomLess(raw)
        parser = ijson.basic_parse_coro(_primed(), use_float=True)
        index = 0
        try:
            while chunk := stream.read(CHUNK):
                parser.send(chunk)
                index += 1
            parser.close()
        except ijson.JSONError:
            failing = index
    line, last_newline, offset = 1, -1, 0
    with reopen() as raw:
        stream = _BomLess(raw)
        parser = ijson.basic_parse_coro(_primed(), use_float=True)
        for _ in range(failing if failing >= 0 else 1 << 62):
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            parser.send(chunk)
            line += chunk.count(b"\n")
            if b"\n" in chunk:
                last_newline = offset + chunk.rindex(b"\n")
            offset += len(chunk)
        chunk = stream.read(CHUNK) if failing >= 0 else b""
        try:
            for position in range(len(chunk)):
                byte = chunk[position : position + 1]
                parser.send(byte)
                if byte == b"\n":
                    line += 1
                    last_newline = offset
                offset += 1
            parser.close()
        except ijson.JSONError:
            pass
    return offset, line, offset - last_newline


def _primed() -> Any:
    sink = _sink()
    next(sink)
    return sink


class _Collect:
    """A coroutine target that keeps what an items_coro builds."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def send(self, value: Any) -> None:
        self.values.append(value)

    def close(self) -> None:
        """Nothing to release."""


class _Images:
    """Checks each image as the parser finishes it and keeps only its four fields (a million images stay small)."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.images: list[CocoImage] = []
        self.ids: set[int] = set()
        self.names: set[str] = set()

    def send(self, entry: Any) -> None:
        where = f"{self.file_name}: images[{len(self.images)}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            raise FormatError("an image needs an id, a file_name, a width and a height", where=where)
        image_id = _int(entry.get("id"), f"{where}.id")
        width, height = _int(entry.get("width"), f"{where}.width"), _int(entry.get("height"), f"{where}.height")
        if width <= 0 or height <= 0:
            raise FormatError("width and height must be above 0", where=where)
        if image_id in self.ids:
            raise FormatError(f"duplicate image id {image_id}", where=where)
        if entry["file_name"] in self.names:
            raise FormatError(f"duplicate file_name {entry['file_name']!r}", where=where)
        self.ids.add(image_id)
        self.names.add(entry["file_name"])
        self.images.append(CocoImage(image_id, entry["file_name"], width, height))

    def close(self) -> None:
        """Nothing to release."""


def read_coco_header(reopen: Callable[[], IO[bytes]], *, file_name: str) -> CocoHeader:
    """One scan: the categories, the images and the marking, structurally checked; the annotations are parsed
    (a malformed one is found here) but not built."""
    categories, marking, images = _Collect(), _Collect(), _Images(file_name)
    parsers = [
        ijson.items_coro(categories, "categories", use_float=True),
        ijson.items_coro(marking, "appliance.classification", use_float=True),
        ijson.items_coro(images, "images.item", use_float=True),
    ]
    try:
        with reopen() as stream:
            reader = _BomLess(stream)
            while chunk := reader.read(CHUNK):
                for parser in parsers:
                    parser.send(chunk)
            for parser in parsers:
                parser.close()
    except ijson.JSONError as exc:
        raise _json_error(exc, reopen, file_name) from None
    if len(categories.values) != 1 or not isinstance(categories.values[0], list):
        raise FormatError('"categories" must be a list', where=file_name)
    names: dict[int, str] = {}
    for index, entry in enumerate(categories.values[0]):
        where = f"{file_name}: categories[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise FormatError("a category needs an id and a name", where=where)
        category_id = _int(entry.get("id"), f"{where}.id")
        if category_id in names:
            raise FormatError(f"duplicate category id {category_id}", where=where)
        if entry["name"] in names.values():
            raise FormatError(f"duplicate category name {entry['name']!r}", where=where)
        names[category_id] = entry["name"]
    found = marking.values
    banner = found[0] if len(found) == 1 and isinstance(found[0], str) else ""
    return CocoHeader(categories=names, names=list(names.values()), images=images.images, marking=banner)


def iter_coco_annotations(
    reopen: Callable[[], IO[bytes]], *, file_name: str, header: CocoHeader, drops: DropLog
) -> Iterator[tuple[int, Shape]]:
    """One scan: (image id, shape) for every annotation in the file's order, each structurally checked as it
    comes; duplicate annotation ids are found at the end (8 bytes an id, not a set of Python ints)."""
    images = {image.id: image.file_name for image in header.images}
    ids = array("q")
    large: dict[int, int] = {}  # ids outside int64, rare: kept apart
    index = -1
    try:
        with reopen() as stream:
            for index, ann in enumerate(ijson.items(_BomLess(stream), "annotations.item", use_float=True)):
                where = f"{file_name}: annotations[{index}]"
                if not isinstance(ann, dict):
                    raise FormatError("an annotation must be an object", where=where)
                annotation_id = _int(ann.get("id"), f"{where}.id")
                if INT64[0] <= annotation_id <= INT64[1]:
                    ids.append(annotation_id)
                elif annotation_id in large:
                    raise FormatError(f"duplicate annotation id {annotation_id}", where=where)
                else:
                    large[annotation_id] = index
                image_id = _int(ann.get("image_id"), f"{where}.image_id")
                image_name = images.get(image_id)
                if image_name is None:
                    raise FormatError(f"image_id {image_id} names no image", where=where)
                category_id = _int(ann.get("category_id"), f"{where}.category_id")
                name = header.categories.get(category_id)
                if name is None:
                    raise FormatError(f"category_id {category_id} names no category", where=where)
                for shape in _shapes(ann, where, name, image_name, drops):
                    yield image_id, shape
    except ijson.JSONError as exc:
        raise _json_error(exc, reopen, file_name) from None
    duplicate = _first_duplicate(ids)
    if duplicate is not None:
        raise FormatError(f"duplicate annotation id {ids[duplicate]}", where=f"{file_name}: annotations[{duplicate}]")


def _first_duplicate(ids: array[int]) -> int | None:
    """The index of the first annotation whose id an earlier one already had (the index counts int64 ids only;
    ids beyond int64 are checked as they come)."""
    if len(ids) < 2:
        return None
    values = np.frombuffer(ids, dtype=np.int64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    repeated = ordered[1:] == ordered[:-1]
    if not repeated.any():
        return None
    return int(order[1:][repeated].min())


class _BomLess:
    """A reader that drops a UTF-8 byte order mark at the start (json.loads accepts one, yajl does not)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.first = True

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        if self.first and chunk:  # ijson first reads 0 bytes to learn the type
            self.first = False
            chunk = chunk.removeprefix(b"\xef\xbb\xbf")
        return chunk


def read_coco(data: bytes, *, file_name: str) -> Document:
    """Parse and structurally check a COCO instances file held in memory (the streaming reader over it); every
    error names `file_name` and the element."""

    def reopen() -> IO[bytes]:
        return io.BytesIO(data)

    header = read_coco_header(reopen, file_name=file_name)
    drops = DropLog()
    shapes: dict[int, list[Shape]] = {image.id: [] for image in header.images}
    for image_id, shape in iter_coco_annotations(reopen, file_name=file_name, header=header, drops=drops):
        shapes[image_id].append(shape)
    frames = [
        Frame(image.id, image.file_name, image.width, image.height, tuple(shapes[image.id])) for image in header.images
    ]
    return Document(classes=header.names, frames=frames, dropped=list(drops), marking=header.marking)
