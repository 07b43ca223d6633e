from django.urls import path

from appliance.inference import api

app_name = "inference-api"
urlpatterns = [
    path("", api.ModelCollectionView.as_view(), name="collection"),
    path("<int:model_id>", api.ModelDetailView.as_view(), name="detail"),
    path("<int:model_id>/retire", api.ModelRetireView.as_view(), name="retire"),
    path("projects/<int:project_id>/settings", api.ProjectSettingsView.as_view(), name="settings"),
    path("projects/<int:project_id>/jobs", api.ProjectJobsView.as_view(), name="jobs"),
    path("jobs/<int:job_id>", api.JobDetailView.as_view(), name="job"),
    path("jobs/<int:job_id>/cancel", api.JobCancelView.as_view(), name="cancel"),
    path("jobs/<int:job_id>/resume", api.JobResumeView.as_view(), name="resume"),
]
