from django.urls import URLPattern, URLResolver

app_name = "inference-api"
urlpatterns: list[URLPattern | URLResolver] = []
