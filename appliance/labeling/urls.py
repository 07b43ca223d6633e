from django.urls import URLPattern, URLResolver, path

from appliance.labeling import manage_views, views

app_name = "projects"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", manage_views.project_list, name="list"),
    path("new", manage_views.project_create, name="create"),
    path("<int:project_id>/", manage_views.project_detail, name="detail"),
    path("<int:project_id>/members", manage_views.project_members, name="members"),
    path("<int:project_id>/schema", manage_views.project_schema, name="schema"),
    path("<int:project_id>/assign", manage_views.project_assign, name="assign"),
    path("<int:project_id>/next", views.next_task, name="next"),
    path("<int:project_id>/review-next", views.next_review, name="review-next"),
    path("<int:project_id>/tasks/<int:task_id>/", views.task_page, name="task"),
    path("<int:project_id>/tasks/<int:task_id>/previous", views.previous_task, name="task-previous"),
]
