"""Importing annotations: read a file (or a zip) in one format, match its images to the project's items, check
everything, and only then write, all in one transaction.

Order matters: the upload's first bytes are checked against the format before the rest is read (a 2 GB file that
is not what it claims is refused at once), the file is parsed and structurally checked by the format module,
every image is matched to a task (by file name, or by the SHA-256 of the image file carried in the zip), and
every shape is checked as the labeling app checks an analyst's (geometry inside the image, class in the current
schema, attribute types). Any error stops the import with a message naming the file and the image or element,
before a single row is written. A dry run stops there too and returns what would change.
"""

from __future__ import annotations

import hashlib
import posixpath
import zipfile
from dataclasses import dataclass, field
from typing import IO, Any

from appliance.exchange.formats import coco, cvat, voc, yolo
from appliance.exchange.formats.records import ClassDef, Document, FormatError, Frame, Shape, class_defs
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


@dataclass(frozen=True)
class PlannedTask:
    task: Task
    shapes: list[dict[str, Any]]  # validated: kind, geometry, class_name, attributes


@dataclass
class Plan:
    """What an import would do: per task, the shapes to create (and, replacing, how many live ones go)."""

    tasks: list[PlannedTask] = field(default_factory=list)
    replaced: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    sha256: str = ""
    size: int = 0

    @property
    def created(self) -> int:
        return sum(len(planned.shapes) for planned in self.tasks)

    def summary(self) -> dict[str, Any]:
        return {
            "images": len(self.tasks),
            "create": self.created,
            "delete": self.replaced,
            "dropped": dict(sorted(self.dropped.items())),
            "sha256": self.sha256,
            "per_image": [
                {"task": planned.task.pk, "file_name": planned.task.item.name, "create": len(planned.shapes)}
                for planned in self.tasks[:1000]
            ],
        }


def _read_all(stream: IO[bytes], file_name: str, head: bytes) -> bytes:
    parts = [head]
    size = len(head)
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

    def __init__(self, data: bytes, file_name: str) -> None:
        self.file_name = file_name
        try:
            self.archive = zipfile.ZipFile(_BytesReader(data))
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


class _BytesReader:
    """A seekable view over bytes that zipfile can read (io.BytesIO would copy the buffer)."""

    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.view) if size < 0 else min(len(self.view), self.position + size)
        data = bytes(self.view[self.position : end])
        self.position = end
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.position, 2: len(self.view)}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def seekable(self) -> bool:
        return True


def _task_sizes(project: Project) -> dict[str, tuple[int, str, int, int]]:
    sizes: dict[str, tuple[int, str, int, int]] = {}
    for task_id, name, width, height in Task.objects.filter(project=project).values_list(
        "id", "item__name", "item__width", "item__height"
    ):
        sizes[posixpath.splitext(name)[0]] = (task_id, name, width, height)
    return sizes


def read_document(
    fmt: str, stream: IO[bytes], *, file_name: str, project: Project, classes: list[ClassDef]
) -> tuple[Document, dict[str, str], str, int]:
    """Parse the upload as `fmt`: (document, image digests carried, SHA-256 of the upload, its size)."""
    if fmt not in FORMATS:
        raise ImportRefused(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    head = stream.read(64)
    kind = _kind_of_head(head)
    allowed = EXPECTED.get(fmt, ("zip",))
    if kind not in allowed:
        raise ImportRefused(
            f"does not start like {' or '.join(allowed)} (its first bytes are {head[:8]!r}), so it is not a {fmt} file",
            where=file_name,
        )
    data = _read_all(stream, file_name, head)
    upload_sha = hashlib.sha256(data).hexdigest()
    try:
        if kind != "zip":
            if fmt == "coco":
                return coco.read_coco(data, file_name=file_name), {}, upload_sha, len(data)
            if fmt == "cvat":
                return cvat.read_cvat(data, file_name=file_name, classes=classes), {}, upload_sha, len(data)
            return voc.read_voc_files([(file_name, data)], classes=classes), {}, upload_sha, len(data)
        archive = _Zip(data, file_name)
        digests = archive.image_digests()
        if fmt == "coco":
            name = archive.find("annotations/instances.json", "instances.json") or next(
                (n for n in archive.members if n.endswith(".json") and not n.endswith("manifest.json")), None
            )
            if name is None:
                raise ImportRefused("holds no COCO JSON file", where=file_name)
            document = coco.read_coco(archive.read(name), file_name=f"{file_name}/{name}")
        elif fmt == "cvat":
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
    except FormatError as exc:
        raise ImportRefused(exc.reason, where=exc.where) from None
    return document, digests, upload_sha, len(data)


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
    classes = class_defs(schema.classes)
    document, digests, upload_sha, size = read_document(
        fmt, stream, file_name=file_name, project=project, classes=classes
    )
    by_name, by_sha = _tasks_by(project)
    plan = Plan(sha256=upload_sha, size=size)
    for entry in document.dropped:
        key = f"{entry.what}: {entry.reason}"
        plan.dropped[key] = plan.dropped.get(key, 0) + 1
    seen: dict[int, str] = {}
    for frame in document.frames:
        where = f"{file_name}: image {frame.file_name!r}"
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
            raise ImportRefused(
                f"task {task.pk} is {task.state}; only tasks still being labeled take imports", where=where
            )
        shapes = [
            _checked_shape(shape, f"{where} shape {index}", task, schema) for index, shape in enumerate(frame.shapes)
        ]
        if shapes or mode == "replace":
            plan.tasks.append(PlannedTask(task=task, shapes=shapes))
    return plan
