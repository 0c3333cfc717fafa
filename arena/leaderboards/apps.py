from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    """The leaderboards' Django half: aggregates, snapshots, recompute tasks and pages.

    The label stays ``ratings`` (this app lived in ``ratings/`` until the engine and its Django half were
    separated): tables (``ratings_*``), migration history and content types are unchanged.
    """

    name = "arena.leaderboards"
    label = "ratings"
    verbose_name = "Leaderboards"
    default_auto_field = "django.db.models.BigAutoField"
