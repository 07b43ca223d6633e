"""Only the API routes, so the HTTP audit tests depend on the audited endpoint and not on every page's view."""

from django.urls import include, path

urlpatterns = [path("api/", include("appliance.web.api_urls"))]
