"""The sign-in forms, and the check that tells a malformed sign-in request from a wrong one.

A browser using our pages never sends a malformed body (the inputs carry `required` and `maxlength`), so a body
that fails these checks is a script or an attack: it is answered 400 and recorded, but it never reaches the
password hasher and never counts toward anyone's lockout.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django import forms
from django.http import HttpRequest

from appliance.access.policy import get_policy
from appliance.accounts.signin import USERNAME_MAX_LENGTH

FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
NEXT_MAX_LENGTH = 2000
_CODE = re.compile(r"^[0-9]{6,8}$")


def _has_control_characters(value: str) -> bool:
    return any(unicodedata.category(character) == "Cc" for character in value)


def malformed_problem(request: HttpRequest, fields: tuple[str, ...]) -> str:
    """Why the body of this POST is not a plain form with one text value per field; empty when it is.

    Checked before the form itself, because Django forms quietly take the last of repeated values and ignore
    uploaded files, and we want either to be refused, not guessed at.
    """
    if request.content_type not in FORM_CONTENT_TYPES:
        return f"the body must be a form ({' or '.join(FORM_CONTENT_TYPES)})"
    for name in fields:
        if name in request.FILES:
            return f"'{name}' must be text, not a file"
        values = request.POST.getlist(name)
        if len(values) > 1:
            return f"'{name}' was sent more than once"
        if values and _has_control_characters(values[0]):
            return f"'{name}' contains control characters"
    return ""


def first_error(form: forms.Form) -> str:
    """One plain sentence naming the first invalid field, for the 400 page."""
    for name, errors in form.errors.items():
        label = form.fields[name].label or name if name in form.fields else name
        return f"{label}: {errors[0]}"
    return "the form is incomplete"


class LoginForm(forms.Form):
    """Username and password. The password's upper bound is the policy's, which also bounds the hashing work."""

    username = forms.CharField(
        label="Username",
        max_length=USERNAME_MAX_LENGTH,
        strip=False,
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false", "autofocus": True}
        ),
    )
    next = forms.CharField(required=False, max_length=NEXT_MAX_LENGTH, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password"] = forms.CharField(
            label="Password",
            max_length=get_policy().security.password.max_length,
            strip=False,
            widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        )
        # Keep the order a person fills them in: username, password.
        self.order_fields(["username", "password", "next"])


class CodeForm(forms.Form):
    """A TOTP code from the user's authenticator app; spaces are allowed because apps show "123 456"."""

    code = forms.CharField(
        label="Six-digit code from your authenticator app",
        max_length=16,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9 ]{6,9}",
                "autofocus": True,
            }
        ),
    )

    def clean_code(self) -> str:
        code = str(self.cleaned_data["code"]).replace(" ", "")
        if not _CODE.match(code):
            raise forms.ValidationError("Enter the 6 digits your authenticator app shows.")
        return code
