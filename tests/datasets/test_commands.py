"""`manage.py datasets import` and `manage.py demo_data`: the same all-or-nothing import, recorded, from the
command line (V-222606 input validation; V-222478 the record names the user the import was made for)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from appliance.auditlog.models import AuditRecord
from appliance.datasets.models import Dataset, Item
from tests.datasets.conftest import Cast
from tests.datasets.imagery import image_bytes, zip_of


def test_an_archive_is_imported_on_behalf_of_a_user_with_progress(cast: Cast, tmp_path: Path, capsys) -> None:
    archive = tmp_path / "batch.zip"
    archive.write_bytes(zip_of({f"p{n}.jpg": image_bytes(n) for n in range(5)}))
    call_command("datasets", "import", str(cast.dataset.pk), str(archive), "--as", "owner")
    out, err = capsys.readouterr()
    assert "imported 5 image(s)" in out
    assert "stored 5/5 (100%)" in err
    assert Item.objects.filter(dataset=cast.dataset).count() == 5
    [entry] = [json.loads(r.canonical) for r in AuditRecord.objects.filter(action="dataset.import")]
    assert (entry["actor"], entry["component"]) == ("owner", "cli")


def test_a_folder_is_imported_by_dataset_name(cast: Cast, tmp_path: Path) -> None:
    for n in range(3):
        (tmp_path / f"scan{n}.png").write_bytes(image_bytes(n, "PNG"))
    call_command("datasets", "import", "harbour survey", str(tmp_path), "--as", "owner")
    assert sorted(Item.objects.values_list("name", flat=True)) == ["scan0.png", "scan1.png", "scan2.png"]


def test_a_bad_archive_lists_every_refusal_and_imports_nothing(cast: Cast, tmp_path: Path) -> None:
    archive = tmp_path / "bad.zip"
    archive.write_bytes(zip_of({"ok.jpg": image_bytes(1), "/abs.jpg": image_bytes(2), "x.png": image_bytes(3)}))
    with pytest.raises(CommandError) as refused:
        call_command("datasets", "import", str(cast.dataset.pk), str(archive), "--as", "owner")
    message = str(refused.value)
    assert "/abs.jpg" in message
    assert "x.png" in message
    assert not Item.objects.exists()


def test_a_user_without_the_permission_is_refused_and_it_is_recorded(cast: Cast, tmp_path: Path) -> None:
    archive = tmp_path / "one.zip"
    archive.write_bytes(zip_of({"a.jpg": image_bytes(1)}))
    with pytest.raises(CommandError, match="may not import"):
        call_command("datasets", "import", str(cast.dataset.pk), str(archive), "--as", "member")
    assert AuditRecord.objects.filter(action="access.denied").count() == 1
    assert not Item.objects.exists()


@pytest.mark.django_db
def test_demo_data_creates_a_labeled_dataset_of_rendered_documents_once(capsys) -> None:
    call_command("demo_users")
    call_command("demo_data", "--count", "3")
    dataset = Dataset.objects.get(name="Demo captured documents")
    assert dataset.access_label().banner().startswith("SECRET")
    assert set(dataset.members.values_list("username", flat=True)) >= {"demo-manager", "demo-analyst"}
    assert Item.objects.filter(dataset=dataset).count() == 3
    call_command("demo_data", "--count", "3")
    assert "left unchanged" in capsys.readouterr().out
    assert Item.objects.filter(dataset=dataset).count() == 3
