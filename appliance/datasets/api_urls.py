from django.urls import path, re_path

from appliance.datasets import api

app_name = "datasets-api"
urlpatterns = [
    path("", api.DatasetCollectionView.as_view(), name="collection"),
    path("<int:dataset_id>", api.DatasetDetailView.as_view(), name="detail"),
    path("<int:dataset_id>/items", api.ItemCollectionView.as_view(), name="items"),
    path("<int:dataset_id>/items/<int:item_id>", api.ItemDetailView.as_view(), name="item"),
    re_path(
        r"^(?P<dataset_id>[0-9]+)/items/(?P<item_id>[0-9]+)/(?P<kind>image|preview|thumbnail)$",
        api.ItemImageryView.as_view(),
        name="item-imagery",
    ),
]
