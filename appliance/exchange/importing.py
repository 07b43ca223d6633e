"""Importing annotations: read a file (or a zip) in one format, match its images to the project's items, check
everything, and only then write, all in one transaction.

Order matters: the upload's first bytes are checked against the format before the rest is read (a 2 GB file that
is not what it claims is refused at once), the file is parsed and structurally checked by the format module,
every image is matched to a task (by file name, or by the SHA-256 of the image file carried in the zip), and
every shape is checked as the labeling app checks an analyst's (geometry inside the image, class in the current
schema, attribute types). Any error stops the import with a message naming the file and the image or element,
before a single row is written. A dry run stops there too and returns what would change.

Memory: the upload is never read whole. Its SHA-256 and size are measured in a first scan (refused over the cap),
and the file, or the member of the zip, is read again for each later scan: a COCO file (the format of big
imports) is checked in one scan of its images and one of its annotations, keeping per image only the matched
task and a count, and `Plan.shapes()` scans it once more to hand the checked shapes to the writer in file order.
The other formats' files (XML, YOLO labels) are read whole, member by member. An upload must be seekable (the
encrypted spool and a file on disk are); anything else is first copied into memory, under the same cap.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from appliance.exchange.formats import coco, cvat, voc, yolo
from appliance.exchange.formats.records import ClassDef, Document, DropLog, FormatError, Frame, Shape, class_defs
from appliance.labeling.geometry import GeometryError, validate_geometry
from appliance.labeling.models import EDITABLE_STATES, Project, SchemaVersion, Task
from appliance.labeling.schema import SchemaError, class_of, validate_attributes

FORMATS = ("coco", "yolo-detect", "yolo-obb", "yolo-segment", "voc", "cvat")
MATCH_BY = ("name", "sha256")
MODES = ("add", "replace")
MAX_UPLOAD_BYTES = 1 << 30
MAX_ZIP_MEMBERS = 200_000
MAX_MEMBER_BYTES = 1 << 30
ZIP_MAGIC = b"PK\x03\x04"


class ImportRefused(ValueError):
    """An import refused before anything was written; `where` names the file and element at fault."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


@dataclass
class PlannedTask:
    task: Task
    count: int = 0  # shapes to create on it


type CheckedShapes = Iterator[tuple[int, dict[str, Any]]]  # (task id, validated kind, geometry, class_name, attributes)


def _no_shapes() -> CheckedShapes:
    return iter(())


@dataclass
class Plan:
    """What an import would do: per task, how many shapes it gets (and, replacing, how many live ones go).

    The shapes themselves are not kept: `shapes()` yields them again, checked again, in the file's order, so the
    writer holds one batch at a time; `check_unchanged()` afterwards proves they came from the same bytes."""

    tasks: list[PlannedTask] = field(default_factory=list)
    replaced: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    sha256: str = ""
    size: int = 0
    shapes: Callable[[], CheckedShapes] = _no_shapes
    check_unchanged: Callable[[], None] = lambda: None

    @property
    def created(self) -> int:
        return sum(planned.count for planned in self.tasks)

    def summary(self) -> dict[str, Any]:
        return {
            "images": len(self.tasks),
            "create": self.created,
            "delete": self.replaced,
            "dropped": dict(sorted(self.dropped.items())),
            "sha256": self.sha256,
            "per_image": [
                {"task": planned.task.pk, "file_name": planned.task.item.name, "create": planned.count}
                for planned in self.tasks[:1000]
            ],
        }


class _Window:
    """One scan of the upload from its first byte, refused past the cap; closing it leaves the upload open."""

    def __init__(self, stream: IO[bytes], file_name: str) -> None:
        stream.seek(0)
        self.stream = stream
        self.file_name = file_name
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size if size >= 0 else MAX_UPLOAD_BYTES + 1 - self.size)
        self.size += len(chunk)
        if self.size > MAX_UPLOAD_BYTES:
            raise ImportRefused(f"larger than the {MAX_UPLOAD_BYTES >> 20} MiB an import may be", where=self.file_name)
        return chunk

    def close(self) -> None:
        """The upload belongs to the caller, who closes it (an encrypted upload's close deletes its spool)."""

    def __enter__(self) -> _Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Upload:
    """The upload as a source read several times: measured (SHA-256, size) in a first scan, then reopened."""

    def __init__(self, stream: IO[bytes], file_name: str, head: bytes) -> None:
        self.file_name = file_name
        seekable = getattr(stream, "seekable", None)
        if seekable is None or not seekable():
            stream = io.BytesIO(head + _read_rest(stream, file_name, len(head)))
        self.stream = stream
        self.sha256, self.size = self.measure()

    def measure(self) -> tuple[str, int]:
        digest = hashlib.sha256()
        with _Window(self.stream, self.file_name) as window:
            while chunk := window.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest(), window.size

    def reopen(self) -> IO[bytes]:
        # A reader in all but typeshed's nominal `IO` class.
        return _Window(self.stream, self.file_name)  # type: ignore[return-value]

    def read_all(self) -> bytes:
        with _Window(self.stream, self.file_name) as window:
            return window.read()

    def check_unchanged(self) -> None:
        if self.measure() != (self.sha256, self.size):
            raise ImportRefused(
                "the file changed while it was being imported; nothing was written", where=self.file_name
            )


def _read_rest(stream: IO[bytes], file_name: str, size: int) -> bytes:
    """A stream that cannot seek, read into memory under the cap (the same bytes a second scan needs)."""
    parts: list[bytes] = []
    while chunk := stream.read(1 << 20):
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise ImportRefused(f"larger than the {MAX_UPLOAD_BYTES >> 20} MiB an import may be", where=file_name)
        parts.append(chunk)
    return b"".join(parts)


def _kind_of_head(head: bytes) -> str:
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(ZIP_MAGIC):
        return "zip"
    if stripped.startswith(b"{"):
        return "json"
    if stripped.startswith(b"<"):
        return "xml"
    return "unknown"


EXPECTED = {"coco": ("json", "zip"), "cvat": ("xml", "zip"), "voc": ("xml", "zip")}


class _Zip:
    """A zip read defensively: member count, sizes and names checked before anything is decompressed."""

    def __init__(self, stream: IO[bytes], file_name: str) -> None:
        self.file_name = file_name
        try:
            stream.seek(0)
            self.archive = zipfile.ZipFile(stream)
        except zipfile.BadZipFile as exc:
            raise ImportRefused(f"not a valid zip ({exc})", where=file_name) from None
        infos = self.archive.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise ImportRefused(f"holds {len(infos)} files; at most {MAX_ZIP_MEMBERS}", where=file_name)
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if name.startswith("/") or ".." in name.split("/") or "\\" in name:
                raise ImportRefused(f"member name {name!r} is not a plain relative path", where=file_name)
            if info.file_size > MAX_MEMBER_BYTES:
                raise ImportRefused(f"member {name!r} is too large", where=file_name)
            if not info.is_dir():
                self.members[name] = info

    def read(self, name: str) -> bytes:
        info = self.members[name]
        with self.archive.open(info) as handle:
            data = handle.read(info.file_size + 1)
        if len(data) != info.file_size:
            raise ImportRefused(f"member {name!r} does not match its declared size", where=self.file_name)
        return data

    def opener(self, name: str) -> Callable[[], IO[bytes]]:
        """Reopens one member for each scan; zipfile checks its length and CRC as it is read to the end."""
        info = self.members[name]
        return lambda: self.archive.open(info)

    def matching(self, folder: str, suffix: str) -> list[str]:
        return sorted(
            name
            for name in self.members
            if name.lower().endswith(suffix) and posixpath.dirname(name).rsplit("/", 1)[-1] == folder
        )

    def find(self, *candidates: str) -> str | None:
        for candidate in candidates:
            for name in self.members:
                if name == candidate or name.endswith("/" + candidate):
                    return name
        return None

    def image_digests(self) -> dict[str, str]:
        """file name (base name) -> SHA-256 of every image carried in the zip, read one at a time."""
        digests: dict[str, str] = {}
        for name, info in self.members.items():
            folder = posixpath.dirname(name).rsplit("/", 1)[-1]
            if folder in ("images", "JPEGImages"):
                digest = hashlib.sha256()
                with self.archive.open(info) as handle:
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
                digests[posixpath.basename(name)] = digest.hexdigest()
        return digests


def _task_sizes(project: Project) -> dict[str, tuple[int, str, int, int]]:
    sizes: dict[str, tuple[int, str, int, int]] = {}
    for task_id, name, width, height in Task.objects.filter(project=project).values_list(
        "id", "item__name", "item__width", "item__height"
    ):
        sizes[posixpath.splitext(name)[0]] = (task_id, name, width, height)
    return sizes


def open_upload(fmt: str, stream: IO[bytes], *, file_name: str) -> tuple[_Upload, str]:
    """Check the first bytes against `fmt` before reading on (a 2 GB file that is not what it claims is refused
    at once), then measure the upload: (the upload, its kind: json, xml or zip)."""
    if fmt not in FORMATS:
        raise ImportRefused(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        stream.seek(0)  # an upload already read (a dry run first) is read again from its first byte
    head = stream.read(64)
    kind = _kind_of_head(head)
    allowed = EXPECTED.get(fmt, ("zip",))
    if kind not in allowed:
        raise ImportRefused(
            f"does not start like {' or '.join(allowed)} (its first bytes are {head[:8]!r}), so it is not a {fmt} file",
            where=file_name,
        )
    return _Upload(stream, file_name, head), kind


def coco_source(upload: _Upload, kind: str) -> tuple[Callable[[], IO[bytes]], str, dict[str, str]]:
    """Where a COCO import's JSON is: (reopen it, the name its errors carry, image digests carried in the zip)."""
    if kind != "zip":
        return upload.reopen, upload.file_name, {}
    archive = _Zip(upload.stream, upload.file_name)
    name = archive.find("annotations/instances.json", "instances.json") or next(
        (n for n in archive.members if n.endswith(".json") and not n.endswith("manifest.json")), None
    )
    if name is None:
        raise ImportRefused("holds no COCO JSON file", where=upload.file_name)
    return archive.opener(name), f"{upload.file_name}/{name}", archive.image_digests()


def read_document(
    fmt: str, upload: _Upload, kind: str, *, project: Project, classes: list[ClassDef]
) -> tuple[Document, dict[str, str]]:
    """Parse a non-COCO upload whole as `fmt`: (document, image digests carried in the zip)."""
    file_name = upload.file_name
    if kind != "zip":
        data = upload.read_all()
        if fmt == "cvat":
            return cvat.read_cvat(data, file_name=file_name, classes=classes), {}
        return voc.read_voc_files([(file_name, data)], classes=classes), {}
    archive = _Zip(upload.stream, file_name)
    digests = archive.image_digests()
    if fmt == "cvat":
        name = archive.find("annotations.xml")
        if name is None:
            raise ImportRefused("holds no annotations.xml", where=file_name)
        document = cvat.read_cvat(archive.read(name), file_name=f"{file_name}/{name}", classes=classes)
    elif fmt == "voc":
        names = archive.matching("Annotations", ".xml")
        if not names:
            raise ImportRefused("holds no Annotations/*.xml", where=file_name)
        document = voc.read_voc_files(((f"{file_name}/{n}", archive.read(n)) for n in names), classes=classes)
    else:
        yaml_name = archive.find("data.yaml")
        if yaml_name is None:
            raise ImportRefused("holds no data.yaml", where=file_name)
        labels = archive.matching("labels", ".txt")
        document = yolo.read_labels(
            archive.read(yaml_name),
            ((f"{file_name}/{n}", archive.read(n)) for n in labels),
            images=_task_sizes(project),
            layout=fmt.removeprefix("yolo-"),
        )
    return document, digests


def _tasks_by(project: Project) -> tuple[dict[str, list[Task]], dict[str, Task]]:
    by_name: dict[str, list[Task]] = {}
    by_sha: dict[str, Task] = {}
    for task in Task.objects.filter(project=project).select_related("item__dataset").order_by("id").iterator(2000):
        by_name.setdefault(task.item.name, []).append(task)
        by_sha[task.item.sha256] = task
    return by_name, by_sha


def _match(
    frame: Frame,
    where: str,
    *,
    match: str,
    by_name: dict[str, list[Task]],
    by_sha: dict[str, Task],
    digests: dict[str, str],
) -> Task:
    base = posixpath.basename(frame.file_name)
    if match == "sha256":
        digest = digests.get(base)
        if digest is None:
            raise ImportRefused(
                f"image {frame.file_name!r} is not in the zip, so it cannot be matched by SHA-256", where=where
            )
        task = by_sha.get(digest)
        if task is None:
            raise ImportRefused(
                f"image {frame.file_name!r} (SHA-256 {digest[:16]}...) is no item of the project", where=where
            )
        return task
    found = by_name.get(base, [])
    if not found:
        raise ImportRefused(f"image {frame.file_name!r} matches no item of the project by name", where=where)
    if len(found) > 1:
        raise ImportRefused(
            f"image {frame.file_name!r} names {len(found)} items; match by SHA-256 instead", where=where
        )
    return found[0]


def _checked_shape(shape: Shape, where: str, task: Task, schema: SchemaVersion) -> dict[str, Any]:
    item = task.item
    try:
        geometry = validate_geometry(shape.kind, shape.geometry, width=item.width, height=item.height)
    except GeometryError as exc:
        raise ImportRefused(f"{exc} ({exc.field})", where=where) from None
    definition = class_of(schema.schema, shape.class_name)
    if definition is None:
        raise ImportRefused(
            f"class {shape.class_name!r} is not in the project's schema (version {schema.number})", where=where
        )
    try:
        attributes = validate_attributes(definition, shape.attributes)
    except SchemaError as exc:
        raise ImportRefused(str(exc), where=where) from None
    return {"kind": shape.kind, "geometry": geometry, "class_name": definition["name"], "attributes": attributes}


def _planned_task(
    frame: Frame,
    where: str,
    *,
    match: str,
    by_name: dict[str, list[Task]],
    by_sha: dict[str, Task],
    digests: dict[str, str],
    seen: dict[int, str],
) -> PlannedTask:
    """The task an image of the file goes to, checked: matched once, same size, still being labeled."""
    task = _match(frame, where, match=match, by_name=by_name, by_sha=by_sha, digests=digests)
    if task.pk in seen:
        raise ImportRefused(f"matches the same item as image {seen[task.pk]!r}", where=where)
    seen[task.pk] = frame.file_name
    if (frame.width, frame.height) != (task.item.width, task.item.height):
        raise ImportRefused(
            f"is {frame.width}x{frame.height} in the file but the item is {task.item.width}x{task.item.height}",
            where=where,
        )
    if task.state not in EDITABLE_STATES:
        raise ImportRefused(f"task {task.pk} is {task.state}; only tasks still being labeled take imports", where=where)
    return PlannedTask(task=task)


def plan_import(
    fmt: str, stream: IO[bytes], *, file_name: str, project: Project, match: str = "name", mode: str = "add"
) -> Plan:
    """Read and check everything an import would write; raises ImportRefused at the first problem."""
    if match not in MATCH_BY:
        raise ImportRefused(f"match must be one of {', '.join(MATCH_BY)}")
    if mode not in MODES:
        raise ImportRefused(f"mode must be one of {', '.join(MODES)}")
    schema = project.current_schema()
    if schema is None:
        raise ImportRefused("the project has no schema yet, so no class can be imported")
    upload, kind = open_upload(fmt, stream, file_name=file_name)
    try:
        if fmt == "coco":
            plan = _plan_coco(upload, kind, project=project, schema=schema, match=match, mode=mode)
        else:
            plan = _plan_document(fmt, upload, kind, project=project, schema=schema, match=match, mode=mode)
    except FormatError as exc:
        raise ImportRefused(exc.reason, where=exc.where) from None
    except zipfile.BadZipFile as exc:
        raise ImportRefused(f"not a valid zip ({exc})", where=file_name) from None
    plan.sha256, plan.size = upload.sha256, upload.size
    plan.check_unchanged = upload.check_unchanged
    return plan


def _plan_coco(upload: _Upload, kind: str, *, project: Project, schema: SchemaVersion, match: str, mode: str) -> Plan:
    """Two scans of the JSON: images (matched to tasks here), then annotations (each checked as it comes);
    `Plan.shapes()` is a third, for the writer."""
    file_name = upload.file_name
    reopen, json_name, digests = coco_source(upload, kind)
    header = coco.read_coco_header(reopen, file_name=json_name)
    by_name, by_sha = _tasks_by(project)
    seen: dict[int, str] = {}
    planned: dict[int, PlannedTask] = {}
    for image in header.images:
        frame = Frame(image.id, image.file_name, image.width, image.height)
        where = f"{file_name}: image {image.file_name!r}"
        planned[image.id] = _planned_task(
            frame, where, match=match, by_name=by_name, by_sha=by_sha, digests=digests, seen=seen
        )
    del by_name, by_sha, seen
    names = {image.id: image.file_name for image in header.images}

    def checked(drops: DropLog) -> CheckedShapes:
        counts: dict[int, int] = {}
        try:
            for image_id, shape in coco.iter_coco_annotations(reopen, file_name=json_name, header=header, drops=drops):
                entry = planned[image_id]
                index = counts.get(image_id, 0)
                counts[image_id] = index + 1
                where = f"{file_name}: image {names[image_id]!r} shape {index}"
                yield entry.task.pk, _checked_shape(shape, where, entry.task, schema)
        except FormatError as exc:
            raise ImportRefused(exc.reason, where=exc.where) from None
        except zipfile.BadZipFile as exc:
            raise ImportRefused(f"not a valid zip ({exc})", where=file_name) from None

    drops = DropLog()
    by_task = {entry.task.pk: entry for entry in planned.values()}
    for task_id, _shape in checked(drops):
        by_task[task_id].count += 1
    plan = Plan(
        tasks=[entry for entry in planned.values() if entry.count or mode == "replace"],
        dropped=_dropped(drops),
        shapes=lambda: checked(DropLog()),
    )
    return plan


def _dropped(drops: DropLog) -> dict[str, int]:
    """What the file held that we cannot represent, counted by what and why (over the entries a DropLog keeps)."""
    counts: dict[str, int] = {}
    for entry in drops:
        key = f"{entry.what}: {entry.reason}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _plan_document(
    fmt: str, upload: _Upload, kind: str, *, project: Project, schema: SchemaVersion, match: str, mode: str
) -> Plan:
    """The formats read whole (XML, YOLO labels): the document, then every frame matched and every shape checked."""
    file_name = upload.file_name
    document, digests = read_document(fmt, upload, kind, project=project, classes=class_defs(schema.classes))
    by_name, by_sha = _tasks_by(project)
    plan = Plan()
    for entry in document.dropped:
        key = f"{entry.what}: {entry.reason}"
        plan.dropped[key] = plan.dropped.get(key, 0) + 1
    seen: dict[int, str] = {}
    shapes: list[tuple[int, dict[str, Any]]] = []
    for frame in document.frames:
        where = f"{file_name}: image {frame.file_name!r}"
        planned = _planned_task(frame, where, match=match, by_name=by_name, by_sha=by_sha, digests=digests, seen=seen)
        for index, shape in enumerate(frame.shapes):
            shapes.append((planned.task.pk, _checked_shape(shape, f"{where} shape {index}", planned.task, schema)))
        planned.count = len(frame.shapes)
        if planned.count or mode == "replace":
            plan.tasks.append(planned)
    plan.shapes = lambda: iter(shapes)
    return plan
