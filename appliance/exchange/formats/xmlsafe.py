"""Parsing XML from outside the appliance: defusedxml, with DTDs, entities and external references refused.

Every refusal and syntax error becomes a FormatError naming the file and, where the parser knows it, the line and
column, so a billion-laughs bomb or an external-entity probe is a clear 400 and never an expansion or a fetch.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from appliance.exchange.formats.records import FormatError


def parse(data: bytes, *, file_name: str) -> Element:
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FormatError(
            f"refused: {type(exc).__name__} (DTDs and entities are not accepted)", where=file_name
        ) from None
    except ParseError as exc:
        line, column = exc.position
        raise FormatError(
            f"malformed XML: {exc.msg if hasattr(exc, 'msg') else exc}",
            where=f"{file_name}: line {line} column {column}",
        ) from None


def child_text(element: Element, tag: str, where: str) -> str:
    found = element.find(tag)
    if found is None or found.text is None or not found.text.strip():
        raise FormatError(f"<{tag}> is missing or empty", where=where)
    return found.text.strip()
