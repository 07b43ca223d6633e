from django.urls import path

from appliance.datasets import api

app_name = "datasets-api"
urlpatterns = [
    path("", api.DatasetCollectionView.as_view(), name="collection"),
    path("<int:dataset_id>", api.DatasetDetailView.as_view(), name="detail"),
]
