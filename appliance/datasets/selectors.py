"""Reads of datasets, already narrowed by the access decision: nothing here returns a dataset the caller may not see.

Lists are filtered in SQL by `appliance.access.decision.visible` (never post-filtered in Python) and paginated by
keyset on the primary key, so a page costs the same on the first and the millionth row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.access.decision import Subject, visible
from appliance.access.denial import deny
from appliance.access.fetch import authorize
from appliance.datasets.models import Dataset, Item

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


@dataclass(frozen=True)
class ItemPage:
    items: list[Item]
    next_after: int | None


def items_of(dataset: Dataset, *, after: int | None = None, limit: int = DEFAULT_PAGE_SIZE) -> ItemPage:
    """One keyset page of an already authorized dataset's items, in id order."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    queryset = Item.objects.filter(dataset=dataset).order_by("id")
    if after is not None:
        queryset = queryset.filter(id__gt=after)
    rows = list(queryset[: limit + 1])
    items = rows[:limit]
    return ItemPage(items=items, next_after=items[-1].pk if len(rows) > limit else None)


def access_item(user: Subject, dataset_id: Any, item_id: Any, permission: str = "dataset.view") -> Item:
    """The item if `user` may exercise `permission` on its dataset and it belongs there; else the audited 404.

    An item is only ever reached through its dataset, so the dataset's three gates guard it; an item id under
    another dataset is as missing as one that does not exist.
    """
    dataset = access_dataset(user, dataset_id, permission)
    item = Item.objects.filter(dataset=dataset, pk=item_id).first()
    if item is None:
        raise deny(permission=permission, gate="missing", object_type="item", object_id=f"{dataset_id}/{item_id}")
    item.dataset = dataset
    return item
