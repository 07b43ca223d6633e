from django.urls import path, re_path

from appliance.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("new", views.dataset_create, name="create"),
    path("<int:dataset_id>/", views.dataset_detail, name="detail"),
    path("<int:dataset_id>/members", views.dataset_members, name="members"),
    path("<int:dataset_id>/import", views.dataset_import, name="import"),
    path("<int:dataset_id>/items/<int:item_id>/", views.item_detail, name="item"),
    re_path(
        r"^(?P<dataset_id>[0-9]+)/items/(?P<item_id>[0-9]+)/(?P<kind>image|preview|thumbnail)$",
        views.item_imagery,
        name="item-imagery",
    ),
]
