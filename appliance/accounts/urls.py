from django.urls import path

from appliance.accounts import token_views, views

app_name = "accounts"
urlpatterns = [
    path("notice", views.consent, name="consent"),
    path("login", views.login, name="login"),
    path("login/second-factor", views.second_factor, name="second-factor"),
    path("login/enrol-second-factor", views.enrol_second_factor, name="enrol-second-factor"),
    path("logout", views.logout, name="logout"),
    path("signed-out", views.signed_out, name="signed-out"),
    path("tokens", token_views.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke", token_views.revoke, name="token-revoke"),
]
