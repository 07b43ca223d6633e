from django.urls import URLPattern, URLResolver

app_name = "exchange-api"
urlpatterns: list[URLPattern | URLResolver] = []
