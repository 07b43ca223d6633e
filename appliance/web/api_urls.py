from django.urls import path

from appliance.web import api
from appliance.web.api_docs import SchemaView, SwaggerView

app_name = "api"
urlpatterns = [
    path("me", api.MeView.as_view(), name="me"),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(), name="docs"),
]
