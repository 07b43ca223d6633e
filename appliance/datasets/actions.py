"""Every write to a dataset: verb-first, keyword-only, the acting user first, one transaction with its audit record.

The permission is checked before the transaction opens, so a refusal is audited on its own (see
`appliance.access.denial`) and nothing is written. Input is validated against the policy in force, never against
names hard-coded here. A creator may only create at or below what they may read themselves (no write up): they
could otherwise introduce data into a label they cannot see, and nobody cleared for it would know where it came
from.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import F

from appliance.access.decision import decide
from appliance.access.denial import deny
from appliance.access.labels import Label, compartment_marking, dominates
from appliance.access.policy import get_policy
from appliance.accounts.models import User
from appliance.auditlog.recorder import record
from appliance.datasets.models import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH, Dataset, Item
from appliance.vault import blobs
from appliance.vault.actions import create_data_key, destroy_data_key

OBJECT_TYPE = "dataset"


class DatasetError(ValueError):
    """A request the policy or the data refuses; `field` names the input at fault so an API can answer 400."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class LabelAboveClearance(DatasetError):
    """The creator asked for a label they do not dominate themselves (no write up)."""


def _check_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise DatasetError("a dataset needs a name", field="name")
    if len(cleaned) > NAME_MAX_LENGTH:
        raise DatasetError(f"a dataset name has at most {NAME_MAX_LENGTH} characters", field="name")
    if Dataset.objects.filter(name=cleaned).exists():
        raise DatasetError(f"a dataset named {cleaned!r} already exists", field="name")
    return cleaned


def _check_label(by: User, classification: str, compartments: Iterable[str]) -> Label:
    policy_classification = get_policy().classification
    levels = [level.name for level in policy_classification.levels]
    if classification not in levels:
        raise DatasetError(
            f"unknown classification level {classification!r}; the policy defines {', '.join(levels)}",
            field="classification",
        )
    names = frozenset(compartments)
    unknown = sorted(names - set(policy_classification.compartments))
    if unknown:
        raise DatasetError(
            f"unknown compartment(s) {', '.join(unknown)}; the policy defines "
            f"{', '.join(sorted(policy_classification.compartments)) or 'none'}",
            field="compartments",
        )
    label = Label(level=classification, compartments=names)
    if not dominates(clearance=by.clearance, held=by.compartments, label=label, classification=policy_classification):
        raise LabelAboveClearance(
            f"{label.banner()} is above your own clearance and compartments; you may not create data you "
            "could not read",
            field="compartments"
            if classification in policy_classification.dominated_by(by.clearance)
            else "classification",
        )
    return label


def create_dataset(
    by: User, *, name: str, description: str = "", classification: str, compartments: Iterable[str] = ()
) -> Dataset:
    """Create a dataset labeled `classification` + `compartments`; its creator becomes its first member.

    Raises the audited 404 (`AccessDenied`) without "dataset.create", `DatasetError` for bad input (nothing is
    written either way).
    """
    decision = decide(by, "dataset.create")
    if not decision:
        raise deny(permission="dataset.create", gate=decision.gate, object_type=OBJECT_TYPE)
    cleaned_name = _check_name(name)
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise DatasetError(f"a description has at most {DESCRIPTION_MAX_LENGTH} characters", field="description")
    try:
        label = _check_label(by, classification, compartments)
    except LabelAboveClearance:
        # A refused write up is a denial like any other: on the record, then answered as bad input.
        deny(permission="dataset.create", gate="label", object_type=OBJECT_TYPE)
        raise
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint around the insert alone: only its IntegrityError means "taken"
                dataset = Dataset.objects.create(
                    name=cleaned_name,
                    description=description,
                    classification=label.level,
                    compartments=compartment_marking(label.compartments),
                    created_by=by,
                )
        except IntegrityError as exc:  # a concurrent create took the name between the check and the insert
            raise DatasetError(f"a dataset named {cleaned_name!r} already exists", field="name") from exc
        dataset.members.add(by)
        record(
            action="dataset.create",
            object_type=OBJECT_TYPE,
            object_id=dataset.pk,
            label=label.banner(),
            details={
                "name": dataset.name,
                "classification": label.level,
                "compartments": sorted(label.compartments),
                "members": [by.get_username()],
            },
        )
        dataset.data_key = create_data_key(purpose=f"dataset:{dataset.pk}")  # its own audited vault action
        dataset.save(update_fields=["data_key"])
    return dataset


def _authorize_manage(by: User, dataset: Dataset) -> None:
    decision = decide(by, "dataset.manage", dataset)
    if not decision:
        raise deny(permission="dataset.manage", gate=decision.gate, object_type=OBJECT_TYPE, object_id=str(dataset.pk))


def _change_membership(dataset: Dataset, member: User, *, action: str, add: bool) -> Dataset:
    with transaction.atomic():
        if add:
            dataset.members.add(member)
        else:
            dataset.members.remove(member)
        Dataset.objects.filter(pk=dataset.pk).update(version=F("version") + 1)
        dataset.refresh_from_db(fields=["version"])
        record(
            action=action,
            object_type=OBJECT_TYPE,
            object_id=dataset.pk,
            label=dataset.access_label().banner(),
            details={"member": member.get_username(), "version": dataset.version},
        )
    return dataset


def add_member(by: User, *, dataset: Dataset, member: User) -> Dataset:
    """Give `member` need-to-know on `dataset`. Needs "dataset.manage" on it.

    Membership is need-to-know only, separate from clearance: a member still sees the dataset only while their
    clearance and compartments dominate its label, so granting it to someone not (yet) cleared leaks nothing.
    """
    _authorize_manage(by, dataset)
    if dataset.members.filter(pk=member.pk).exists():
        raise DatasetError(f"{member.get_username()} is already a member of {dataset.name}", field="member")
    return _change_membership(dataset, member, action="dataset.member.add", add=True)


def remove_member(by: User, *, dataset: Dataset, member: User) -> Dataset:
    """Withdraw `member`'s need-to-know on `dataset`. Needs "dataset.manage" on it.

    The last member cannot be removed: nobody could then ever be granted access again through the policy.
    """
    _authorize_manage(by, dataset)
    if not dataset.members.filter(pk=member.pk).exists():
        raise DatasetError(f"{member.get_username()} is not a member of {dataset.name}", field="member")
    if dataset.members.count() == 1:
        raise DatasetError(f"{member.get_username()} is the last member of {dataset.name}", field="member")
    return _change_membership(dataset, member, action="dataset.member.remove", add=False)


def delete_dataset(by: User, *, dataset: Dataset, confirm_name: str, reason: str) -> None:
    """Delete a dataset and crypto-shred its imagery. Needs "dataset.manage" on it, and its exact name typed.

    In one transaction: the items and the dataset go, its data key is destroyed (`vault.key.destroy`: its wrapped
    bytes wiped, so no copy of any of its blobs, in a backup or anywhere else, can be decrypted again), and the
    deletion is recorded with how many items it took. The blob files are removed after the commit; a file left
    behind by a crash there is unreadable ciphertext that `datasets gc` removes.
    """
    _authorize_manage(by, dataset)
    if confirm_name != dataset.name:
        raise DatasetError("type the dataset's exact name to confirm its deletion", field="confirm_name")
    if not reason.strip():
        raise DatasetError("say why the dataset is deleted: it goes on the record", field="reason")
    blob_ids: list[str] = []
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        items = Item.objects.filter(dataset=locked)
        for image, thumb, preview in items.values_list("image_blob", "thumbnail_blob", "preview_blob"):
            blob_ids += [blob for blob in (image, thumb, preview) if blob]
        count = items.count()
        record(
            action="dataset.delete",
            object_type=OBJECT_TYPE,
            object_id=locked.pk,
            label=locked.access_label().banner(),
            details={"name": locked.name, "items": count, "reason": reason.strip()},
        )
        key = locked.data_key
        items.delete()
        locked.delete()
        if key is not None:
            destroy_data_key(key=key, reason=f"dataset {locked.name!r} deleted: {reason.strip()}")
    transaction.on_commit(lambda: [blobs.delete(blob_id=blob_id) for blob_id in blob_ids])
