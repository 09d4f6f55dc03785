from django.apps import AppConfig


class LiteFSGuardConfig(AppConfig):
    name = "litefs_guard.django"
    label = "litefs_guard"
    verbose_name = "LiteFS guard"
