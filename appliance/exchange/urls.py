from django.urls import URLPattern, URLResolver, path

from appliance.exchange import views

app_name = "exchange"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.exchange_index, name="index"),
    path("projects/<int:project_id>/", views.project_exchange, name="project"),
    path("projects/<int:project_id>/export", views.export_create, name="export"),
    path("projects/<int:project_id>/import", views.import_run, name="import"),
    path("exports/<int:export_id>/release", views.release_request, name="release"),
    path("releases/<int:release_id>/decide", views.release_decide, name="decide"),
    path("releases/<int:release_id>/download", views.release_download, name="download"),
]
