"""The personal API tokens page: list one's own tokens, create one (its secret shown exactly once), revoke one.

Why the secret is rendered in the POST response and never redirected to: a redirect would need the secret kept
somewhere (session, message store) between two requests, and it must exist nowhere but in this one response,
which is also marked not to be cached. Writes go through `appliance.accounts.actions`; this module only renders.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from appliance.access.markers import requires
from appliance.access.policy import get_policy
from appliance.accounts.actions import AccountError, create_api_token, revoke_api_token, token_state
from appliance.accounts.models import ApiToken, User


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. the script that uses it.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        security = get_policy().security
        # Built per form, not at import: the bound comes from the policy in force.
        self.fields["lifetime_days"] = forms.IntegerField(
            label="Lifetime (days)",
            min_value=1,
            max_value=security.token_max_lifetime_days,
            initial=security.token_default_lifetime_days,
            help_text=f"At most {security.token_max_lifetime_days} days (policy).",
        )


def _signed_in(request: HttpRequest) -> User:
    """The acting user; the views are guarded by @requires, so anything else is a wiring mistake."""
    user = request.user
    if not isinstance(user, User):
        raise TypeError("the API token views need a signed-in user")
    return user


def _page(request: HttpRequest, form: TokenForm, secret: str = "", created: ApiToken | None = None) -> HttpResponse:
    user = _signed_in(request)
    rows = [{"token": token, "state": token_state(token)} for token in ApiToken.objects.filter(user=user)]
    context = {"form": form, "rows": rows, "secret": secret, "created": created}
    return render(request, "accounts/tokens.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
@requires("account.self")
def tokens(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, TokenForm())
    form = TokenForm(request.POST)
    if form.is_valid():
        user = _signed_in(request)
        try:
            token, secret = create_api_token(
                user, name=form.cleaned_data["name"], lifetime_days=form.cleaned_data["lifetime_days"]
            )
        except AccountError as exc:
            form.add_error(None, str(exc))
        else:
            return _page(request, TokenForm(), secret=secret, created=token)
    response = _page(request, form)
    response.status_code = 400
    return response


@require_POST
@requires("account.self")
def revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    user = _signed_in(request)
    token = revoke_api_token(user, token_id=token_id)  # someone else's token: an audited 404
    messages.success(request, f"Token {token.prefix}… ({token.name}) is revoked.")
    return redirect("accounts:tokens")
