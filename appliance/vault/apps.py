from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "appliance.vault"
    label = "vault"
    verbose_name = "Vault"
    default_auto_field = "django.db.models.BigAutoField"
