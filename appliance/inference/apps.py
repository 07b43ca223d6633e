from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "appliance.inference"
    label = "inference"
    verbose_name = "Inference"
    default_auto_field = "django.db.models.BigAutoField"
