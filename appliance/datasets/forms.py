"""Page forms of datasets: shape only (lengths, required fields). The policy checks (known levels and
compartments, no write up, unique names, membership rules) are the actions', whose errors the pages show."""

from __future__ import annotations

from typing import Any

from django import forms

from appliance.access.policy import get_policy
from appliance.datasets.models import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_LENGTH)
    description = forms.CharField(max_length=DESCRIPTION_MAX_LENGTH, required=False, widget=forms.Textarea)
    classification = forms.ChoiceField()
    compartments = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        classification = get_policy().classification
        self.fields["classification"].choices = [(level.name, level.banner) for level in classification.levels]  # type: ignore[attr-defined]
        self.fields["compartments"].choices = [(name, name) for name in sorted(classification.compartments)]  # type: ignore[attr-defined]


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
