from django.conf import settings
from django.urls import path

from appliance.web import views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("policy/banner.css", views.banner_css, name="banner-css"),
]

if not settings.PRODUCTION:
    urlpatterns.append(path("static/<path:path>", views.development_static, name="development-static"))
