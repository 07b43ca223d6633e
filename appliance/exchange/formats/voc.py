"""Pascal VOC XML, both directions: one file per image, boxes only.

Convention: VOC numbers pixels from 1, and `xmax`/`ymax` name the last pixel inside the box. Our box [x, y, w, h]
starts at the top-left corner of pixel x (0-based), so `xmin = x + 1`, `ymin = y + 1`, `xmax = x + w`,
`ymax = y + h`, and back `x = xmin - 1`, `w = xmax - xmin + 1` (the convention of the VOC devkit and of
Detectron2's and torchvision's readers). Sub-pixel values are written as they are.

Attribute values travel in `<attributes><attribute><name/><value/></attribute></attributes>` inside each
`<object>` (the form CVAT's VOC export uses); the classification banner is an XML comment before the root.
Every other kind is reported as dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.etree.ElementTree import Element, SubElement, tostring

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
from appliance.exchange.formats.xmlsafe import child_text, parse

CARRIES = ("box",)


def _text(parent: Element, tag: str, value: str) -> Element:
    element = SubElement(parent, tag)
    element.text = value
    return element


def annotation_file(
    frame: Frame, *, classes: list[ClassDef], marking: str, drops: DropLog, folder: str = "images"
) -> bytes:
    known = {entry.name for entry in classes}
    root = Element("annotation")
    _text(root, "folder", folder)
    _text(root, "filename", frame.file_name)
    source = SubElement(root, "source")
    _text(source, "database", "appliance")
    size = SubElement(root, "size")
    _text(size, "width", str(frame.width))
    _text(size, "height", str(frame.height))
    _text(size, "depth", "3")
    _text(root, "segmented", "0")
    for shape in frame.shapes:
        if shape.kind not in CARRIES:
            drops.add(frame.file_name, shape.kind, "Pascal VOC holds boxes only")
            continue
        if shape.class_name not in known:
            drops.add(frame.file_name, shape.kind, f"class {shape.class_name!r} is not in the schema")
            continue
        x, y, w, h = shape.geometry
        obj = SubElement(root, "object")
        _text(obj, "name", shape.class_name)
        _text(obj, "pose", "Unspecified")
        _text(obj, "truncated", "0")
        _text(obj, "difficult", "0")
        box = SubElement(obj, "bndbox")
        for tag, value in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w), ("ymax", y + h)):
            _text(box, tag, text_number(value))
        if shape.attributes:
            attributes = SubElement(obj, "attributes")
            for name, value in shape.attributes.items():
                attribute = SubElement(attributes, "attribute")
                _text(attribute, "name", name)
                _text(attribute, "value", attribute_text(value))
    body = tostring(root, encoding="unicode")
    comment = marking.replace("--", "- -")
    return f'<?xml version="1.0" encoding="utf-8"?>\n<!-- {comment} -->\n{body}\n'.encode()


def read_annotation(data: bytes, *, file_name: str, classes: list[ClassDef], image_id: int = 0) -> Frame:
    """One VOC file as a frame; attribute values (text in XML) are typed by the classes' attribute kinds."""
    definitions = {entry.name: entry for entry in classes}
    root = parse(data, file_name=file_name)
    if root.tag != "annotation":
        raise FormatError(f"the root element is <{root.tag}>, not <annotation>", where=file_name)
    image_name = child_text(root, "filename", file_name)
    size = root.find("size")
    if size is None:
        raise FormatError("<size> is missing", where=file_name)
    width = int(number(child_text(size, "width", f"{file_name}: size"), f"{file_name}: size/width"))
    height = int(number(child_text(size, "height", f"{file_name}: size"), f"{file_name}: size/height"))
    if width <= 0 or height <= 0:
        raise FormatError("width and height must be above 0", where=f"{file_name}: size")
    shapes: list[Shape] = []
    for index, obj in enumerate(root.findall("object")):
        where = f"{file_name}: object[{index + 1}]"
        name = child_text(obj, "name", where)
        box = obj.find("bndbox")
        if box is None:
            raise FormatError("<bndbox> is missing", where=where)
        xmin, ymin, xmax, ymax = (
            number(child_text(box, tag, f"{where}/bndbox"), f"{where}/bndbox/{tag}")
            for tag in ("xmin", "ymin", "xmax", "ymax")
        )
        if xmax - xmin + 1 <= 0 or ymax - ymin + 1 <= 0:
            raise FormatError("the box has no width or height (xmax/ymax before xmin/ymin)", where=f"{where}/bndbox")
        values: dict[str, str] = {}
        for attribute in obj.findall("attributes/attribute"):
            key = child_text(attribute, "name", f"{where}/attributes")
            found = attribute.find("value")
            values[key] = (found.text or "") if found is not None else ""
        attributes = typed_attributes(values, definitions.get(name), where)
        shapes.append(Shape("box", [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1], name, attributes))
    return Frame(image_id, image_name, width, height, tuple(shapes))


def read_voc_files(files: Iterable[tuple[str, bytes]], *, classes: list[ClassDef]) -> Document:
    """A folder of VOC files (one per image) as one document; image names must be distinct."""
    frames: list[Frame] = []
    names: list[str] = []
    seen: dict[str, str] = {}
    for index, (path, data) in enumerate(files):
        frame = read_annotation(data, file_name=path, classes=classes, image_id=index + 1)
        if frame.file_name in seen:
            raise FormatError(f"image {frame.file_name!r} is also described by {seen[frame.file_name]}", where=path)
        seen[frame.file_name] = path
        for shape in frame.shapes:
            if shape.class_name not in names:
                names.append(shape.class_name)
        frames.append(frame)
    return Document(classes=names, frames=frames)
