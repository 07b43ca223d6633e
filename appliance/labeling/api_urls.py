from django.urls import path

from appliance.labeling import api

app_name = "projects-api"
task = "<int:project_id>/tasks/<int:task_id>"
urlpatterns = [
    path("", api.ProjectCollectionView.as_view(), name="collection"),
    path("<int:project_id>", api.ProjectDetailView.as_view(), name="detail"),
    path("<int:project_id>/schema", api.SchemaView.as_view(), name="schema"),
    path("<int:project_id>/tasks", api.TaskCollectionView.as_view(), name="tasks"),
    path("<int:project_id>/next", api.NextTaskView.as_view(), name="next"),
    path("<int:project_id>/assign", api.AssignView.as_view(), name="assign"),
    path("<int:project_id>/progress", api.ProgressView.as_view(), name="progress"),
    path(task, api.TaskDetailView.as_view(), name="task"),
    path(f"{task}/annotations", api.AnnotationSaveView.as_view(), name="annotations"),
    path(f"{task}/submit", api.SubmitView.as_view(), name="submit"),
    path(f"{task}/review", api.ReviewView.as_view(), name="review"),
    path(f"{task}/annotations/<int:annotation_id>/revisions", api.RevisionsView.as_view(), name="revisions"),
    path(f"{task}/annotations/<int:annotation_id>/restore", api.RestoreView.as_view(), name="restore"),
]
