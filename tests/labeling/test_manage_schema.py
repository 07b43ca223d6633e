"""The schema editor: classes (name, colour, shortcut) with checkbox, select, number and text attributes, published
as a new version through the real action; every refusal is shown on the page (400), what was typed stays in the
form, and nothing is published.

STIG: V-222606 (validate all input), V-222427 (only authorized changes, recorded).
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client

from appliance.labeling.models import SchemaVersion
from tests.conftest import sign_in
from tests.labeling.conftest import Crew, denials, records


def _url(crew: Crew) -> str:
    return f"/projects/{crew.project.pk}/schema"


def _form(*classes: dict[str, Any], op: str = "publish") -> dict[str, Any]:
    """The editor's fields for `classes`, each `{"name", "colour", "shortcut", "attributes": [{...}]}`."""
    data: dict[str, Any] = {"op": op, "classes": str(len(classes))}
    for i, entry in enumerate(classes):
        attributes = entry.get("attributes", [])
        data |= {
            f"c{i}-name": entry.get("name", ""),
            f"c{i}-colour": entry.get("colour", "#123456"),
            f"c{i}-shortcut": entry.get("shortcut", ""),
            f"c{i}-attributes": str(len(attributes)),
        }
        if entry.get("remove"):
            data[f"c{i}-remove"] = "1"
        for j, attribute in enumerate(attributes):
            for key, value in attribute.items():
                data[f"c{i}-a{j}-{key}"] = value
    return data


SHIP = {
    "name": "ship",
    "colour": "#AA0000",
    "shortcut": "s",
    "attributes": [
        {"name": "moored", "kind": "checkbox", "required": "1"},
        {"name": "type", "kind": "select", "options": "cargo, tanker ,ferry"},
        {"name": "length", "kind": "number", "min": "0", "max": "400.5"},
        {"name": "note", "kind": "text"},
        {"name": "", "kind": "checkbox"},  # the empty row the editor always offers
    ],
}
BLANK = {"name": "", "colour": "#000000", "attributes": [{"name": "", "kind": "checkbox"}]}


def test_the_editor_shows_the_current_schema_and_its_versions(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    page = client.get(_url(crew)).content.decode()
    assert 'name="c0-name" value="vessel"' in page
    assert 'name="c0-shortcut" value="v"' in page
    assert 'name="c0-a1-options" value="cargo, tanker"' in page
    assert 'name="c0-a2-max" value="500"' in page
    assert 'name="c2-name" value=""' in page  # room for one more class
    assert "Publish as version 2" in page
    assert "vessel, building" in page


def test_publishing_makes_a_new_version_with_every_attribute_kind(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    response = client.post(_url(crew), _form(SHIP, {"name": "pier", "colour": "#00ff00", "shortcut": "p"}, BLANK))
    assert response.status_code == 302
    version = SchemaVersion.objects.get(project=crew.project, number=2)
    assert version.created_by == crew.owner
    assert version.classes == [
        {
            "name": "ship",
            "colour": "#aa0000",
            "shortcut": "s",
            "attributes": [
                {"name": "moored", "kind": "checkbox", "required": True},
                {"name": "type", "kind": "select", "required": False, "options": ["cargo", "tanker", "ferry"]},
                {"name": "length", "kind": "number", "required": False, "min": 0.0, "max": 400.5},
                {"name": "note", "kind": "text", "required": False},
            ],
        },
        {"name": "pier", "colour": "#00ff00", "shortcut": "p", "attributes": []},
    ]
    assert SchemaVersion.objects.get(project=crew.project, number=1).classes[0]["name"] == "vessel"  # kept as it was
    assert records("project.schema.publish")[-1]["details"] == {"number": 2, "classes": ["ship", "pier"]}
    page = client.get(_url(crew)).content.decode()
    assert "Published schema version 2 of harbour vessels." in page
    assert "ship, pier" in page


def test_removed_classes_and_attributes_are_left_out(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    ship = SHIP | {"attributes": [SHIP["attributes"][0], SHIP["attributes"][1] | {"remove": "1"}]}
    data = _form(ship, {"name": "pier", "colour": "#00ff00", "remove": True})
    assert client.post(_url(crew), data).status_code == 302
    [entry] = SchemaVersion.objects.get(project=crew.project, number=2).classes
    assert [a["name"] for a in entry["attributes"]] == ["moored"]


def test_more_rows_keeps_what_was_typed_and_publishes_nothing(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    response = client.post(
        _url(crew), _form({"name": "dock", "attributes": [{"name": "depth", "kind": "number"}]}, op="more")
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="c0-name" value="dock"' in page
    assert 'name="c0-a0-name" value="depth"' in page
    assert 'name="c0-a1-name" value=""' in page  # a new empty attribute row
    assert 'name="c1-name" value=""' in page  # and a new empty class
    assert SchemaVersion.objects.filter(project=crew.project).count() == 1


def test_publishing_the_current_schema_again_is_refused(client: Client, crew: Crew) -> None:
    sign_in(client, crew.owner)
    unchanged = client.post(_url(crew), {"op": "publish"} | _fields_of(client.get(_url(crew)).content.decode()))
    assert unchanged.status_code == 400
    assert "nothing changed since version 1" in unchanged.content.decode()
    assert SchemaVersion.objects.filter(project=crew.project).count() == 1


def _fields_of(page: str) -> dict[str, str]:
    """The editor's inputs as the browser would post them untouched (text, colour, hidden; selected options)."""
    fields: dict[str, str] = {}
    for match in re.finditer(r'<input[^>]*type="(?:text|color|hidden)"[^>]*name="([^"]+)" value="([^"]*)"', page):
        fields[match.group(1)] = html.unescape(match.group(2))
    for match in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        fields[match.group(1)] = match.group(2)
    for select in re.finditer(r'<select name="([^"]+)".*?</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]+)" selected>', select.group(0))
        fields[select.group(1)] = chosen.group(1) if chosen else "checkbox"
    fields.pop("csrfmiddlewaretoken", None)
    return fields


INVALID = [
    pytest.param(
        [{"name": "a", "shortcut": "x"}, {"name": "b", "shortcut": "x"}],
        "shortcut &#x27;x&#x27; is used twice",
        1,
        id="duplicate-shortcut",
    ),
    pytest.param([{"name": "a"}, {"name": "a"}], "class &#x27;a&#x27; is defined twice", 1, id="duplicate-class"),
    pytest.param([{"name": "a", "colour": "red"}], "colour must be #rrggbb", 0, id="bad-colour"),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "kind", "kind": "select", "options": " , "}]}],
        "options must list 1 to",
        0,
        id="select-without-options",
    ),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "size", "kind": "number", "min": "9", "max": "3"}]}],
        "min is above",
        0,
        id="min-above-max",
    ),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "size", "kind": "number", "min": "tall"}]}],
        "size: min must be a number, not &#x27;tall&#x27;",
        0,
        id="min-not-a-number",
    ),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "size", "kind": "number", "max": "inf"}]}],
        "size: max must be a number",
        0,
        id="max-infinite",
    ),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "x", "kind": "slider"}]}], "kind must be one of", 0, id="unknown-kind"
    ),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "x", "kind": "text"}, {"name": "x", "kind": "text"}]}],
        "duplicate names",
        0,
        id="duplicate-attribute",
    ),
    pytest.param([{"name": "a", "shortcut": "xy"}], "shortcut must be one key", 0, id="two-key-shortcut"),
    pytest.param([{"name": "", "shortcut": "q"}], "must be a non-empty name", 0, id="shortcut-without-name"),
    pytest.param([{"name": "a", "remove": True}], "a schema has 1 to", None, id="no-class-left"),
]


@pytest.mark.parametrize(("classes", "message", "row"), INVALID)
def test_a_refused_schema_is_shown_with_the_row_at_fault_and_nothing_is_published(
    client: Client, crew: Crew, classes: list[dict[str, Any]], message: str, row: int | None
) -> None:
    sign_in(client, crew.owner)
    response = client.post(_url(crew), _form(*classes))
    assert response.status_code == 400
    page = response.content.decode()
    errors = page.split('data-testid="schema-errors"', 1)[1].split("</div>", 1)[0]
    assert "Nothing was published" in errors
    assert message in errors, errors
    fieldsets = page.split('<fieldset class="schema-class')[1:]
    flagged = [index for index, fieldset in enumerate(fieldsets) if fieldset.startswith(" invalid")]
    assert flagged == ([] if row is None else [row])
    if row is not None:
        assert message in fieldsets[row]
        assert f'value="{classes[row]["name"]}"' in fieldsets[row]  # what was typed is still there
    assert SchemaVersion.objects.filter(project=crew.project).count() == 1
    assert len(records("project.schema.publish")) == 1  # the one made with the project


def test_analysts_cannot_publish_and_the_refusal_is_recorded(client: Client, crew: Crew) -> None:
    sign_in(client, crew.analyst)
    assert client.post(_url(crew), _form(SHIP)).status_code == 404
    assert denials()[-1]["details"] == {"permission": "project.manage", "gate": "role", "path": _url(crew)}
    assert SchemaVersion.objects.filter(project=crew.project).count() == 1
