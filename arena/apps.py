from django.apps import AppConfig


class ArenaConfig(AppConfig):
    name = "arena"
    verbose_name = "Arena"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from arena.models import Campaign, Dimension, ModelEntry
        from arena.services.profiles import forget_profiles

        for model in (Campaign, Dimension, ModelEntry):
            post_save.connect(forget_profiles, sender=model, dispatch_uid=f"profiles-save-{model.__name__}")
            post_delete.connect(forget_profiles, sender=model, dispatch_uid=f"profiles-delete-{model.__name__}")
        m2m_changed.connect(forget_profiles, sender=Campaign.contenders.through, dispatch_uid="profiles-m2m")
