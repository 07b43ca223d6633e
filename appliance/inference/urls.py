from django.urls import path

from appliance.inference import views

app_name = "inference"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("<int:model_id>/", views.model_detail, name="detail"),
    path("projects/<int:project_id>/prelabel", views.project_jobs, name="project-jobs"),
    path("jobs/<int:job_id>/cancel", views.job_cancel, name="job-cancel"),
]
