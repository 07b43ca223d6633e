"""Building an export: a project's annotations, in one format, streamed into a zip that streams into the vault.

Memory stays bounded whatever the project's size: tasks and annotations are read by keyset (never OFFSET, never
the whole table), one image's shapes at a time; the format writers yield their bytes as they go; the zip is written
to a sink that the blob store drains segment by segment as it encrypts (`blobs.put` pulls the chunks, so nothing
waits in a buffer longer than one write). Included images are decrypted in memory one at a time and never touch
the disk in plaintext. The seen-file-name set (one entry per image, not per annotation) is the only thing that
grows with the project.

Every export holds a MANIFEST.txt (the banner line first and last, the project, its label, the files with their
SHA-256 and portion marking) and the same as manifest.json; the formats that allow a comment or an extension
carry the banner inside their own files too (COCO's "appliance" object, the XML comments, data.yaml's comments).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from appliance.datasets.models import Item
from appliance.datasets.serving import load
from appliance.exchange.formats import coco, cvat, voc, yolo
from appliance.exchange.formats.records import ClassDef, DropLog, Frame, Shape, class_defs
from appliance.exchange.models import Export, ExportFormat
from appliance.labeling.models import Annotation, Project, Task

BATCH = 2000
WINDOW = 50
FLUSH_BYTES = 1 << 20
MANIFEST_VERSION = 1


@dataclass
class _Task:
    id: int
    item_id: int
    file_name: str
    width: int
    height: int


def _tasks(project: Project) -> Iterator[_Task]:
    last = 0
    rows = Task.objects.filter(project=project).order_by("id")
    while True:
        batch = list(
            rows.filter(id__gt=last).values_list("id", "item_id", "item__name", "item__width", "item__height")[:BATCH]
        )
        if not batch:
            return
        for task_id, item_id, name, width, height in batch:
            yield _Task(task_id, item_id, name, width, height)
        last = batch[-1][0]


def _annotations(task_ids: list[int], batch_size: int) -> Iterator[tuple[int, Shape]]:
    """The live annotations of a window of tasks, ordered by (task, id), by keyset on that pair.

    A window of a few dozen tasks keeps each page's sort to the rows of those tasks (the (task, deleted) index
    finds them), whatever the project's size: a keyset over the whole project re-sorted every remaining row for
    each page, which made a 1,000,000-annotation export quadratic.
    """
    last_task, last_id = 0, 0
    rows = Annotation.objects.filter(task_id__in=task_ids, deleted=False).order_by("task_id", "id")
    while True:
        batch = list(
            rows.filter(Q(task_id__gt=last_task) | Q(task_id=last_task, id__gt=last_id)).values_list(
                "task_id", "id", "kind", "geometry", "class_name", "attributes"
            )[:batch_size]
        )
        for task_id, _, kind, geometry, class_name, attributes in batch:
            yield task_id, Shape(kind, geometry, class_name, attributes or {})
        if len(batch) < batch_size:
            return
        last_task, last_id = batch[-1][0], batch[-1][1]


class _Names:
    """Unique file names inside the export. Names are compared by stem, case-folded, because YOLO and VOC name
    each image's label file by its stem: a repeated stem (two datasets, or a.jpg beside a.png) gets the item id."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, task: _Task) -> str:
        name = posixpath.basename(task.file_name.replace("\\", "/")) or f"item-{task.item_id}"
        key = posixpath.splitext(name)[0].casefold()
        if key in self.seen:
            name = f"{task.item_id}-{name}"
            key = posixpath.splitext(name)[0].casefold()
        self.seen.add(key)
        return name


def _frames(window: list[_Task], names: _Names, with_shapes: bool, batch: int) -> Iterator[tuple[_Task, Frame]]:
    annotations = _annotations([task.id for task in window], batch) if with_shapes else iter(())
    pending = next(annotations, None)
    for task in window:
        shapes: list[Shape] = []
        while pending is not None and pending[0] == task.id:
            shapes.append(pending[1])
            pending = next(annotations, None)
        yield task, Frame(task.id, names(task), task.width, task.height, tuple(shapes))


def frames_of(
    project: Project, *, with_shapes: bool = True, window_size: int = WINDOW, batch: int = BATCH
) -> Iterator[tuple[_Task, Frame]]:
    """Each task of the project (by keyset) with its live shapes, read `window_size` tasks at a time in pages of
    `batch` annotations (without `with_shapes`, the tasks alone: COCO's images list needs no annotation)."""
    names = _Names()
    window: list[_Task] = []
    for task in _tasks(project):
        window.append(task)
        if len(window) == window_size:
            yield from _frames(window, names, with_shapes, batch)
            window = []
    if window:
        yield from _frames(window, names, with_shapes, batch)


class _Sink:
    """The zip's output: collects what zipfile writes until the generator hands it on (not seekable, so zipfile
    writes data descriptors and never goes back)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> Iterator[bytes]:
        if self.parts:
            parts, self.parts = self.parts, []
            yield b"".join(parts)


@dataclass
class Built:
    """What building an export found out, for its record and its manifest."""

    annotations: int = 0
    images: int = 0
    frames: int = 0
    drops: DropLog = field(default_factory=DropLog)
    files: list[dict[str, Any]] = field(default_factory=list)


def _marking_of(export: Export) -> str:
    return export.access_label().banner()


class _Entry:
    """One file being written into the zip, hashed as it goes, flushed to the sink in ~1 MiB pieces."""

    def __init__(self, archive: zipfile.ZipFile, sink: _Sink, name: str, built: Built, marking: str) -> None:
        self.handle = archive.open(name, "w", force_zip64=True)
        self.sink = sink
        self.digest = hashlib.sha256()
        self.size = 0
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.name = name
        self.built = built
        self.marking = marking

    def write(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.buffer.append(chunk)
            self.buffered += len(chunk)
            if self.buffered >= FLUSH_BYTES:
                yield from self._flush()
        yield from self._flush()

    def _flush(self) -> Iterator[bytes]:
        data = b"".join(self.buffer)
        self.buffer, self.buffered = [], 0
        self.digest.update(data)
        self.size += len(data)
        self.handle.write(data)
        yield from self.sink.drain()

    def close(self) -> Iterator[bytes]:
        self.handle.close()
        self.built.files.append(
            {"name": self.name, "size": self.size, "sha256": self.digest.hexdigest(), "marking": self.marking}
        )
        yield from self.sink.drain()


def _manifest(export: Export, project: Project, built: Built) -> tuple[bytes, bytes]:
    marking = _marking_of(export)
    body = {
        "manifest": MANIFEST_VERSION,
        "classification": marking,
        "project": {"id": project.pk, "name": project.name, "label": project.access_label().banner()},
        "export": {"id": export.pk, "format": export.format, "include_images": export.include_images},
        "counts": {"images": built.frames, "annotations": built.annotations, "image_files": built.images},
        "dropped": dict(sorted(built.drops.counts.items())),
        "files": built.files,
    }
    as_json = json.dumps(body, indent=2, ensure_ascii=False).encode() + b"\n"
    lines = [
        marking,
        "",
        f"Export {export.pk} of project {project.name!r} ({export.get_format_display()})",
        f"Project label: {project.access_label().banner()}",
        f"Images: {built.frames}  Annotations: {built.annotations}  Image files: {built.images}",
        "",
        "Files (portion marking, SHA-256, bytes, name):",
        *(f"({entry['marking']}) {entry['sha256']} {entry['size']} {entry['name']}" for entry in built.files),
        "",
        "Not carried by this format:" if built.drops.counts else "Nothing was dropped.",
        *(f"  {count} x {what}" for what, count in sorted(built.drops.counts.items())),
        "",
        marking,
    ]
    return "\n".join(lines).encode() + b"\n", as_json


def build_export(
    export: Export, *, progress: Callable[[Built], object] = lambda built: None, built: Built | None = None
) -> Iterator[bytes]:
    """The export's zip, as chunks to hand to `blobs.put`. `built` (filled in as it goes) says what went in."""
    built = built if built is not None else Built()
    project = export.project
    schema = project.current_schema()
    classes: list[ClassDef] = class_defs(schema.classes if schema else [])
    marking = _marking_of(export)
    sink = _Sink()
    # Deflate level 1: a fifth of level 6's time for ~10% more bytes, and deflate was the exporter's largest cost.
    archive = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True, compresslevel=1)
    fmt = export.format
    drops = built.drops

    def counted(frames: Iterable[tuple[_Task, Frame]]) -> Iterator[Frame]:
        for _, frame in frames:
            built.frames += 1
            built.annotations += len(frame.shapes)
            progress(built)
            yield frame

    def entry(name: str) -> _Entry:
        return _Entry(archive, sink, name, built, marking)

    if fmt == ExportFormat.COCO:
        first_pass = True

        def coco_frames() -> Iterator[Frame]:
            nonlocal first_pass
            if first_pass:
                first_pass = False
                return (frame for _, frame in frames_of(project, with_shapes=False))
            return counted(frames_of(project))

        out = entry("annotations/instances.json")
        yield from out.write(
            coco.iter_coco(classes=classes, frames=coco_frames, marking=marking, project=project.name, drops=drops)
        )
        yield from out.close()
    elif fmt == ExportFormat.CVAT:
        out = entry("annotations.xml")
        yield from out.write(
            cvat.iter_cvat(
                classes=classes, frames=counted(frames_of(project)), marking=marking, project=project.name, drops=drops
            )
        )
        yield from out.close()
    elif fmt == ExportFormat.VOC:
        for frame in counted(frames_of(project)):
            stem = posixpath.splitext(frame.file_name)[0]
            out = entry(f"Annotations/{stem}.xml")
            yield from out.write([voc.annotation_file(frame, classes=classes, marking=marking, drops=drops)])
            yield from out.close()
        out = entry("ImageSets/Main/default.txt")
        stems = (
            f"{posixpath.splitext(frame.file_name)[0]}\n".encode() for _, frame in frames_of(project, with_shapes=False)
        )
        yield from out.write(stems)
        yield from out.close()
    else:
        layout = fmt.removeprefix("yolo-")
        out = entry("data.yaml")
        yield from out.write([yolo.data_yaml(classes, layout=layout, marking=marking)])
        yield from out.close()
        for frame in counted(frames_of(project)):
            out = entry(yolo.label_path(frame.file_name))
            yield from out.write([yolo.label_file(frame, classes=classes, layout=layout, drops=drops)])
            yield from out.close()
    if export.include_images:
        folder = "JPEGImages" if fmt == ExportFormat.VOC else "images"
        for task, frame in frames_of(project, with_shapes=False):
            item = Item.objects.select_related("dataset").get(pk=task.item_id)
            out = entry(f"{folder}/{frame.file_name}")
            yield from out.write([load(item, "image").data])
            yield from out.close()
            built.images += 1
    text, as_json = _manifest(export, project, built)
    for name, data in (("MANIFEST.txt", text), ("manifest.json", as_json)):
        archive.writestr(name, data)
        yield from sink.drain()
    archive.close()
    yield from sink.drain()
