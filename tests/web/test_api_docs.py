"""The API's description: an OpenAPI 3 schema generated from the views, and Swagger UI served from packaged files,
for signed-in users only; nothing on the page points outside the appliance (V-222425; no external resource)."""

from __future__ import annotations

import re

import yaml
from django.test import Client

from tests.conftest import sign_in


def test_the_schema_describes_the_api_for_a_signed_in_user(client: Client, analyst) -> None:
    sign_in(client, analyst)
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert "/api/datasets/{dataset_id}/items" in paths
    assert "post" in paths["/api/datasets/{dataset_id}/items"]
    assert "/api/audit/records" in paths
    assert "personalToken" in schema["components"]["securitySchemes"]


def test_swagger_ui_loads_only_local_files(client: Client, analyst) -> None:
    sign_in(client, analyst)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    assert all(not re.match(r"^(https?:)?//", source) for source in sources), sources
    assert "<script>" not in html  # the start-up script is a file of its own (strict CSP)
    script = next(source for source in sources if "script" in source)
    assert client.get(script).status_code == 200


def test_anonymous_callers_get_no_schema(client: Client) -> None:
    assert client.get("/api/schema/").status_code == 401


def test_only_the_docs_page_relaxes_styles_and_images_and_scripts_stay_self(client: Client, analyst) -> None:
    sign_in(client, analyst)
    docs = client.get("/api/docs/")["Content-Security-Policy"]
    assert "script-src 'self';" in docs + ";"
    assert "'unsafe-inline'" in docs.split("style-src", 1)[1].split(";", 1)[0]
    home = client.get("/")["Content-Security-Policy"]
    assert "unsafe-inline" not in home
    assert "data:" not in home
