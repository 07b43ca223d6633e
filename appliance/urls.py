"""The URL map. Every view here is guarded: see `appliance.access.markers` and the deny-by-default walk test."""

from django.urls import include, path

urlpatterns = [
    path("", include("appliance.web.urls")),
    path("accounts/", include("appliance.accounts.urls")),
    path("datasets/", include("appliance.datasets.urls")),
    path("api/datasets/", include("appliance.datasets.api_urls")),
    path("projects/", include("appliance.labeling.urls")),
    path("api/projects/", include("appliance.labeling.api_urls")),
    path("models/", include("appliance.inference.urls")),
    path("api/models/", include("appliance.inference.api_urls")),
    path("exchange/", include("appliance.exchange.urls")),
    path("api/exchange/", include("appliance.exchange.api_urls")),
    path("audit/", include("appliance.auditlog.urls")),
    path("api/audit/", include("appliance.auditlog.api_urls")),
    path("api/", include("appliance.web.api_urls")),
]
