"""Leaderboard matrices stored beside the snapshot's JSON as raw float64 (older snapshots keep them
in their JSON until the next recompute rewrites them). On PostgreSQL the two binary columns are
stored uncompressed: they are rewritten after every vote batch, and compressing 240 kB of counts
cost about 5 ms a write for a 240 kB -> 43 kB saving that nothing needs."""

from django.db import migrations, models

COLUMNS = (("ratings_pairaggregate", "cells"), ("ratings_leaderboardsnapshot", "matrices"))


def _storage(kind: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table, column in COLUMNS:
            schema_editor.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE {kind}")

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("ratings", "0003_binary_aggregates"),
    ]

    operations = [
        migrations.AddField(
            model_name="leaderboardsnapshot",
            name="matrices",
            field=models.BinaryField(default=bytes),
        ),
        migrations.RunPython(_storage("EXTERNAL"), _storage("EXTENDED")),
    ]
