"""Reads of datasets, already narrowed by the access decision: nothing here returns a dataset the caller may not see.

Lists are filtered in SQL by `appliance.access.decision.visible` (never post-filtered in Python) and paginated by
keyset on the primary key, so a page costs the same on the first and the millionth row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.access.decision import Subject, visible
from appliance.access.fetch import authorize
from appliance.datasets.models import Dataset

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class DatasetPage:
    items: list[Dataset]
    next_after: int | None  # the keyset cursor of the next page; None on the last page


def datasets_visible_to(
    user: Subject, *, after: int | None = None, limit: int = DEFAULT_PAGE_SIZE, permission: str = "dataset.view"
) -> DatasetPage:
    """One page of the datasets `user` may exercise `permission` on, in id order, starting after id `after`."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    queryset = visible(Dataset.objects.all(), user, permission).order_by("id")
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    rows = list(queryset[: limit + 1])
    items = rows[:limit]
    return DatasetPage(items=items, next_after=items[-1].pk if len(rows) > limit else None)


def access_dataset(user: Subject, dataset_id: Any, permission: str) -> Dataset:
    """The dataset if `user` may exercise `permission` on it; otherwise the audited 404, whether it exists or not."""
    return authorize(user, permission, Dataset, dataset_id)
