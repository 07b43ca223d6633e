"""Sign-in pages: the consent notice, username and password, the second factor and its enrolment, sign-out.

Thin views: they parse and answer; every write and audit record is in `appliance.accounts.signin`. Every failed
sign-in gets the same words, so the page never tells whether the username or the password was wrong, or whether
the account exists, is locked or is disabled.
"""

from __future__ import annotations

from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from appliance.access.markers import public, requires
from appliance.access.policy import get_policy
from appliance.accounts import signin
from appliance.accounts.forms import CodeForm, LoginForm, first_error, malformed_problem

FAILED = (
    "Sign-in failed. Check your username and password and try again. After repeated failures the account is "
    "locked and only an administrator can unlock it."
)
FAILED_CODE = (
    "That code was not accepted. Wait for your app to show a new code and try again. Wrong codes count as failed "
    "sign-ins."
)
EXPIRED = "Your sign-in took too long to complete. Please sign in again."


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    """The page to return to after sign-in, only if it is on this site (no open redirect)."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _with_next(url_name: str, next_url: str) -> str:
    url = reverse(url_name)
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def _after_sign_in(next_url: str) -> HttpResponseRedirect:
    return redirect(next_url or settings.LOGIN_REDIRECT_URL)


def _login_page(request: HttpRequest, form: LoginForm, **extra: object) -> HttpResponse:
    """The login form, telling the user the lockout rule that is in force (from the policy)."""
    security = get_policy().security
    context = {
        "form": form,
        "lockout_max_failures": security.lockout_max_failures,
        "lockout_window_minutes": security.lockout_window_minutes,
        **extra,
    }
    status = 400 if "malformed" in extra else 200
    return render(request, "accounts/login.html", context, status=status)


def _malformed(request: HttpRequest, template: str, problem: str, context: dict[str, object]) -> HttpResponse:
    return render(
        request,
        template,
        {**context, "malformed": f"The sign-in request was malformed: {problem}"},
        status=400,
    )


@require_http_methods(["GET", "POST"])
@never_cache
@public("the DoD notice must be shown and acknowledged before anyone can sign in (V-222434)")
def consent(request: HttpRequest) -> HttpResponse:
    """The Standard Mandatory DoD Notice and Consent Banner; acknowledging it leads to the login form."""
    if request.method == "POST":
        next_url = _safe_next(request, request.POST.get("next"))
        signin.acknowledge_consent(request=request)
        return redirect(_with_next("accounts:login", next_url))
    return render(request, "accounts/consent.html", {"next": _safe_next(request, request.GET.get("next"))})


@require_http_methods(["GET", "POST"])
@never_cache
@public("signing in happens before there is a user to authorize")
def login(request: HttpRequest) -> HttpResponse:
    """Username and password. Refused without a fresh consent acknowledgement: the notice comes first (V-222435)."""
    if not signin.has_fresh_consent(request):
        source = request.POST if request.method == "POST" else request.GET
        return redirect(_with_next("accounts:consent", _safe_next(request, source.get("next"))))
    if request.method == "GET":
        next_url = _safe_next(request, request.GET.get("next"))
        return _login_page(request, LoginForm(initial={"next": next_url}))

    problem = malformed_problem(request, ("username", "password", "next"))
    form = LoginForm(request.POST if not problem else None)
    if problem or not form.is_valid():
        problem = problem or first_error(form)
        attempted = request.POST.get("username", "")
        if attempted and "username" not in request.FILES:
            signin.record_malformed_attempt(attempted_username=attempted, problem=problem)
        return _login_page(request, LoginForm(), malformed=f"The sign-in request was malformed: {problem}")

    next_url = _safe_next(request, form.cleaned_data["next"])
    attempt = signin.check_password(username=form.cleaned_data["username"], password=form.cleaned_data["password"])
    user = attempt.user
    if user is None:
        return _login_page(request, LoginForm(initial={"next": next_url}), error=FAILED)
    if signin.mfa_required(user):
        signin.begin_second_factor(request=request, user=user, next_url=next_url)
        target = "accounts:second-factor" if signin.confirmed_device(user) else "accounts:enrol-second-factor"
        return redirect(target)
    if not signin.complete_sign_in(request=request, user=user, method=signin.ONE_FACTOR):
        return _login_page(request, LoginForm(), error=FAILED)
    return _after_sign_in(next_url)


def _restart(request: HttpRequest, message: str) -> HttpResponse:
    """Drop the pending sign-in and go back to the password (via the notice, if it is no longer fresh)."""
    request.session.pop(signin.SESSION_PENDING, None)
    messages.error(request, message)
    return redirect("accounts:login")


@require_http_methods(["GET", "POST"])
@never_cache
@public("the second factor is presented before the sign-in completes")
def second_factor(request: HttpRequest) -> HttpResponse:
    """The TOTP code of a user whose roles require one and who has enrolled a device."""
    try:
        pending = signin.pending_sign_in(request)
    except signin.PendingExpired:
        return _restart(request, EXPIRED)
    if pending is None:
        return redirect("accounts:login")
    if signin.confirmed_device(pending.user) is None:
        return redirect("accounts:enrol-second-factor")
    if request.method == "GET":
        return render(request, "accounts/second_factor.html", {"form": CodeForm()})

    problem = malformed_problem(request, ("code",))
    form = CodeForm(request.POST if not problem else None)
    if problem or not form.is_valid():
        problem = problem or first_error(form)
        return _malformed(request, "accounts/second_factor.html", problem, {"form": CodeForm()})
    attempt = signin.verify_second_factor(request=request, pending=pending, code=form.cleaned_data["code"])
    if attempt.user is not None:
        return _after_sign_in(pending.next_url)
    if attempt.locked_now or attempt.reason in {"locked", "disabled"}:
        return _restart(request, FAILED)
    return render(request, "accounts/second_factor.html", {"form": CodeForm(), "error": FAILED_CODE})


@require_http_methods(["GET", "POST"])
@never_cache
@public("a user whose roles require a second factor enrols it before the sign-in completes")
def enrol_second_factor(request: HttpRequest) -> HttpResponse:
    """Set up a TOTP app: show the secret and its QR code, and confirm the device with a first code.

    Only for a pending sign-in without a confirmed device: someone who knows only the password must never be
    able to replace a device the account already has.
    """
    try:
        pending = signin.pending_sign_in(request)
    except signin.PendingExpired:
        return _restart(request, EXPIRED)
    if pending is None:
        return redirect("accounts:login")
    if signin.confirmed_device(pending.user) is not None:
        return redirect("accounts:second-factor")
    device = signin.start_enrolment(user=pending.user)
    uri = signin.provisioning_uri(device)
    # segno writes the SVG from the URI alone: no user-supplied markup, no inline style or script (strict CSP).
    qr_svg = mark_safe(  # noqa: S308
        segno.make(uri, error="m").svg_inline(
            scale=5, title="QR code of your authenticator secret", svgclass="qr-code", lineclass="qr-line"
        )
    )
    context = {"secret": signin.base32_secret(device), "qr_svg": qr_svg, "step": device.step}
    if request.method == "GET":
        return render(request, "accounts/enrol_second_factor.html", {**context, "form": CodeForm()})

    problem = malformed_problem(request, ("code",))
    form = CodeForm(request.POST if not problem else None)
    if problem or not form.is_valid():
        problem = problem or first_error(form)
        return _malformed(request, "accounts/enrol_second_factor.html", problem, {**context, "form": CodeForm()})
    attempt = signin.confirm_enrolment(request=request, pending=pending, code=form.cleaned_data["code"])
    if attempt.user is not None:
        return _after_sign_in(pending.next_url)
    if attempt.locked_now or attempt.reason in {"locked", "disabled"}:
        return _restart(request, FAILED)
    return render(request, "accounts/enrol_second_factor.html", {**context, "form": CodeForm(), "error": FAILED_CODE})


@require_POST
@requires("account.self")
def logout(request: HttpRequest) -> HttpResponse:
    """Sign out (POST only, so a link or image elsewhere cannot sign anyone out; CSRF-checked) (V-222391)."""
    signin.sign_out(request=request)
    return redirect("accounts:signed-out")


@require_GET
@never_cache
@public("shown after the session has been destroyed, to a visitor who is no longer signed in")
def signed_out(request: HttpRequest) -> HttpResponse:
    """An explicit confirmation that the session has ended (V-222392)."""
    return render(request, "accounts/signed_out.html")
