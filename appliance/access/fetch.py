"""Fetch-and-authorize in one call: the object if the subject may exercise the permission on it, else an
audited 404 that looks exactly like a missing object."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from appliance.access.decision import Protected, Subject, decide
from appliance.access.denial import deny


def authorize[M: Model](subject: Subject, permission: str, model: type[M], pk: Any) -> M:
    """Return `model` instance `pk` when `decide` allows; raise the audited 404 otherwise (missing or refused)."""
    obj = model._default_manager.filter(pk=pk).first()
    object_type = model._meta.model_name or model.__name__
    if obj is None:
        raise deny(permission=permission, gate="missing", object_type=object_type, object_id=str(pk))
    decision = decide(subject, permission, obj if isinstance(obj, Protected) else None)
    if not decision:
        raise deny(permission=permission, gate=decision.gate, object_type=object_type, object_id=str(pk))
    return obj
