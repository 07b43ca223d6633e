"""CVAT for images 1.1 XML, both directions: boxes, rotated boxes, polygons, polylines, points and tags.

Convention: a box is `xtl ytl xbr ybr` (its corners in pixels). A rotated box is written as its unrotated box
plus `rotation`, in degrees clockwise on screen about the box's centre, in [0, 360) as CVAT writes it; ours keeps
the angle in (-180, 180], so it is read back with `math.remainder(rotation, 360)`. A box of ours has no
`rotation` attribute and a rotated box always has one (even 0), so the kind survives the round trip. Points of
polygons, polylines and points are `x1,y1;x2,y2;...`. Attribute values are `<attribute name="...">` children, as
text; the schema's attribute kinds (also written into `<meta>` as CVAT's `input_type`) type them on the way back.
The classification banner is an XML comment before the root element and the `<meta>` carries no more than CVAT
reads. Everything we have fits, so nothing is dropped except shapes of a class the schema does not know.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from xml.etree.ElementTree import Element, SubElement, tostring
from xml.sax.saxutils import escape

from appliance.exchange.formats.records import (
    ClassDef,
    Document,
    DropLog,
    FormatError,
    Frame,
    Shape,
    attribute_text,
    number,
    text_number,
    typed_attributes,
)
from appliance.exchange.formats.xmlsafe import parse

POINT_KINDS = {"polygon": "polygon", "polyline": "polyline", "points": "points"}
CVAT_INPUT = {"checkbox": "checkbox", "select": "select", "number": "number", "text": "text", "radio": "select"}


def _meta(classes: list[ClassDef], project: str) -> bytes:
    meta = Element("meta")
    task = SubElement(meta, "task")
    SubElement(task, "name").text = project
    labels = SubElement(task, "labels")
    for entry in classes:
        label = SubElement(labels, "label")
        SubElement(label, "name").text = entry.name
        SubElement(label, "type").text = "any"
        attributes = SubElement(label, "attributes")
        for definition in entry.attributes:
            attribute = SubElement(attributes, "attribute")
            SubElement(attribute, "name").text = definition["name"]
            SubElement(attribute, "mutable").text = "False"
            SubElement(attribute, "input_type").text = definition["kind"]
            kind = definition["kind"]
            values = {
                "checkbox": ["false", "true"],
                "select": list(definition.get("options", [])),
                "number": [
                    text_number(float(definition.get("min") or 0.0)),
                    text_number(float(definition["max"]) if definition.get("max") is not None else 1e9),
                    "1",
                ],
                "text": [""],
            }[kind]
            SubElement(attribute, "default_value").text = values[0]
            SubElement(attribute, "values").text = "\n".join(values)
    return tostring(meta, encoding="unicode").encode()


def _shape_element(shape: Shape) -> Element:
    common = {"label": shape.class_name, "source": "manual"}
    if shape.kind == "tag":
        element = Element("tag", common)
    elif shape.kind in ("box", "rotated_box"):
        if shape.kind == "box":
            x, y, w, h = shape.geometry
            extra: dict[str, str] = {}
        else:
            cx, cy, w, h, angle = shape.geometry
            x, y = cx - w / 2, cy - h / 2
            extra = {"rotation": text_number(angle % 360.0)}
        corners = {"xtl": x, "ytl": y, "xbr": x + w, "ybr": y + h}
        element = Element(
            "box",
            {**common, "occluded": "0", **{k: text_number(v) for k, v in corners.items()}, **extra, "z_order": "0"},
        )
    else:
        points = ";".join(f"{text_number(x)},{text_number(y)}" for x, y in shape.geometry)
        element = Element(POINT_KINDS[shape.kind], {**common, "occluded": "0", "points": points, "z_order": "0"})
    for name, value in shape.attributes.items():
        SubElement(element, "attribute", {"name": name}).text = attribute_text(value)
    return element


def iter_cvat(
    *,
    classes: list[ClassDef],
    frames: Iterable[Frame],
    marking: str,
    project: str,
    drops: DropLog,
    progress: Callable[[int], object] = lambda count: None,
) -> Iterator[bytes]:
    """The file, piece by piece: the header, then one `<image>` element at a time."""
    known = {entry.name for entry in classes}
    comment = marking.replace("--", "- -")
    yield f'<?xml version="1.0" encoding="utf-8"?>\n<!-- {comment} -->\n<annotations>\n'.encode()
    yield b"  <version>1.1</version>\n  " + _meta(classes, project) + b"\n"
    written = 0
    for frame in frames:
        attrs = f'id="{frame.id}" name={_quoted(frame.file_name)} width="{frame.width}" height="{frame.height}"'
        parts = [f"  <image {attrs}>\n".encode()]
        for shape in frame.shapes:
            if shape.class_name not in known:
                drops.add(frame.file_name, shape.kind, f"class {shape.class_name!r} is not in the schema")
                continue
            parts.append(b"    " + tostring(_shape_element(shape), encoding="unicode").encode() + b"\n")
            written += 1
        parts.append(b"  </image>\n")
        yield b"".join(parts)
        progress(written)
    yield f"</annotations>\n<!-- {comment} -->\n".encode()


def _quoted(value: str) -> str:
    return '"' + escape(value, {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}) + '"'


def _coordinate(element: Element, name: str, where: str) -> float:
    raw = element.get(name)
    if raw is None:
        raise FormatError(f'attribute "{name}" is missing', where=where)
    return number(raw, f"{where} @{name}")


def _points(raw: str | None, where: str) -> list[list[float]]:
    if not raw:
        raise FormatError('attribute "points" is missing', where=where)
    points = []
    for index, pair in enumerate(raw.split(";")):
        parts = pair.split(",")
        if len(parts) != 2:
            raise FormatError(f"point {index} is not x,y", where=f"{where} @points")
        points.append([number(parts[0], f"{where} @points[{index}]"), number(parts[1], f"{where} @points[{index}]")])
    return points


def read_cvat(data: bytes, *, file_name: str, classes: list[ClassDef] | None = None) -> Document:
    """Parse a CVAT for images 1.1 file; errors name the file and the `<image>` and shape element at fault."""
    root = parse(data, file_name=file_name)
    if root.tag != "annotations":
        raise FormatError(f"the root element is <{root.tag}>, not <annotations>", where=file_name)
    meta_classes: list[ClassDef] = []
    for declared in root.findall("meta/*/labels/label"):
        declared_name = (declared.findtext("name") or "").strip()
        declared_attributes = tuple(
            {
                "name": (a.findtext("name") or "").strip(),
                "kind": CVAT_INPUT.get((a.findtext("input_type") or "").strip()),
            }
            for a in declared.findall("attributes/attribute")
        )
        if declared_name:
            meta_classes.append(ClassDef(declared_name, declared_attributes))
    definitions = {entry.name: entry for entry in meta_classes}
    definitions.update({entry.name: entry for entry in classes or []})
    names = [entry.name for entry in meta_classes]
    frames: list[Frame] = []
    ids: set[int] = set()
    file_names: set[str] = set()
    for index, image in enumerate(root.iter("image")):
        where = f"{file_name}: image[{index}]"
        image_name = image.get("name")
        if not image_name:
            raise FormatError('attribute "name" is missing', where=where)
        where = f"{file_name}: image[{index}] {image_name!r}"
        image_id = int(_coordinate(image, "id", where)) if image.get("id") is not None else index
        width, height = int(_coordinate(image, "width", where)), int(_coordinate(image, "height", where))
        if width <= 0 or height <= 0:
            raise FormatError("width and height must be above 0", where=where)
        if image_id in ids:
            raise FormatError(f"duplicate image id {image_id}", where=where)
        if image_name in file_names:
            raise FormatError(f"duplicate image name {image_name!r}", where=where)
        ids.add(image_id)
        file_names.add(image_name)
        shapes: list[Shape] = []
        for position, element in enumerate(image):
            at = f"{where} <{element.tag}>[{position}]"
            label = element.get("label")
            if not label:
                raise FormatError('attribute "label" is missing', where=at)
            if label not in names:
                names.append(label)
            texts = {a.get("name") or "": a.text or "" for a in element.findall("attribute")}
            attributes = typed_attributes(texts, definitions.get(label), at)
            if element.tag == "tag":
                shapes.append(Shape("tag", None, label, attributes))
            elif element.tag == "box":
                xtl, ytl, xbr, ybr = (_coordinate(element, key, at) for key in ("xtl", "ytl", "xbr", "ybr"))
                if element.get("rotation") is None:
                    shapes.append(Shape("box", [xtl, ytl, xbr - xtl, ybr - ytl], label, attributes))
                else:
                    rotation = math.remainder(_coordinate(element, "rotation", at), 360.0)
                    w, h = xbr - xtl, ybr - ytl
                    shapes.append(Shape("rotated_box", [xtl + w / 2, ytl + h / 2, w, h, rotation], label, attributes))
            elif element.tag in POINT_KINDS:
                shapes.append(Shape(POINT_KINDS[element.tag], _points(element.get("points"), at), label, attributes))
            else:
                raise FormatError(f"<{element.tag}> is not a shape of CVAT for images 1.1", where=at)
        frames.append(Frame(image_id, image_name, width, height, tuple(shapes)))
    return Document(classes=names, frames=frames, marking=_marking(data))


def _marking(data: bytes) -> str:
    head = data[:512].decode("utf-8", "replace")
    start = head.find("<!--")
    end = head.find("-->", start)
    return head[start + 4 : end].strip() if start >= 0 and end > start else ""
