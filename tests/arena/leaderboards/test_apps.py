"""The leaderboards' Django half moved from ``ratings/`` to ``arena/leaderboards/`` under its old app
label: tables, migration history and content types of existing databases must stay valid."""

from django.apps import apps
from django.db.migrations.loader import MigrationLoader

from arena.leaderboards import models as leaderboard_models


def test_the_app_keeps_its_label_tables_and_migration_names():
    config = apps.get_app_config("ratings")
    assert config.name == "arena.leaderboards"
    assert {m._meta.db_table for m in config.get_models()} >= {
        "ratings_pairaggregate",
        "ratings_leaderboardsnapshot",
        "ratings_elostate",
    }
    assert leaderboard_models.LeaderboardSnapshot._meta.app_label == "ratings"
    loader = MigrationLoader(None, ignore_no_migrations=True)
    names = sorted(name for app, name in loader.disk_migrations if app == "ratings")
    # Applied migrations are recorded by (label, name) in django_migrations: renaming one would make
    # an existing database apply it again.
    assert names[:4] == ["0001_initial", "0002_bias_tallies", "0003_binary_aggregates", "0004_snapshot_matrices"]
    assert loader.migrations_module("ratings")[0] == "arena.leaderboards.migrations"
