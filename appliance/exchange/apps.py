from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

from appliance.access.policy import PolicyError
from appliance.exchange.policy import release_rules


class ExchangeConfig(AppConfig):
    name = "appliance.exchange"
    label = "exchange"
    verbose_name = "Exchange"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The release rules are security policy: a broken table stops start-up rather than defaulting open.
        try:
            release_rules()
        except PolicyError as exc:
            raise ImproperlyConfigured(f"exchange release policy: {exc}") from exc
