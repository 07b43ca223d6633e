"""The audit workspace API (audit permissions only; see `appliance.auditlog.api`)."""

from django.urls import path

from appliance.auditlog import api

app_name = "auditlog-api"
urlpatterns = [
    path("records", api.RecordListView.as_view(), name="records"),
    path("records/<int:seq>", api.RecordDetailView.as_view(), name="record"),
    path("verify/step", api.VerifyStepView.as_view(), name="verify-step"),
    path("export", api.ExportView.as_view(), name="export"),
]
