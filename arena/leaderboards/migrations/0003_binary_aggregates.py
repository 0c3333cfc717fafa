"""Pair aggregates stored as raw count matrices (PairCounts.to_bytes) instead of JSON pair rows;
snapshots say which intervals they carry."""

from django.db import migrations, models


def json_to_bytes(apps, schema_editor):
    from ratings.counts import PairCounts

    PairAggregate = apps.get_model("ratings", "PairAggregate")
    for aggregate in PairAggregate.objects.iterator(chunk_size=100):
        counts = PairCounts.from_dict(aggregate.counts) if aggregate.counts else PairCounts.empty()
        aggregate.model_names = list(counts.models)
        aggregate.cells = counts.to_bytes()
        aggregate.save(update_fields=["model_names", "cells"])


def bytes_to_json(apps, schema_editor):
    from ratings.counts import PairCounts

    PairAggregate = apps.get_model("ratings", "PairAggregate")
    for aggregate in PairAggregate.objects.iterator(chunk_size=100):
        names = aggregate.model_names
        counts = PairCounts.from_bytes(names, bytes(aggregate.cells)) if names else PairCounts.empty()
        aggregate.counts = counts.to_dict()
        aggregate.save(update_fields=["counts"])


def intervals_of_snapshots(apps, schema_editor):
    LeaderboardSnapshot = apps.get_model("ratings", "LeaderboardSnapshot")
    for snapshot in LeaderboardSnapshot.objects.exclude(method__in=["elo", "style"]).only("data").iterator():
        snapshot.intervals = (snapshot.data or {}).get("intervals") or ""
        snapshot.save(update_fields=["intervals"])


class Migration(migrations.Migration):
    dependencies = [
        ("ratings", "0002_bias_tallies"),
    ]

    operations = [
        migrations.AddField(
            model_name="pairaggregate",
            name="model_names",
            field=models.JSONField(default=list),
        ),
        migrations.AddField(
            model_name="pairaggregate",
            name="cells",
            field=models.BinaryField(default=bytes),
        ),
        migrations.RunPython(json_to_bytes, bytes_to_json),
        migrations.RemoveField(
            model_name="pairaggregate",
            name="counts",
        ),
        migrations.AddField(
            model_name="leaderboardsnapshot",
            name="intervals",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.RunPython(intervals_of_snapshots, migrations.RunPython.noop),
    ]
