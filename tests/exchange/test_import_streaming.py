"""Streamed imports: a COCO file of 100,000 annotations arrives as the page and the API receive it (an encrypted
spool), is checked in full and written exactly, with one audit record carrying its SHA-256; a file of 200,000 with
one bad annotation near its end, or a duplicate id far from the first, changes nothing. (Writing is the ORM's
bulk insert, the same for any size; reading and checking is what streams, so the refusals take the larger file.)

STIG: V-222606 (all input validated before any of it is written), V-222474 (the import is on the record with the
file's digest).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.datasets.uploads import EncryptedUpload
from appliance.exchange.actions import ExchangeError, import_annotations
from appliance.labeling.models import Annotation, AnnotationRevision, Project, Task
from appliance.vault.spool import Spool
from tests.exchange.conftest import Scene
from tests.exchange.test_import import _fresh_project, _state
from tests.labeling.conftest import records

COUNT = 200_000
WRITTEN = 100_000


def _box(index: int, width: int, height: int) -> list[float]:
    """A box inside the image that differs from its neighbours, so a misplaced row would show."""
    w, h = 1 + index % 7, 1 + index % 5
    return [float(index % (width - w)), float(index % 13 % (height - h)) + 0.5, float(w), float(h)]


def _coco_pieces(project: Project, *, count: int, change: dict[int, dict[str, Any]]) -> Iterator[bytes]:
    """A COCO file written piece by piece (as a foreign tool would lay it out: annotations first)."""
    tasks = list(Task.objects.filter(project=project).select_related("item").order_by("id"))
    yield b'{"annotations": ['
    for index in range(count):
        item = tasks[index % len(tasks)].item
        annotation: dict[str, Any] = {
            "id": index + 1,
            "image_id": index % len(tasks) + 1,
            "category_id": 1 + index % 2,
            "bbox": _box(index, item.width, item.height),
            "iscrowd": 0,
        }
        annotation |= change.get(index, {})
        yield (b"," if index else b"") + json.dumps(annotation).encode()
    images = [
        {"id": position + 1, "file_name": task.item.name, "width": task.item.width, "height": task.item.height}
        for position, task in enumerate(tasks)
    ]
    categories = [{"id": 1, "name": "vessel"}, {"id": 2, "name": "building"}]
    yield b'], "images": ' + json.dumps(images).encode() + b', "categories": ' + json.dumps(categories).encode() + b"}"


def _spooled(pieces: Iterator[bytes], name: str) -> tuple[EncryptedUpload, str]:
    spool = Spool()
    digest = hashlib.sha256()
    buffer = bytearray()
    for piece in pieces:
        digest.update(piece)
        buffer += piece
        if len(buffer) >= 1 << 16:
            spool.write(bytes(buffer))
            buffer.clear()
    spool.write(bytes(buffer))
    spool.close_for_writing()
    upload = EncryptedUpload(spool, name=name, content_type="application/json", charset=None, content_type_extra=None)
    return upload, digest.hexdigest()


def test_a_large_coco_file_is_checked_then_written_exactly_from_the_encrypted_spool(scene: Scene) -> None:
    target = _fresh_project(scene)
    upload, sha256 = _spooled(_coco_pieces(target, count=WRITTEN, change={}), "big.json")
    try:
        summary = import_annotations(
            scene.crew.owner, project=target, format="coco", stream=upload, file_name="big.json"
        )
    finally:
        upload.close()
    tasks = list(Task.objects.filter(project=target).select_related("item").order_by("id"))
    assert summary["create"] == WRITTEN
    assert summary["images"] == len(tasks)
    assert summary["sha256"] == sha256
    rows = Annotation.objects.filter(task__project=target, deleted=False).order_by("id")
    assert rows.count() == WRITTEN
    assert AnnotationRevision.objects.filter(annotation__task__project=target, version=1).count() == WRITTEN
    position = {task.pk: index for index, task in enumerate(tasks)}
    for index, (task_id, kind, geometry, class_name) in enumerate(
        rows.values_list("task_id", "kind", "geometry", "class_name").iterator(5000)
    ):
        item = tasks[position[task_id]].item
        assert position[task_id] == index % len(tasks), index
        assert (kind, class_name) == ("box", ("vessel", "building")[index % 2]), index
        assert geometry == _box(index, item.width, item.height), index
    [entry] = records("annotation.import")
    assert entry["details"]["sha256"] == sha256
    assert entry["details"]["created"] == WRITTEN
    assert all(task.version == 2 and task.state == "in_progress" for task in Task.objects.filter(project=target))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {COUNT - 3: {"bbox": [90.0, 1.0, 50.0, 5.0]}},
            r"big\.json: image '.*' shape \d+: geometry.* lies outside the image",
        ),
        ({COUNT - 2: {"id": 7}}, rf"big\.json: annotations\[{COUNT - 2}\]: duplicate annotation id 7"),
        ({COUNT - 1: {"category_id": 3}}, rf"big\.json: annotations\[{COUNT - 1}\]: category_id 3 names no category"),
    ],
)
def test_one_bad_annotation_at_the_end_of_a_large_file_changes_nothing(
    scene: Scene, change: dict[int, dict[str, Any]], message: str
) -> None:
    target = _fresh_project(scene)
    before = _state(target)
    upload, _ = _spooled(_coco_pieces(target, count=COUNT, change=change), "big.json")
    try:
        with pytest.raises(ExchangeError, match=message):
            import_annotations(scene.crew.owner, project=target, format="coco", stream=upload, file_name="big.json")
    finally:
        upload.close()
    assert _state(target) == before
    assert records("annotation.import") == []


def test_a_coco_file_inside_a_zip_is_streamed_from_its_member(scene: Scene) -> None:
    target = _fresh_project(scene)
    body = b"".join(_coco_pieces(target, count=5000, change={}))
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("annotations/instances.json", body)
    summary = import_annotations(
        scene.crew.owner, project=target, format="coco", stream=io.BytesIO(packed.getvalue()), file_name="a.zip"
    )
    assert summary["create"] == 5000
    assert summary["sha256"] == hashlib.sha256(packed.getvalue()).hexdigest()
    assert Annotation.objects.filter(task__project=target).count() == 5000


def test_malformed_json_deep_in_a_large_file_is_refused_naming_its_line(scene: Scene) -> None:
    target = _fresh_project(scene)
    body = b"".join(_coco_pieces(target, count=20_000, change={})).replace(b"},{", b"},\n{")
    cut = body.rindex(b"\n", 0, len(body) - 1000)
    broken = body[:cut] + b"\n{,}" + body[cut:]
    line = broken[: cut + 2].count(b"\n") + 1
    with pytest.raises(ExchangeError, match=rf"big\.json: line {line} column 2: malformed JSON"):
        import_annotations(
            scene.crew.owner, project=target, format="coco", stream=io.BytesIO(broken), file_name="big.json"
        )
    assert Annotation.objects.filter(task__project=target).count() == 0


class _Pipe:
    """A stream that cannot seek (a pipe): it is read once into memory, under the same cap, then imported."""

    def __init__(self, data: bytes) -> None:
        self.inner = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.inner.read(size)

    def seekable(self) -> bool:
        return False


def test_a_byte_order_mark_and_a_stream_that_cannot_seek_are_both_imported(scene: Scene) -> None:
    target = _fresh_project(scene)
    body = b"\xef\xbb\xbf" + b"".join(_coco_pieces(target, count=300, change={}))
    summary = import_annotations(
        scene.crew.owner,
        project=target,
        format="coco",
        stream=_Pipe(body),  # type: ignore[arg-type]
        file_name="p.json",
    )
    assert summary["create"] == 300
    assert summary["sha256"] == hashlib.sha256(body).hexdigest()
    assert Annotation.objects.filter(task__project=target).count() == 300


class _ChangingFile(io.BytesIO):
    """A file that someone rewrites on disk while it is imported: from its `swap_at`-th rewind on it holds
    `later` (as a path given to `manage.py exchange import` may)."""

    def __init__(self, first: bytes, later: bytes, swap_at: int) -> None:
        super().__init__(first)
        self.later, self.swap_at, self.rewinds = later, swap_at, 0

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) == (0, 0):
            self.rewinds += 1
            if self.rewinds == self.swap_at:
                position = super().seek(0)
                self.truncate()
                self.write(self.later)
                return super().seek(position)
        return super().seek(offset, whence)


def test_a_file_changed_between_the_check_and_the_write_rolls_everything_back(scene: Scene) -> None:
    target = _fresh_project(scene)
    first = b"".join(_coco_pieces(target, count=3000, change={}))
    later = b"".join(_coco_pieces(target, count=3000, change={10: {"bbox": [2.0, 2.0, 3.0, 3.0]}}))
    rewinds = _ChangingFile(first, first, swap_at=0)
    import_annotations(
        scene.crew.owner, project=target, format="coco", stream=rewinds, file_name="c.json", dry_run=True
    )
    before = _state(target)
    # The check reads the file on every rewind of a dry run; the next rewind is the write's own scan.
    changing = _ChangingFile(first, later, swap_at=rewinds.rewinds + 1)
    with pytest.raises(ExchangeError, match=r"c\.json: the file changed while it was being imported"):
        import_annotations(scene.crew.owner, project=target, format="coco", stream=changing, file_name="c.json")
    assert changing.rewinds > rewinds.rewinds + 1, "the write scanned the changed file, then the digest refused it"
    assert _state(target) == before
    assert records("annotation.import") == []
