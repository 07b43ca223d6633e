from django.urls import path

from appliance.web import api

app_name = "api"
urlpatterns = [
    path("me", api.MeView.as_view(), name="me"),
]
