"""Images in a dataset: import (all or nothing), encrypted storage, serving to those who pass all three gates,
and a record of every view.

STIG: V-222425/V-222426/V-222427 (authorizations, need-to-know, labels on items and imagery), V-222588 and
V-222589 (information at rest protected by encryption), V-222606 (input validation), V-222474/V-222478 (who
viewed what, when).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from appliance.auditlog.models import AuditRecord
from appliance.datasets.models import Item
from appliance.datasets.serving import load
from appliance.vault.stream import BlobIntegrityError
from tests.conftest import sign_in
from tests.datasets.conftest import HIDDEN_FROM, Cast, denials
from tests.datasets.imagery import image_bytes, zip_of


def _items_url(cast: Cast) -> str:
    return f"/api/datasets/{cast.dataset.pk}/items"


def _records(action: str) -> list[dict]:
    return [json.loads(row.canonical) for row in AuditRecord.objects.filter(action=action).order_by("seq")]


def _blob_files() -> list[Path]:
    """The stored blobs (the spool folder beside them holds uploads in flight and a per-process lock file)."""
    root = Path(settings.VAULT_BLOB_DIR)
    return [path for path in root.glob("*/*/*") if path.is_file()] if root.exists() else []


def _spooled() -> list[Path]:
    return list((Path(settings.VAULT_BLOB_DIR) / "spool").glob("*.spool"))


def _upload(client: Client, cast: Cast, files: dict[str, bytes], field: str = "files"):
    uploads = [SimpleUploadedFile(name, data) for name, data in files.items()]
    return client.post(_items_url(cast), {field: uploads if field == "files" else uploads[0]})


@pytest.fixture
def imported(client: Client, cast: Cast) -> dict[str, bytes]:
    files = {"a.jpg": image_bytes(1), "b.png": image_bytes(2, "PNG"), "c.webp": image_bytes(3, "WEBP")}
    sign_in(client, cast.owner)
    response = _upload(client, cast, files)
    assert response.status_code == 201, response.content
    client.logout()
    return files


def test_an_import_stores_each_image_encrypted_and_records_it(client: Client, cast: Cast, imported) -> None:
    items = list(Item.objects.filter(dataset=cast.dataset).order_by("name"))
    assert [item.name for item in items] == ["a.jpg", "b.png", "c.webp"]
    assert [item.format for item in items] == ["JPEG", "PNG", "WEBP"]
    [entry] = _records("dataset.import")
    assert entry["label"] == "SECRET//ALPHA"
    assert sorted(name for _, name, _ in entry["details"]["items"]) == ["a.jpg", "b.png", "c.webp"]
    assert len(_blob_files()) == 6  # an original and a thumbnail each


def test_no_32_byte_window_of_any_imported_image_is_anywhere_under_the_data_folders(cast: Cast, imported) -> None:
    """Plaintext imagery never touches disk (V-222589): scan every file the import could have written."""
    windows = {data[start : start + 32] for data in imported.values() for start in range(0, len(data) - 32, 7)}
    roots = {Path(settings.VAULT_BLOB_DIR), Path(settings.DATA_DIR)}
    scanned = 0
    for root in roots:
        for path in (p for p in root.rglob("*") if p.is_file()) if root.exists() else ():
            content = path.read_bytes()
            scanned += 1
            assert not any(window in content for window in windows), path
    assert scanned >= 6


def test_a_refused_file_names_itself_and_its_reason_and_nothing_is_written(client: Client, cast: Cast) -> None:
    sign_in(client, cast.owner)
    files = {"good.jpg": image_bytes(1), "lies.png": image_bytes(2, "JPEG"), "notes.txt": b"hello"}
    response = _upload(client, cast, files)
    assert response.status_code == 400
    problems = " ".join(response.json()["files"])
    assert "lies.png" in problems
    assert "JPEG" in problems
    assert "notes.txt" in problems
    assert "good.jpg" not in problems
    assert not Item.objects.exists()
    assert _blob_files() == []
    assert _records("dataset.import") == []


def test_duplicates_are_imported_once_and_a_repeat_import_brings_nothing_new(client: Client, cast: Cast) -> None:
    sign_in(client, cast.owner)
    same = image_bytes(7)
    response = _upload(client, cast, {"one.jpg": same, "two.jpg": same})
    assert response.status_code == 201
    assert any("two.jpg" in line and "one.jpg" in line for line in response.json()["report"])
    assert Item.objects.count() == 1
    again = _upload(client, cast, {"three.jpg": same})
    assert again.status_code == 400
    assert "already in the dataset" in " ".join(again.json()["files"])
    assert Item.objects.count() == 1


def test_an_archive_imports_its_images_and_a_zip_slip_refuses_it_whole(client: Client, cast: Cast) -> None:
    sign_in(client, cast.owner)
    good = zip_of({"scans/p1.jpg": image_bytes(11), "scans/p2.png": image_bytes(12, "PNG")})
    assert _upload(client, cast, {"scans.zip": good}, field="archive").status_code == 201
    assert sorted(Item.objects.values_list("name", flat=True)) == ["scans/p1.jpg", "scans/p2.png"]
    evil = zip_of({"p3.jpg": image_bytes(13), "../../etc/p4.jpg": image_bytes(14)})
    response = _upload(client, cast, {"evil.zip": evil}, field="archive")
    assert response.status_code == 400
    assert "p4.jpg" in " ".join(response.json()["files"])
    assert Item.objects.count() == 2


def test_only_importers_may_import_and_a_refusal_is_audited(client: Client, cast: Cast) -> None:
    sign_in(client, cast.member)  # an analyst: sees the dataset, may not import into it
    response = _upload(client, cast, {"a.jpg": image_bytes(1)})
    assert response.status_code == 404
    assert [d["details"]["gate"] for d in denials()] == ["role"]
    assert not Item.objects.exists()


def test_a_cleared_member_gets_the_original_with_safe_headers_and_the_view_is_recorded(
    client: Client, cast: Cast, imported
) -> None:
    item = Item.objects.get(name="a.jpg")
    sign_in(client, cast.member)
    response = client.get(f"{_items_url(cast)}/{item.pk}/image")
    assert response.status_code == 200
    assert response.content == imported["a.jpg"]
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "no-store"
    [view] = _records("item.view.image")
    assert (view["actor"], view["object"], view["label"]) == (
        "member",
        {"type": "item", "id": str(item.pk)},
        "SECRET//ALPHA",
    )
    download = client.get(f"{_items_url(cast)}/{item.pk}/image?download=1")
    assert download["Content-Disposition"] == 'attachment; filename="a.jpg"'
    assert len(_records("item.download")) == 1


@pytest.mark.parametrize(("who", "gate"), HIDDEN_FROM)
@pytest.mark.parametrize("tail", ["", "/image", "/thumbnail", "/preview"])
def test_everyone_else_gets_an_audited_404_for_items_and_their_imagery(
    client: Client, cast: Cast, imported, who: str, gate: str, tail: str
) -> None:
    item = Item.objects.get(name="a.jpg")
    sign_in(client, getattr(cast, who))
    response = client.get(f"{_items_url(cast)}/{item.pk}{tail}")
    assert response.status_code == 404
    assert [d["details"]["gate"] for d in denials()] == [gate]
    assert _records("item.view.image") == []
    listing = client.get(_items_url(cast))
    assert listing.status_code == 404


def test_an_item_under_another_dataset_is_as_missing_as_one_that_does_not_exist(
    client: Client, cast: Cast, imported
) -> None:
    from appliance.datasets.actions import create_dataset

    other = create_dataset(cast.owner, name="other", classification="SECRET", compartments=["ALPHA"])
    item = Item.objects.get(name="a.jpg")
    sign_in(client, cast.owner)
    assert client.get(f"/api/datasets/{other.pk}/items/{item.pk}/image").status_code == 404
    assert denials()[-1]["details"]["gate"] == "missing"


def test_the_grid_page_records_its_thumbnails_once_and_its_token_covers_them(
    client: Client, cast: Cast, imported
) -> None:
    sign_in(client, cast.member)
    page = client.get(f"/datasets/{cast.dataset.pk}/")
    assert page.status_code == 200
    [shown] = _records("dataset.thumbnails.view")
    assert len(shown["details"]["items"]) == 3
    sources = [part.split('"')[0] for part in page.content.decode().split('src="')[1:] if "/thumbnail?t=" in part]
    assert len(sources) == 3
    for source in sources:
        thumb = client.get(source.replace("&amp;", "&"))
        assert thumb.status_code == 200
        assert thumb["Content-Type"] in ("image/jpeg", "image/png")
    assert _records("item.view.thumbnail") == []
    item = Item.objects.get(name="a.jpg")
    bare = client.get(f"/datasets/{cast.dataset.pk}/items/{item.pk}/thumbnail")
    assert bare.status_code == 200
    assert len(_records("item.view.thumbnail")) == 1  # no token: recorded on its own


def test_a_blob_swapped_between_items_fails_to_decrypt(cast: Cast, imported) -> None:
    """The blob's identity (dataset, item, kind) is bound into its encryption: a swapped blob is refused."""
    first, second = Item.objects.order_by("id")[:2]
    Item.objects.filter(pk=first.pk).update(image_blob=second.image_blob)
    first.refresh_from_db()
    with pytest.raises(BlobIntegrityError):
        load(first, "image")


def test_two_files_under_one_name_are_refused_before_anything_is_read(client: Client, cast: Cast) -> None:
    sign_in(client, cast.owner)
    uploads = [SimpleUploadedFile("same.jpg", image_bytes(1)), SimpleUploadedFile("same.jpg", image_bytes(2))]
    response = client.post(_items_url(cast), {"files": uploads})
    assert response.status_code == 400
    assert "same.jpg: sent more than once" in " ".join(response.json()["files"])
    assert not Item.objects.exists()


def test_an_upload_over_the_cap_is_refused_with_413_and_leaves_no_spool(client: Client, cast: Cast, settings) -> None:
    """Uploads are encrypted into a spool as they arrive; over the cap the request stops (V-222594) and the
    spool is deleted with the request."""
    settings.UPLOAD_MAX_FILE_BYTES = 4096
    settings.UPLOAD_MAX_REQUEST_BYTES = 8192
    sign_in(client, cast.owner)
    big = image_bytes(9, "PNG", size=(200, 200))
    assert len(big) > 4096
    response = _upload(client, cast, {"big.png": big})
    assert response.status_code == 413
    assert "big.png" in " ".join(response.json()["files"])
    page = client.post(f"/datasets/{cast.dataset.pk}/import", {"files": [SimpleUploadedFile("big.png", big)]})
    assert page.status_code == 413
    assert b"big.png" in page.content
    assert not Item.objects.exists()
    assert _blob_files() == []
    assert _spooled() == []


def test_an_upload_through_the_real_endpoint_leaves_no_spool_behind(client: Client, cast: Cast) -> None:
    sign_in(client, cast.owner)
    response = _upload(client, cast, {"a.jpg": image_bytes(1)})
    assert response.status_code == 201
    assert _spooled() == []
