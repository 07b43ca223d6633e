"""The auditor's workspace pages (audit permissions only; see `appliance.auditlog.views`)."""

from django.urls import path

from appliance.auditlog import views

app_name = "auditlog"
urlpatterns = [
    path("", views.search, name="search"),
    path("records/<int:seq>/", views.record_detail, name="detail"),
    path("verify", views.verify, name="verify"),
    path("export", views.export, name="export"),
]
