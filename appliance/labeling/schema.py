"""Label schemas: which classes an annotation may carry and what attributes each class takes. Django-free.

A schema is published as a whole and never edited in place (see `SchemaVersion`), so the checks here run once
per publish on the definition and once per saved annotation on its attributes. Refusals are `SchemaError`s with
the field path at fault, the same way geometry refusals are.
"""

from __future__ import annotations

import math
import re
from typing import Any

ATTRIBUTE_KINDS = ("checkbox", "select", "number", "text")
MAX_CLASSES = 500
MAX_ATTRIBUTES = 50
MAX_OPTIONS = 200
NAME_MAX_LENGTH = 100
TEXT_MAX_LENGTH = 1000
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")

type Schema = dict[str, Any]


class SchemaError(ValueError):
    """A schema or an annotation's attributes refused; `field` names the part at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def _name(raw: Any, field: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise SchemaError(f"{field} must be a non-empty name", field=field)
    if len(raw.strip()) > NAME_MAX_LENGTH:
        raise SchemaError(f"{field} has at most {NAME_MAX_LENGTH} characters", field=field)
    return raw.strip()


def _is_finite_number(raw: Any) -> bool:
    """A JSON number a float can hold: not a bool, not NaN/inf, not an integer literal past a float's range."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return False
    try:
        return math.isfinite(raw)
    except OverflowError:
        return False


def _finite(raw: Any, field: str) -> float | None:
    if raw is None:
        return None
    if not _is_finite_number(raw):
        raise SchemaError(f"{field} must be a finite number", field=field)
    return float(raw)


def _attribute(raw: Any, field: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise SchemaError(f"{field} must be an object", field=field)
    kind = raw.get("kind")
    if kind not in ATTRIBUTE_KINDS:
        raise SchemaError(f"{field}.kind must be one of {', '.join(ATTRIBUTE_KINDS)}", field=f"{field}.kind")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise SchemaError(f"{field}.required must be true or false", field=f"{field}.required")
    attribute: dict[str, Any] = {"name": _name(raw.get("name"), f"{field}.name"), "kind": kind, "required": required}
    if kind == "select":
        options = raw.get("options")
        if not isinstance(options, list) or not options or len(options) > MAX_OPTIONS:
            raise SchemaError(f"{field}.options must list 1 to {MAX_OPTIONS} choices", field=f"{field}.options")
        names = [_name(option, f"{field}.options[{index}]") for index, option in enumerate(options)]
        if len(set(names)) != len(names):
            raise SchemaError(f"{field}.options has duplicates", field=f"{field}.options")
        attribute["options"] = names
    if kind == "number":
        low, high = _finite(raw.get("min"), f"{field}.min"), _finite(raw.get("max"), f"{field}.max")
        if low is not None and high is not None and low > high:
            raise SchemaError(f"{field}.min is above {field}.max", field=f"{field}.min")
        attribute["min"], attribute["max"] = low, high
    return attribute


def validate_schema(raw: Any) -> Schema:
    """The schema in canonical form ({"classes": [...]}), or `SchemaError`.

    Names and shortcut keys must be unique: a shortcut that picked one of two classes would silently mislabel.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("classes"), list):
        raise SchemaError("a schema is an object with a list of classes", field="schema.classes")
    entries = raw["classes"]
    if not entries or len(entries) > MAX_CLASSES:
        raise SchemaError(f"a schema has 1 to {MAX_CLASSES} classes", field="schema.classes")
    classes: list[dict[str, Any]] = []
    names: set[str] = set()
    shortcuts: set[str] = set()
    for index, entry in enumerate(entries):
        field = f"schema.classes[{index}]"
        if not isinstance(entry, dict):
            raise SchemaError(f"{field} must be an object", field=field)
        name = _name(entry.get("name"), f"{field}.name")
        if name in names:
            raise SchemaError(f"class {name!r} is defined twice", field=f"{field}.name")
        colour = entry.get("colour")
        if not isinstance(colour, str) or not _COLOUR.match(colour):
            raise SchemaError(f"{field}.colour must be #rrggbb", field=f"{field}.colour")
        shortcut = entry.get("shortcut", "")
        if not isinstance(shortcut, str) or len(shortcut) > 1:
            raise SchemaError(f"{field}.shortcut must be one key or empty", field=f"{field}.shortcut")
        if shortcut and shortcut in shortcuts:
            raise SchemaError(f"shortcut {shortcut!r} is used twice", field=f"{field}.shortcut")
        attributes_raw = entry.get("attributes", [])
        if not isinstance(attributes_raw, list) or len(attributes_raw) > MAX_ATTRIBUTES:
            raise SchemaError(f"{field}.attributes must list at most {MAX_ATTRIBUTES}", field=f"{field}.attributes")
        attributes = [_attribute(item, f"{field}.attributes[{n}]") for n, item in enumerate(attributes_raw)]
        if len({a["name"] for a in attributes}) != len(attributes):
            raise SchemaError(f"{field}.attributes has duplicate names", field=f"{field}.attributes")
        names.add(name)
        if shortcut:
            shortcuts.add(shortcut)
        classes.append({"name": name, "colour": colour.lower(), "shortcut": shortcut, "attributes": attributes})
    return {"classes": classes}


def class_of(schema: Schema, name: Any) -> dict[str, Any] | None:
    return next((entry for entry in schema["classes"] if entry["name"] == name), None)


def validate_attributes(definition: dict[str, Any], raw: Any, *, field: str = "attributes") -> dict[str, Any]:
    """An annotation's attribute values checked against its class: known names, right types, required present."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SchemaError(f"{field} must be an object", field=field)
    known = {attribute["name"]: attribute for attribute in definition["attributes"]}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise SchemaError(f"class {definition['name']!r} has no attribute(s) {', '.join(unknown)}", field=field)
    values: dict[str, Any] = {}
    for name, attribute in known.items():
        where = f"{field}.{name}"
        if name not in raw or raw[name] is None:
            if attribute["required"]:
                raise SchemaError(f"{where} is required", field=where)
            continue
        value = raw[name]
        kind = attribute["kind"]
        if kind == "checkbox" and not isinstance(value, bool):
            raise SchemaError(f"{where} must be true or false", field=where)
        if kind == "select" and value not in attribute["options"]:
            raise SchemaError(f"{where} must be one of {', '.join(attribute['options'])}", field=where)
        if kind == "text" and (not isinstance(value, str) or len(value) > TEXT_MAX_LENGTH):
            raise SchemaError(f"{where} must be text of at most {TEXT_MAX_LENGTH} characters", field=where)
        if kind == "number":
            if not _is_finite_number(value):
                raise SchemaError(f"{where} must be a finite number", field=where)
            if attribute["min"] is not None and value < attribute["min"]:
                raise SchemaError(f"{where} must be at least {attribute['min']:g}", field=where)
            if attribute["max"] is not None and value > attribute["max"]:
                raise SchemaError(f"{where} must be at most {attribute['max']:g}", field=where)
        values[name] = value
    return values
