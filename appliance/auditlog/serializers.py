"""Input and output shapes of the audit workspace (pages and API share the input checks).

Every query parameter is validated here, and an unknown one is refused rather than ignored: an auditor who
mistypes a filter must get a 400 naming it, never a silently wider result that looks like an answer. `from` and
`to` are Python keywords (and `label` a serializer attribute), so they are added in `get_fields` instead.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from appliance.auditlog.models import AuditRecord
from appliance.auditlog.proofs import VERIFY_CHUNK, InclusionProof
from appliance.auditlog.recorder import OUTCOMES
from appliance.auditlog.selectors import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, AuditFilters


class RecordQuery(serializers.Serializer[dict[str, Any]]):
    """Filters and the keyset cursor of a search. Times are ISO 8601; without an offset they are read as UTC."""

    actor = serializers.CharField(max_length=150, required=False, allow_blank=True)
    action = serializers.RegexField(r"^[a-z0-9_.\-]*\*?$", max_length=64, required=False, allow_blank=True)
    object_type = serializers.CharField(max_length=64, required=False, allow_blank=True)
    object_id = serializers.CharField(max_length=255, required=False, allow_blank=True)
    outcome = serializers.ChoiceField(choices=OUTCOMES, required=False, allow_blank=True)
    before = serializers.IntegerField(min_value=0, required=False)
    after = serializers.IntegerField(min_value=0, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False, default=DEFAULT_PAGE_SIZE)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(required=False)
        fields["to"] = serializers.DateTimeField(required=False)
        # `label` would shadow the serializer's own `label` attribute if declared in the class body.
        fields["label"] = serializers.CharField(max_length=255, required=False, allow_blank=True)
        return fields

    def to_internal_value(self, data: Any) -> Any:
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["unknown parameter"] for name in unknown})
        repeated = sorted(name for name in data if hasattr(data, "getlist") and len(data.getlist(name)) > 1)
        if repeated:
            raise serializers.ValidationError({name: ["given more than once"] for name in repeated})
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "before" in attrs and "after" in attrs:
            raise serializers.ValidationError({"after": ["give either before or after, not both"]})
        since, until = attrs.get("from"), attrs.get("to")
        if since is not None and until is not None and until <= since:
            raise serializers.ValidationError({"to": ["must be later than from"]})
        return attrs

    def filters(self) -> AuditFilters:
        data = self.validated_data
        return AuditFilters(
            since=data.get("from"),
            until=data.get("to"),
            actor=data.get("actor", ""),
            action=data.get("action", ""),
            object_type=data.get("object_type", ""),
            object_id=data.get("object_id", ""),
            outcome=data.get("outcome", ""),
            label=data.get("label", ""),
        )


def problems_of(errors: Any) -> list[str]:
    """DRF's error dict as sentences that name the parameter, for the HTML pages."""
    if isinstance(errors, dict):
        return [f"{name}: {message}" for name, messages in errors.items() for message in _flatten(messages)]
    return [str(message) for message in _flatten(errors)]


def _flatten(messages: Any) -> list[str]:
    if isinstance(messages, list | tuple):
        return [text for item in messages for text in _flatten(item)]
    if isinstance(messages, dict):
        return [f"{k}: {text}" for k, v in messages.items() for text in _flatten(v)]
    return [str(messages)]


class RecordOut(serializers.ModelSerializer[AuditRecord]):
    """A record as searched: the indexed columns plus the canonical record itself (parsed, so clients need not)."""

    record = serializers.SerializerMethodField()
    leaf_hash = serializers.SerializerMethodField()

    class Meta:
        model = AuditRecord
        fields: tuple[str, ...] = (
            "seq",
            "time",
            "actor",
            "action",
            "object_type",
            "object_id",
            "outcome",
            "label",
            "record",
            "leaf_hash",
        )
        read_only_fields = fields

    def get_record(self, row: AuditRecord) -> Any:
        return json.loads(row.canonical)

    def get_leaf_hash(self, row: AuditRecord) -> str:
        return bytes(row.leaf_hash).hex()


class ProofOut(serializers.Serializer[InclusionProof]):
    """An inclusion proof with its hashes in hex (RFC 9162 order: leaf upwards)."""

    leaf_hash = serializers.SerializerMethodField()
    checkpoint_size = serializers.IntegerField()
    checkpoint_root = serializers.SerializerMethodField()
    checkpoint_time = serializers.DateTimeField()
    checkpoint_key_id = serializers.CharField()
    hashes = serializers.SerializerMethodField()
    verified = serializers.BooleanField()
    problem = serializers.CharField()

    def get_leaf_hash(self, proof: InclusionProof) -> str:
        return proof.leaf_hash.hex()

    def get_checkpoint_root(self, proof: InclusionProof) -> str:
        return proof.checkpoint_root.hex()

    def get_hashes(self, proof: InclusionProof) -> list[str]:
        return [value.hex() for value in proof.hashes]


class VerifyStepIn(serializers.Serializer[dict[str, Any]]):
    """`from` is the first record of this chunk: 0 starts a verification, anything else needs the last `state`."""

    state = serializers.CharField(max_length=8192, required=False, allow_blank=False)
    limit = serializers.IntegerField(min_value=1, max_value=VERIFY_CHUNK, required=False, default=VERIFY_CHUNK)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        fields["from"] = serializers.IntegerField(min_value=0)
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["from"] > 0 and "state" not in attrs:
            raise serializers.ValidationError({"state": ["required to go on from a record after 0"]})
        return attrs


class RecordWithProofOut(RecordOut):
    """A record with its inclusion proof in the newest checkpoint (null until a checkpoint covers it)."""

    proof = ProofOut(allow_null=True, read_only=True)

    class Meta(RecordOut.Meta):
        fields = (*RecordOut.Meta.fields, "proof")
