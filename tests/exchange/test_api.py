"""The exchange API and pages: allowed, refused by role, hidden (audited 404) for each operation; the download
is the CMS envelope; bad uploads answer 400 naming the file; the pages carry the project's banner and load no
inline script or style.

STIG: V-222425 (access enforced per request), V-222602 (no inline script: strict CSP), V-222606 (input checked).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from appliance.exchange.actions import enroll_recipient
from appliance.exchange.jobs import execute_export, read_export
from appliance.exchange.models import Export, ExportFormat, Release
from appliance.labeling.models import Annotation
from tests.conftest import sign_in
from tests.datasets.conftest import person
from tests.exchange.conftest import Scene, finished_export
from tests.exchange.test_release import make_certificate
from tests.labeling.conftest import post, records


def test_export_endpoint_queues_for_the_allowed_and_hides_from_the_rest(client: Client, scene: Scene) -> None:
    url = f"/api/exchange/projects/{scene.crew.project.pk}/exports"
    sign_in(client, scene.requester)
    response = post(client, url, {"format": "cvat"})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["banner"] == "SECRET//ALPHA"
    assert body["state"] == "queued"
    execute_export(body["id"])
    detail = client.get(f"/api/exchange/exports/{body['id']}").json()
    assert detail["state"] == "done"
    assert detail["done"] == detail["total"] == 7
    assert post(client, url, {"format": "png"}).status_code == 400
    for who in (scene.low_manager, scene.outside_manager, scene.crew.analyst):
        other = Client()
        sign_in(other, who)
        assert post(other, url, {"format": "cvat"}).status_code == 404
        assert other.get(f"/api/exchange/exports/{body['id']}").status_code == 404
    assert Export.objects.count() == 1


def test_import_endpoint_reports_a_dry_run_and_names_the_file_of_a_bad_upload(client: Client, scene: Scene) -> None:
    data = read_export(finished_export(scene, ExportFormat.CVAT))
    url = f"/api/exchange/projects/{scene.crew.project.pk}/imports"
    sign_in(client, scene.requester)
    before = Annotation.objects.count()
    upload = SimpleUploadedFile("cvat.zip", data, content_type="application/zip")
    response = client.post(url, {"file": upload, "format": "cvat", "dry_run": "true"})
    assert response.status_code == 200, response.content
    assert response.json()["create"] == 7
    bad = SimpleUploadedFile("broken.xml", b"<annotations><image", content_type="application/xml")
    response = client.post(url, {"file": bad, "format": "cvat"})
    assert response.status_code == 400
    assert response.json()["file"][0].startswith("broken.xml: line 1")
    assert Annotation.objects.count() == before
    hidden = Client()
    sign_in(hidden, scene.outside_manager)
    assert hidden.post(url, {"file": SimpleUploadedFile("a.zip", data), "format": "cvat"}).status_code == 404


def test_release_endpoints_carry_the_two_person_rule_through_to_the_envelope(
    client: Client, scene: Scene, tmp_path: Path
) -> None:
    admin = person("sysadmin", "admin", "UNCLASSIFIED", [])
    pem, _, _ = make_certificate(tmp_path)
    admin_client = Client()
    sign_in(admin_client, admin)
    enrolled = post(admin_client, "/api/exchange/recipients", {"name": "Partner", "certificate_pem": pem})
    assert enrolled.status_code == 201, enrolled.content
    sign_in(client, scene.requester)
    assert post(client, "/api/exchange/recipients", {"name": "x", "certificate_pem": pem}).status_code == 404
    export = finished_export(scene, ExportFormat.COCO)
    response = post(
        client,
        f"/api/exchange/exports/{export.pk}/releases",
        {"recipient": enrolled.json()["id"], "reason": "training"},
    )
    assert response.status_code == 201, response.content
    release = response.json()
    decision = f"/api/exchange/releases/{release['id']}/decision"
    own = post(client, decision, {"approve": True, "version": release["version"]})
    assert own.status_code == 403
    approver = Client()
    sign_in(approver, scene.approver)
    assert post(approver, decision, {"approve": True, "version": release["version"]}).status_code == 200
    assert post(approver, decision, {"approve": True, "version": release["version"]}).status_code == 409
    download = client.get(f"/api/exchange/releases/{release['id']}/download")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pkcs7-mime"
    assert download.content[:1] == b"\x30"  # a DER SEQUENCE: the CMS ContentInfo
    [entry] = records("export.release.download")
    assert download["Digest"] == f"sha-256={entry['details']['sha256']}"
    stranger = Client()
    sign_in(stranger, scene.low_manager)
    assert stranger.get(f"/api/exchange/releases/{release['id']}/download").status_code == 404
    assert Release.objects.get().downloads == 1


def test_the_project_page_shows_exports_and_requests_under_the_projects_banner(
    client: Client, scene: Scene, tmp_path: Path
) -> None:
    export = finished_export(scene, ExportFormat.YOLO_OBB)
    admin = person("sysadmin", "admin", "UNCLASSIFIED", [])
    recipient = enroll_recipient(admin, name="Partner", certificate_pem=make_certificate(tmp_path)[0])
    sign_in(client, scene.requester)
    page = client.get(f"/exchange/projects/{scene.crew.project.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="banner-top">SECRET//ALPHA<' in html.replace("\n", "")
    assert export.sha256 in html
    assert "<script>" not in html
    assert " style=" not in html
    response = client.post(
        f"/exchange/exports/{export.pk}/release", {"recipient": str(recipient.pk), "reason": "training"}
    )
    assert response.status_code == 302
    index = client.get("/exchange/")
    assert scene.crew.project.name in index.content.decode()
    hidden = Client()
    sign_in(hidden, scene.outside_manager)
    assert hidden.get(f"/exchange/projects/{scene.crew.project.pk}/").status_code == 404
    analyst = Client()
    sign_in(analyst, scene.crew.analyst)
    assert analyst.get("/exchange/").status_code in (403, 404)


def test_the_page_form_queues_an_export_and_a_dry_run_import(client: Client, scene: Scene) -> None:
    sign_in(client, scene.requester)
    response = client.post(f"/exchange/projects/{scene.crew.project.pk}/export", {"format": "voc"})
    assert response.status_code == 302
    export = Export.objects.get()
    execute_export(export.pk)
    upload = SimpleUploadedFile("voc.zip", read_export(Export.objects.get()))
    page = client.post(
        f"/exchange/projects/{scene.crew.project.pk}/import", {"file": upload, "format": "voc", "dry_run": "on"}
    )
    assert page.status_code == 200
    assert 'data-testid="import-summary"' in page.content.decode()


def test_the_command_line_exports_and_imports_as_the_named_user(scene: Scene, tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("exchange", "export", str(scene.crew.project.pk), "--format", "coco", "--as", "req", stdout=out)
    assert "done: 7 annotations" in out.getvalue()
    export = Export.objects.get()
    path = tmp_path / "coco.zip"
    path.write_bytes(read_export(export))
    out = io.StringIO()
    call_command(
        "exchange",
        "import",
        scene.crew.project.name,
        "--format",
        "coco",
        "--file",
        str(path),
        "--as",
        "req",
        "--dry-run",
        stdout=out,
    )
    assert json.loads(out.getvalue())["create"] == 4
    with pytest.raises(CommandError, match="may not"):
        call_command("exchange", "export", str(scene.crew.project.pk), "--format", "coco", "--as", "lowmgr")
