"""YOLO (Ultralytics) label files and data.yaml, both directions, in three layouts.

One text file per image (`labels/<image stem>.txt`), one object per line, the class as its 0-based position in
`data.yaml`'s `names`, every coordinate normalised by the image's width or height:
- detect: `class cx cy w h`, the box's centre and size;
- obb (oriented boxes): `class x1 y1 x2 y2 x3 y3 x4 y4`, the four corners from the box's unrotated top-left
  corner, clockwise on screen (our rotated_box; a plain box is written with angle 0 and read back as a box);
- segment: `class x1 y1 ... xn yn`, a polygon's vertices.
`data.yaml` carries `names`, `nc`, the image and label folders, our `task` (the layout) and, as YAML comments,
the classification banner first and last. Label files cannot hold a comment (their readers split every line into
numbers), so their marking is in the export's manifest. Attributes, and the kinds a layout has no line for, are
reported as dropped. Numbers are written with their shortest exact repr, so x / width * width comes back within
one unit in the last place.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from appliance.exchange.formats.records import (
    ClassDef,
    Document,
    DropLog,
    FormatError,
    Frame,
    Shape,
    number,
    rotated_corners,
    rotated_from_corners,
)

LAYOUTS = ("detect", "obb", "segment")
CARRIES = {"detect": ("box",), "obb": ("box", "rotated_box"), "segment": ("polygon",)}


def label_path(file_name: str) -> str:
    """Where an image's labels live: `labels/<stem>.txt`, whatever folder the image name carries."""
    stem = posixpath.splitext(posixpath.basename(file_name))[0]
    return f"labels/{stem}.txt"


def data_yaml(classes: list[ClassDef], *, layout: str, marking: str) -> bytes:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown YOLO layout {layout!r}; one of {', '.join(LAYOUTS)}")
    body = yaml.safe_dump(
        {
            "path": ".",
            "train": "images",
            "val": "images",
            "task": layout,
            "nc": len(classes),
            "names": {index: entry.name for index, entry in enumerate(classes)},
        },
        sort_keys=False,
        allow_unicode=True,
    )
    return f"# {marking}\n{body}# {marking}\n".encode()


def _fmt(value: float) -> str:
    return repr(float(value))


def label_file(frame: Frame, *, classes: list[ClassDef], layout: str, drops: DropLog) -> bytes:
    """The label file of one image; shapes the layout cannot hold, and all attribute values, go to `drops`."""
    index = {entry.name: number for number, entry in enumerate(classes)}
    width, height = frame.width, frame.height
    lines: list[str] = []
    for shape in frame.shapes:
        if shape.kind not in CARRIES[layout]:
            drops.add(frame.file_name, shape.kind, f"the YOLO {layout} layout has no line for it")
            continue
        if shape.class_name not in index:
            drops.add(frame.file_name, shape.kind, f"class {shape.class_name!r} is not in the schema")
            continue
        if shape.attributes:
            drops.add(frame.file_name, "attributes", "YOLO label files carry no attributes")
        values: list[float]
        if layout == "detect":
            x, y, w, h = shape.geometry
            values = [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]
        elif layout == "obb":
            geometry = shape.geometry
            if shape.kind == "box":
                x, y, w, h = geometry
                geometry = [x + w / 2, y + h / 2, w, h, 0.0]
            values = [v for cx, cy in rotated_corners(geometry) for v in (cx / width, cy / height)]
        else:
            values = [v for px, py in shape.geometry for v in (px / width, py / height)]
        lines.append(" ".join([str(index[shape.class_name]), *(_fmt(v) for v in values)]))
    return "".join(line + "\n" for line in lines).encode()


def read_data_yaml(data: bytes, *, file_name: str = "data.yaml") -> tuple[list[str], str, str]:
    """The class names (in index order), the layout and the marking comment of a data.yaml."""
    try:
        text = data.decode("utf-8")
        raw = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text (byte {exc.start})", where=file_name) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file_name}: line {mark.line + 1}" if mark is not None else file_name
        raise FormatError(f"malformed YAML: {getattr(exc, 'problem', exc)}", where=where) from None
    if not isinstance(raw, dict) or "names" not in raw:
        raise FormatError('data.yaml needs "names"', where=file_name)
    names_raw = raw["names"]
    if isinstance(names_raw, list):
        names = names_raw
    elif isinstance(names_raw, dict):
        keys = sorted(names_raw)
        if keys != list(range(len(keys))):
            raise FormatError("names must be numbered 0, 1, 2, ... without gaps", where=f"{file_name}: names")
        names = [names_raw[key] for key in keys]
    else:
        raise FormatError("names must be a list or a mapping", where=f"{file_name}: names")
    if not all(isinstance(name, str) and name.strip() for name in names) or len(set(names)) != len(names):
        raise FormatError("names must be distinct non-empty strings", where=f"{file_name}: names")
    layout = raw.get("task", "")
    if layout not in ("", *LAYOUTS):
        layout = ""
    first = text.splitlines()[0] if text else ""
    marking = first[1:].strip() if first.startswith("#") else ""
    return names, layout, marking


def _shape(values: list[float], name: str, layout: str, width: int, height: int) -> Shape:
    if len(values) == 4 and layout != "segment":
        cx, cy, w, h = values
        return Shape("box", [cx * width - w * width / 2, cy * height - h * height / 2, w * width, h * height], name)
    points = [(values[i] * width, values[i + 1] * height) for i in range(0, len(values), 2)]
    if len(values) == 8 and layout == "obb":
        geometry = rotated_from_corners(points)
        if math.isclose(geometry[4], 0.0, abs_tol=1e-9):
            cx, cy, w, h, _ = geometry
            return Shape("box", [cx - w / 2, cy - h / 2, w, h], name)
        return Shape("rotated_box", geometry, name)
    return Shape("polygon", [[x, y] for x, y in points], name)


def read_labels(
    data_yaml_bytes: bytes,
    labels: Iterable[tuple[str, bytes]],
    *,
    images: Mapping[str, tuple[int, str, int, int]],
    layout: str = "",
) -> Document:
    """Read label files against the images they belong to.

    YOLO coordinates are fractions of the image, so each label file is matched by its stem to `images` (stem ->
    (id, file name, width, height)); a label file for no known image is an error naming it.
    """
    names, declared, marking = read_data_yaml(data_yaml_bytes)
    layout = layout or declared
    frames: list[Frame] = []
    for path, data in labels:
        stem = posixpath.splitext(posixpath.basename(path))[0]
        if stem not in images:
            raise FormatError(f"no image named {stem}.* to match it", where=path)
        image_id, file_name, width, height = images[stem]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"not UTF-8 text (byte {exc.start})", where=path) from None
        shapes: list[Shape] = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            where = f"{path}: line {line_number}"
            parts = line.split()
            if not parts:
                continue
            try:
                class_index = int(parts[0])
            except ValueError:
                raise FormatError(f"class {parts[0]!r} is not an integer", where=where) from None
            if not 0 <= class_index < len(names):
                raise FormatError(f"class {class_index} is not in data.yaml's names", where=where)
            values = [number(part, where) for part in parts[1:]]
            if len(values) != 4 and (len(values) < 6 or len(values) % 2):
                raise FormatError(f"{len(values)} coordinates fit no YOLO layout", where=where)
            if any(not -0.01 <= value <= 1.01 for value in values):
                raise FormatError("a normalised coordinate lies outside 0 to 1", where=where)
            shapes.append(_shape(values, names[class_index], layout, width, height))
        frames.append(Frame(image_id, file_name, width, height, tuple(shapes)))
    return Document(classes=names, frames=frames, marking=marking)


def parse_names(value: Any) -> list[str]:
    """Names from an already-parsed data.yaml value (list or 0-based mapping); used by tests and callers."""
    if isinstance(value, dict):
        return [value[key] for key in sorted(value)]
    return list(value)
