from django.urls import URLPattern, URLResolver, path

from appliance.exchange import api

app_name = "exchange-api"
urlpatterns: list[URLPattern | URLResolver] = [
    path("projects/<int:project_id>/exports", api.ExportCollectionView.as_view(), name="exports"),
    path("projects/<int:project_id>/imports", api.ImportView.as_view(), name="imports"),
    path("projects/<int:project_id>/releases", api.ProjectReleasesView.as_view(), name="project-releases"),
    path("exports/<int:export_id>", api.ExportDetailView.as_view(), name="export"),
    path("exports/<int:export_id>/releases", api.ReleaseCollectionView.as_view(), name="releases"),
    path("releases/<int:release_id>/decision", api.DecisionView.as_view(), name="decision"),
    path("releases/<int:release_id>/download", api.DownloadView.as_view(), name="download"),
    path("recipients", api.RecipientCollectionView.as_view(), name="recipients"),
]
