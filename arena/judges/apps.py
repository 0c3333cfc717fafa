from django.apps import AppConfig


class JudgesConfig(AppConfig):
    name = "arena.judges"
    label = "judges"
    verbose_name = "Judges"
    default_auto_field = "django.db.models.BigAutoField"
