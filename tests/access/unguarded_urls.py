"""The real URL map plus one view that declares no guard, to prove the middleware refuses it at run time (test only)."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def unguarded(request: HttpRequest) -> HttpResponse:
    return HttpResponse("this must never be served")


# The real map rides along so that the 404 page (which links to login and the banner stylesheet) renders.
urlpatterns = [path("unguarded", unguarded, name="unguarded"), path("", include("appliance.urls"))]
