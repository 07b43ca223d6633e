from django.urls import URLPattern, URLResolver

app_name = "inference"
urlpatterns: list[URLPattern | URLResolver] = []
