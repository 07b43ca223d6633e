from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from appliance.access.policy import PolicyError, install_policy, load_policy


class AccessConfig(AppConfig):
    name = "appliance.access"
    label = "access"
    verbose_name = "Access policy"

    def ready(self) -> None:
        # A broken or unknown policy stops start-up here, before any request is served.
        try:
            install_policy(load_policy(settings.POLICY_DIR))
        except PolicyError as exc:
            raise ImproperlyConfigured(f"access policy: {exc}") from exc
