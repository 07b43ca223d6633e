"""The navigation offers each person the work areas their roles open, and nothing they would be refused.

STIG: V-222425 (the pages enforce access; the navigation only avoids leading people into refusals).
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import sign_in
from tests.datasets.conftest import person


def _links(client: Client) -> list[str]:
    page = client.get("/").content.decode()
    nav = page.split('<nav class="identity">', 1)[1].split("</nav>", 1)[0]
    return [part.split('">', 1)[1].split("</a>", 1)[0] for part in nav.split('<a href="')[1:]]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("analyst", ["Datasets", "Projects", "API tokens"]),
        ("manager", ["Datasets", "Projects", "Models", "Exchange", "API tokens"]),
        ("auditor", ["Audit log", "API tokens"]),
        ("admin", ["Models", "API tokens"]),
    ],
)
def test_the_navigation_follows_the_policy(client: Client, db: None, role: str, expected: list[str]) -> None:
    sign_in(client, person(f"nav-{role}", role, "SECRET", []))
    assert _links(client) == expected
