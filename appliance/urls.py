"""The URL map. Every view here is guarded: see `appliance.access.markers` and the deny-by-default walk test."""

from django.urls import include, path

urlpatterns = [
    path("", include("appliance.web.urls")),
    path("accounts/", include("appliance.accounts.urls")),
    path("datasets/", include("appliance.datasets.urls")),
    path("api/datasets/", include("appliance.datasets.api_urls")),
    path("api/projects/", include("appliance.labeling.api_urls")),
    path("audit/", include("appliance.auditlog.urls")),
    path("api/audit/", include("appliance.auditlog.api_urls")),
    path("api/", include("appliance.web.api_urls")),
]
