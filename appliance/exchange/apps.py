from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "appliance.exchange"
    label = "exchange"
    verbose_name = "Exchange"
    default_auto_field = "django.db.models.BigAutoField"
